"""Logging: one line per event on stdout, each naming the service and the instance."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

LINE_FORMAT = "%(asctime)s %(levelname)-7s %(service)s[%(instance)s] %(name)s: %(message)s"


class _UTCFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


class _ProcessIdentity(logging.Filter):
    """Stamps every record with the service and instance of this process."""

    def __init__(self, service: str, instance: str) -> None:
        super().__init__()
        self.service = service
        self.instance = instance

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.instance = self.instance
        return True


def logging_config(service: str, instance: str, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` value for this process (also handed to gunicorn)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"identity": {"()": _ProcessIdentity, "service": service, "instance": instance}},
        "formatters": {"line": {"()": _UTCFormatter, "format": LINE_FORMAT}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": sys.stdout,
                "formatter": "line",
                "filters": ["identity"],
            }
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stdout"], "propagate": False},
            "gunicorn.access": {"level": level, "handlers": ["stdout"], "propagate": False},
            "rq.worker": {"level": level},
            "watchdog": {"level": "WARNING"},
            "alembic": {"level": "WARNING"},
        },
    }


def configure_logging(service: str, instance: str, level: str) -> None:
    """Send every log record of this process to stdout, one line each, at ``level``."""
    import logging.config

    logging.config.dictConfig(logging_config(service, instance, level))
