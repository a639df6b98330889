"""Process start and stop: settings or a one-line exit, and warm shutdown on signals."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any, NoReturn

from sqlalchemy import Engine

from yardmaster.shared.db import connect_or_fail
from yardmaster.shared.errors import ConfigurationError
from yardmaster.shared.logs import configure_logging
from yardmaster.shared.settings import Settings, load_settings

log = logging.getLogger(__name__)

#: Exit status of a process stopped by bad configuration (EX_CONFIG of sysexits.h).
EXIT_CONFIG = 78


def exit_on_configuration_error(service: str, exc: ConfigurationError) -> NoReturn:
    """Print one line naming the variable and exit with :data:`EXIT_CONFIG`."""
    print(f"{service}: configuration error: {exc}", file=sys.stderr, flush=True)
    sys.exit(EXIT_CONFIG)


def start(service: str, **overrides: Any) -> Settings:
    """Parse the settings (exiting with one line if they are bad) and configure logging."""
    try:
        settings = load_settings(**overrides)
    except ConfigurationError as exc:
        exit_on_configuration_error(service, exc)
    configure_logging(service, settings.instance, settings.log_level)
    return settings


def connect_database(service: str, settings: Settings) -> Engine:
    """An engine whose database answered, else exit with one line naming the variable."""
    try:
        return connect_or_fail(settings.database_url, settings.connect_timeout)
    except ConfigurationError as exc:
        exit_on_configuration_error(service, exc)


def install_shutdown_handlers(stop: threading.Event) -> None:
    """SIGTERM or SIGINT sets ``stop`` (warm shutdown); a second one exits at once (cold)."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("%s again: stopping now", name)
            os._exit(128 + signum)
        log.info("%s: finishing current work, then stopping (send again to force)", name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
