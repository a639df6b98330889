"""A busy or unreachable database: told apart from real errors, and waited out with backoff.

On SQLite (one writer for the whole file) "database is locked" is an everyday state while
another process commits; PostgreSQL drops connections when it restarts and refuses them
while it starts. Neither is a fault of the work that met it, so every process retries that
work, with exponential backoff, until the database answers again. Any other error (a bug, a
bad setting, bad data) is raised at once: waiting would not cure it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

import psycopg
from sqlalchemy import exc as sa_exc
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

from yardmaster.shared.errors import DatabaseUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: First pause between two attempts; it doubles after each failure, up to the longest.
FIRST_BACKOFF_SECONDS = 0.5
#: Longest pause between two attempts (an attempt may itself wait for SQLite's lock).
MAX_BACKOFF_SECONDS = 5.0
#: How often a pause looks at the events that end it early.
STOP_POLL_SECONDS = 0.1

#: SQLite primary result codes (the low byte of the extended code) of a lock held elsewhere.
SQLITE_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED
#: PostgreSQL SQLSTATEs of a lock or transaction conflict (lock_timeout, statement_timeout,
#: serialization failure, deadlock): the same work succeeds when tried again.
POSTGRES_BUSY_STATES = frozenset({"55P03", "57014", "40001", "40P01"})
#: SQLSTATE classes of a server away for now: connection exception, operator intervention
#: (shutting down, starting up); and "too many connections".
POSTGRES_AWAY_CLASSES = frozenset({"08", "57"})
POSTGRES_AWAY_STATES = frozenset({"53300"})
#: A connection refused for good (psycopg gives no SQLSTATE before the session starts).
POSTGRES_REFUSED_FOR_GOOD = (
    "does not exist",
    "authentication failed",
    "no pg_hba.conf entry",
    "permission denied",
    "invalid",
)


class Outage(StrEnum):
    """Why the database cannot do the work right now."""

    #: It answers, but another transaction holds the lock the work needs (or every pooled
    #: connection is taken): it frees when that transaction ends.
    BUSY = "busy"
    #: It does not answer: refused, dropped, shutting down or starting up.
    UNREACHABLE = "unreachable"


def classify(exc: BaseException) -> Outage | None:
    """The passing outage ``exc`` shows, or None for an error that retrying would not cure.

    Accepts SQLAlchemy's exceptions and the drivers' own (``sqlite3``, ``psycopg``), which
    code using a raw connection (bulk loads) sees.
    """
    if isinstance(exc, sa_exc.TimeoutError):  # every pooled connection stayed in use
        return Outage.BUSY
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:  # SQLAlchemy recognised a lost connection
            return Outage.UNREACHABLE
        return classify(exc.orig) if isinstance(exc.orig, Exception) else None
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        return Outage.BUSY if code is not None and code & 0xFF in SQLITE_BUSY_CODES else None
    if isinstance(exc, psycopg.Error):
        return _postgres_outage(exc)
    return None


def _postgres_outage(exc: psycopg.Error) -> Outage | None:
    state = exc.sqlstate
    if state in POSTGRES_BUSY_STATES:
        return Outage.BUSY
    if state is not None:
        away = state[:2] in POSTGRES_AWAY_CLASSES or state in POSTGRES_AWAY_STATES
        return Outage.UNREACHABLE if away else None
    if isinstance(exc, psycopg.InterfaceError):  # "the connection is closed"
        return Outage.UNREACHABLE
    if isinstance(exc, psycopg.OperationalError):  # connecting failed, or the socket broke
        message = str(exc).lower()
        refused_for_good = any(words in message for words in POSTGRES_REFUSED_FOR_GOOD)
        return None if refused_for_good else Outage.UNREACHABLE
    return None


def is_transient(exc: BaseException) -> bool:
    """True if ``exc`` is a busy or unreachable database (see :func:`classify`)."""
    return classify(exc) is not None


def describe(exc: BaseException) -> str:
    """The first line of a driver error, without SQLAlchemy's background links."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


def wait_out(work: Callable[[], T], what: str, *stops: threading.Event) -> T:
    """``work()``, called again after each busy or unreachable database until it succeeds.

    ``work`` must be safe to call again after such an error: one transaction (rolled back
    when it failed), or steps that continue from what was committed. The pause between
    attempts starts at 0.5 s and doubles up to 5 s. One warning (``what``: database busy
    (why); retrying in 0.5 s) starts an outage, another only if its cause changes, and one
    line ends it. Any other error is raised at once. Raises
    :class:`DatabaseUnavailableError` if one of ``stops`` is set while the database is still
    away: the process is stopping, or has lost the right to finish the work.
    """
    report = _OutageReport(what)
    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential(multiplier=FIRST_BACKOFF_SECONDS, max=MAX_BACKOFF_SECONDS),
        stop=lambda _state: any(stop.is_set() for stop in stops),
        before_sleep=report.failed,
        sleep=lambda seconds: _pause(seconds, stops),
        reraise=True,
    )
    try:
        result = retrying(work)
    except Exception as exc:
        if is_transient(exc):  # stopped while the database was still away
            raise DatabaseUnavailableError(f"database {classify(exc)} ({describe(exc)})") from exc
        raise
    report.ended()
    return result


class _OutageReport:
    """The log lines of one outage, as :func:`wait_out` meets it."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.cause = ""
        self.began: float | None = None

    def failed(self, state: RetryCallState) -> None:
        assert state.outcome is not None
        assert state.next_action is not None
        error = state.outcome.exception()
        assert error is not None
        cause = f"{classify(error)} ({describe(error)})"
        if self.began is None:
            self.began = time.monotonic()
        level = logging.DEBUG if cause == self.cause else logging.WARNING
        pause = state.next_action.sleep
        log.log(level, "%s: database %s; retrying in %.1f s", self.what, cause, pause)
        self.cause = cause

    def ended(self) -> None:
        if self.began is not None:
            waited = time.monotonic() - self.began
            log.info("%s: database answers again (waited %.1f s)", self.what, waited)


def _pause(seconds: float, stops: tuple[threading.Event, ...]) -> None:
    """Sleep ``seconds``, or less if one of ``stops`` is set meanwhile."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not stops:
            time.sleep(left)
            return
        if any(stop.is_set() for stop in stops):
            return
        stops[0].wait(min(left, STOP_POLL_SECONDS))
