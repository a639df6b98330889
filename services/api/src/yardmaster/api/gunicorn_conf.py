"""gunicorn configuration, derived from the settings (no separate config file to drift)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from yardmaster.api import serving
from yardmaster.api.metrics_dir import mark_worker_dead
from yardmaster.api.shutdown import end_streams_on_sigterm, keep_early_signals, replay_early_stop
from yardmaster.shared import lifecycle
from yardmaster.shared.logs import logging_config
from yardmaster.shared.services import Service
from yardmaster.shared.settings import Settings

log = logging.getLogger(__name__)

#: Files a worker keeps open besides its connections (Redis, database, logs, libraries).
OTHER_OPEN_FILES = 200
#: Longest a request may take before gunicorn restarts its worker.
REQUEST_TIMEOUT_SECONDS = 60
#: Time running requests get to finish after SIGTERM.
GRACEFUL_TIMEOUT_SECONDS = 10
#: gunicorn refuses, before the API sees it, a request line longer than this (414), a header
#: line longer than this (431) or more headers than this (431): as problem documents
#: (:func:`yardmaster.api.serving.write_problem`).
LIMIT_REQUEST_LINE = 8190
LIMIT_REQUEST_FIELD_SIZE = 8190
LIMIT_REQUEST_FIELDS = 100


def gunicorn_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """Options for gunicorn serving the API on ``host:port``.

    gevent workers (:mod:`yardmaster.api.serving`): every connection is a greenlet, so event
    streams and slow clients hold no thread; each worker takes up to
    ``YARDMASTER_API_CONNECTIONS`` at once. The application is built once, in the main
    process, before the workers are forked (``preload_app``): its imports take seconds, and
    every worker shares them. It opens no connection while being built (Redis and database
    connections are made on first use, in each worker).
    """
    worker: Any = serving.worker_class()
    worker.read_timeout = settings.api_read_timeout
    return {
        "bind": f"{host}:{port}",
        "workers": settings.api_workers,
        "worker_class": worker,
        "worker_connections": settings.api_connections,
        "timeout": REQUEST_TIMEOUT_SECONDS,
        "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
        "keepalive": max(1, math.ceil(settings.api_read_timeout)),  # then idle connections close
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        "limit_request_fields": LIMIT_REQUEST_FIELDS,
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
        "post_fork": keep_early_signals,
        "post_worker_init": _worker_started(f"http://{host}:{port}"),
    }


def within_open_files_limit(settings: Settings) -> Settings:
    """``settings``, or, if this machine lets a process open too few files for
    ``YARDMASTER_API_CONNECTIONS``, settings with fewer connections, and fewer streams per
    process so that other requests still find room (logged)."""
    wanted = settings.api_connections
    limit = serving.raise_open_files_limit(wanted + OTHER_OPEN_FILES)
    if limit >= wanted + OTHER_OPEN_FILES:
        return settings
    allowed = max(16, limit - OTHER_OPEN_FILES)
    streams = min(settings.streams_per_process, allowed * 4 // 5)
    log.warning(
        "the open files limit (%d) allows %d connections per worker, not %d "
        "(YARDMASTER_API_CONNECTIONS), and so %d live streams: raise it with ulimit -n",
        limit,
        allowed,
        wanted,
        streams,
    )
    return settings.model_copy(update={"api_connections": allowed, "streams_per_process": streams})


def _worker_started(url: str) -> Callable[[Any], None]:
    """gunicorn's ``post_worker_init`` hook: event streams end when a worker stops (also
    when it was asked to while booting); the first worker of the process says the API is
    ready (it accepts from here on)."""

    def started(worker: Any) -> None:
        end_streams_on_sigterm(worker)
        if replay_early_stop(getattr(worker, "early_signals", None)):
            log.info("worker %s: asked to stop while it booted; stopping", worker.pid)
            return
        if worker.age == 1:
            lifecycle.log_ready(log, "serving on %s", url)

    return started


def _child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: its live metric values leave the shared /metrics folder."""
    mark_worker_dead(worker.pid)


def _has_dev_shm() -> bool:
    import os

    return os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)
