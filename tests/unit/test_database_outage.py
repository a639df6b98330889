"""Telling a busy or unreachable database from a real error, and waiting it out."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import psycopg.errors
import pytest
from sqlalchemy import exc as sa_exc

from yardmaster.shared import outage
from yardmaster.shared.errors import DatabaseUnavailableError
from yardmaster.shared.outage import Outage, classify, wait_out


@pytest.fixture(autouse=True)
def _quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outage, "FIRST_BACKOFF_SECONDS", 0.01)
    monkeypatch.setattr(outage, "MAX_BACKOFF_SECONDS", 0.02)


def sqlite_error(tmp_path: Path, make: Callable[[sqlite3.Connection], object]) -> sqlite3.Error:
    """The error SQLite itself raises for ``make`` (on a file another connection writes)."""
    path = tmp_path / "db.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER PRIMARY KEY)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        make(other)
    except sqlite3.Error as exc:
        return exc
    finally:
        holder.rollback()
        holder.close()
        other.close()
    raise AssertionError("no error")


def wrapped(orig: Exception, invalidated: bool = False) -> sa_exc.DBAPIError:
    """``orig`` as SQLAlchemy raises it."""
    base = sqlite3.Error if isinstance(orig, sqlite3.Error) else psycopg.Error
    return sa_exc.DBAPIError.instance(
        "SELECT 1", {}, orig, base, connection_invalidated=invalidated
    )


def test_sqlite_database_is_locked_is_busy(tmp_path: Path) -> None:
    error = sqlite_error(tmp_path, lambda c: c.execute("INSERT INTO t VALUES (1)"))

    assert "locked" in str(error)
    assert classify(error) is Outage.BUSY
    assert classify(wrapped(error)) is Outage.BUSY


@pytest.mark.parametrize(
    "statement",
    ["SELECT * FROM no_such_table", "INSERT INTO t VALUES ('a', 'b')", "SELEC 1"],
)
def test_sqlite_errors_of_the_statement_itself_are_not_waited_for(
    tmp_path: Path, statement: str
) -> None:
    error = sqlite_error(tmp_path, lambda c: c.execute(statement))

    assert classify(error) is None
    assert classify(wrapped(error)) is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (psycopg.errors.AdminShutdown("terminating connection"), Outage.UNREACHABLE),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), Outage.UNREACHABLE),
        (psycopg.errors.TooManyConnections("too many clients"), Outage.UNREACHABLE),
        (psycopg.OperationalError("connection failed: Connection refused"), Outage.UNREACHABLE),
        (psycopg.OperationalError("server closed the connection unexpectedly"), Outage.UNREACHABLE),
        (psycopg.InterfaceError("the connection is closed"), Outage.UNREACHABLE),
        (psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"), Outage.BUSY),
        (psycopg.errors.SerializationFailure("could not serialize access"), Outage.BUSY),
        (psycopg.errors.DeadlockDetected("deadlock detected"), Outage.BUSY),
        (psycopg.OperationalError('FATAL:  database "nowhere" does not exist'), None),
        (psycopg.OperationalError('FATAL:  password authentication failed for "ym"'), None),
        (psycopg.errors.InvalidPassword("password authentication failed"), None),
        (psycopg.errors.UniqueViolation("duplicate key value"), None),
        (psycopg.errors.UndefinedTable('relation "jobs" does not exist'), None),
        (psycopg.errors.DivisionByZero("division by zero"), None),
    ],
)
def test_postgresql_errors_are_told_apart(error: psycopg.Error, expected: Outage | None) -> None:
    assert classify(error) is expected
    assert classify(wrapped(error)) is expected


def test_a_connection_sqlalchemy_found_dropped_is_unreachable_whatever_the_driver_said() -> None:
    assert classify(wrapped(psycopg.Error("SSL SYSCALL error"), invalidated=True)) is (
        Outage.UNREACHABLE
    )


def test_a_pool_with_every_connection_in_use_past_its_timeout_is_busy() -> None:
    assert classify(sa_exc.TimeoutError("QueuePool limit reached")) is Outage.BUSY


@pytest.mark.parametrize(
    "error", [ValueError("bug"), OSError("disk"), sa_exc.NoSuchModuleError("no driver")]
)
def test_other_errors_are_no_outage(error: Exception) -> None:
    assert classify(error) is None


class Flaky:
    """Work that fails with ``errors`` first, then answers ``"done"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


LOCKED = wrapped(psycopg.errors.LockNotAvailable("lock timeout"))
REFUSED = wrapped(psycopg.OperationalError("connection failed: Connection refused"))


def test_wait_out_retries_until_the_database_answers_logging_the_outage_once_and_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    work = Flaky(LOCKED, LOCKED, LOCKED)

    with caplog.at_level(logging.INFO, logger=outage.__name__):
        assert wait_out(work, "fw-1") == "done"

    assert work.calls == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["fw-1: database busy (lock timeout); retrying in 0.0 s"]
    assert caplog.records[-1].getMessage().startswith("fw-1: database answers again (waited ")


def test_wait_out_logs_again_when_the_cause_of_the_outage_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger=outage.__name__):
        wait_out(Flaky(LOCKED, LOCKED, REFUSED), "reaper")

    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        "reaper: database busy (lock timeout)",
        "reaper: database unreachable (connection failed: Connection refused)",
    ]


def test_wait_out_raises_any_other_error_at_once() -> None:
    work = Flaky(wrapped(psycopg.errors.UniqueViolation("duplicate key")))

    with pytest.raises(sa_exc.DBAPIError, match="duplicate key"):
        wait_out(work, "job 1")
    assert work.calls == 1


def test_wait_out_gives_up_when_a_stop_event_is_set_while_the_database_is_away() -> None:
    lost, stopping = threading.Event(), threading.Event()
    work = Flaky(*[LOCKED] * 1000)

    def lose_the_lease_after_a_few_attempts() -> str:
        if work.calls == 3:
            lost.set()
        return work()

    with pytest.raises(DatabaseUnavailableError, match=r"database busy \(lock timeout\)"):
        wait_out(lose_the_lease_after_a_few_attempts, "fw-1", stopping, lost)
    assert work.calls == 4


def test_wait_out_with_a_stop_already_set_tries_once() -> None:
    stop = threading.Event()
    stop.set()
    work = Flaky(REFUSED)

    with pytest.raises(DatabaseUnavailableError, match="unreachable"):
        wait_out(work, "start", stop)
    assert work.calls == 1
