"""gunicorn configuration, derived from the settings (no separate config file to drift)."""

from __future__ import annotations

from typing import Any

from yardmaster.api.metrics_dir import mark_worker_dead
from yardmaster.api.shutdown import end_streams_on_sigterm
from yardmaster.shared.logs import logging_config
from yardmaster.shared.services import Service
from yardmaster.shared.settings import Settings

#: Longest a request may take before gunicorn restarts its worker.
REQUEST_TIMEOUT_SECONDS = 60
#: Time running requests get to finish after SIGTERM.
GRACEFUL_TIMEOUT_SECONDS = 10


def gunicorn_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """Options for gunicorn serving the API on ``host:port``.

    Threaded workers (``gthread``) so long-lived responses such as event streams do not
    block a whole process. The application is built once, in the main process, before the
    workers are forked (``preload_app``): its imports take seconds, and every worker shares
    them. It opens no connection while being built (Redis and database connections are made on
    first use, in each worker).
    """
    return {
        "bind": f"{host}:{port}",
        "workers": settings.api_workers,
        "worker_class": "gthread",
        "threads": settings.api_threads,
        "timeout": REQUEST_TIMEOUT_SECONDS,
        "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
        "keepalive": 5,
        "preload_app": True,
        "accesslog": "-",
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(M)sms',
        "logger_class": "yardmaster.api.accesslog.RedactingLogger",  # hides ?access_token=
        "logconfig_dict": logging_config(Service.API, settings.instance, settings.log_level),
        "proc_name": "yardmaster-api",
        # gunicorn's control socket (under $HOME) is not used; containers have no home to write.
        "control_socket_disable": True,
        "worker_tmp_dir": "/dev/shm" if _has_dev_shm() else None,
        "child_exit": _child_exit,
        "post_worker_init": end_streams_on_sigterm,  # event streams end when a worker stops
    }


def _child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: its live metric values leave the shared /metrics folder."""
    mark_worker_dead(worker.pid)


def _has_dev_shm() -> bool:
    import os

    return os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)
