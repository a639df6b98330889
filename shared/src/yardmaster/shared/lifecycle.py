"""Process start and stop: settings or a one-line exit, the "ready" line, and warm shutdown
on signals."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, NoReturn

from sqlalchemy import Engine

from yardmaster.shared.db import connect
from yardmaster.shared.errors import ConfigurationError
from yardmaster.shared.logs import configure_logging
from yardmaster.shared.settings import Settings, load_settings

log = logging.getLogger(__name__)

#: Exit status of a process stopped by bad configuration (EX_CONFIG of sysexits.h).
EXIT_CONFIG = 78
#: A stop already asked for: :func:`connect` tries once.
_ALREADY_SET = threading.Event()
_ALREADY_SET.set()


def _launch_time() -> float:
    """When this process was launched (exec'd), as a Unix time: from ``/proc`` on Linux (the
    interpreter's own start-up included, to 10 ms), else the time this module was imported."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            # field 22, after the parenthesised command name (which may hold spaces): clock
            # ticks from boot to the launch
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as uptime:
            since_boot = float(uptime.read().split()[0])
        return time.time() - (since_boot - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()


#: Read once, when the process imports this module; processes forked later (gunicorn's
#: workers) inherit their parent's launch.
LAUNCHED_AT = _launch_time()


def seconds_since_launch() -> float:
    """Seconds since the process (or the parent it was forked from) was launched."""
    return max(0.0, time.time() - LAUNCHED_AT)


#: What finds the "ready" line of :func:`log_ready` in a process's output (group 1: seconds).
READY_LINE = re.compile(r" ready in (\d+\.\d+) s: ")


def log_ready(logger: logging.Logger, doing: str, *args: object) -> None:
    """The process's one "ready" line: ``ready in 0.84 s: <doing>`` (:data:`READY_LINE`).
    Supervisors, tests and people wait on it (the API's readiness is also ``GET /readyz``)."""
    logger.info("ready in %.2f s: " + doing, seconds_since_launch(), *args)


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
    """An engine whose database answered; exit with one line if a setting is wrong.

    A database that is busy or unreachable is waited for, with backoff and one log line,
    as Redis is; SIGTERM or SIGINT meanwhile exits at once with status 0 (nothing started
    yet). The signal handlers in place before the call are back when it returns.
    """
    stop = threading.Event()
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    install_shutdown_handlers(stop)
    try:
        engine = connect(settings.database_url, settings.connect_timeout, stop)
    except ConfigurationError as exc:
        exit_on_configuration_error(service, exc)
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: not installed from Python, nothing to restore
                signal.signal(signum, handler)
    if engine is None:
        log.info("stopped before the database answered")
        sys.exit(0)
    return engine


def check_database(service: str, settings: Settings) -> None:
    """Exit with one line if the database settings are wrong; one look, no waiting.

    For a server (the API) that serves while its database is away: a database that is
    busy or unreachable for now is only logged (``/readyz`` says why it is not ready).
    """
    try:
        engine = connect(settings.database_url, settings.connect_timeout, _ALREADY_SET)
    except ConfigurationError as exc:
        exit_on_configuration_error(service, exc)
    if engine is None:
        log.info("serving meanwhile: /readyz answers 503 until the database answers")
    else:
        engine.dispose()


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
