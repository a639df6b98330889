"""Database engine: SQLite (embedded default) or PostgreSQL, chosen by the URL; and the
connection every process makes at start, waiting for a database that is not there yet."""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from yardmaster.shared.errors import ConfigurationError, DatabaseUnavailableError
from yardmaster.shared.outage import describe, wait_out

log = logging.getLogger(__name__)

#: How long a worker's statement waits for SQLite's write lock before it fails as busy (and
#: :func:`~yardmaster.shared.outage.wait_out` tries the work again, logging the outage). The
#: API waits ``YARDMASTER_DATABASE_BUSY_TIMEOUT`` instead, then answers 503.
SQLITE_BUSY_TIMEOUT_SECONDS = 10.0


def make_engine(
    url: str,
    connect_timeout: float = 5.0,
    sqlite_module: Any = None,
    busy_timeout: float | None = None,
) -> Engine:
    """Create an engine that survives the database going away and several processes at once.

    SQLite runs in WAL mode with a busy timeout, so the API and the workers can share one
    file; its folder is created if missing. PostgreSQL connections are checked before use
    (``pool_pre_ping``) so a restarted server costs one failed check, not a failed request.
    ``sqlite_module`` replaces Python's ``sqlite3`` as the SQLite driver (the API passes one
    that waits for locks off its event loop).

    ``busy_timeout``: the longest a statement waits for a lock another transaction holds
    (SQLite's write lock; PostgreSQL's ``lock_timeout``) and a caller for a pooled
    connection, before failing as busy. None: SQLite waits
    :data:`SQLITE_BUSY_TIMEOUT_SECONDS`, PostgreSQL as long as it takes.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, sqlite_module, busy_timeout)
    connect_args: dict[str, Any] = {"connect_timeout": max(1, round(connect_timeout))}
    bounded: dict[str, Any] = {}
    if busy_timeout is not None:
        connect_args["options"] = f"-c lock_timeout={round(busy_timeout * 1000)}"
        bounded["pool_timeout"] = busy_timeout
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        connect_args=connect_args,
        **bounded,
    )


def _sqlite_engine(url: str, module: Any, busy_timeout: float | None) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    wait = SQLITE_BUSY_TIMEOUT_SECONDS if busy_timeout is None else busy_timeout
    options: dict[str, Any] = {"module": module} if module is not None else {}
    if busy_timeout is not None:
        options["pool_timeout"] = busy_timeout
    engine = create_engine(url, connect_args={"timeout": wait}, **options)
    configure = functools.partial(_configure_sqlite_connection, busy_ms=round(wait * 1000))
    event.listen(engine, "connect", configure)
    return engine


def _configure_sqlite_connection(
    dbapi_connection: sqlite3.Connection, _record: Any, busy_ms: int
) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL with synchronous=NORMAL: never corrupts, survives any process crash; only an OS
    # crash or power cut may drop the last commits. Saves an fsync per commit.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def check_database(engine: Engine) -> None:
    """Run ``SELECT 1``; raise :class:`SQLAlchemyError` if the database cannot answer."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def connect(url: str, connect_timeout: float, stop: threading.Event) -> Engine | None:
    """An engine whose database answered, waiting while it is busy or unreachable.

    Used at process start: a database that is down is waited for with backoff (one log
    line, see :func:`~yardmaster.shared.outage.wait_out`), as Redis is. Returns None if
    ``stop`` was set before it answered (an event set beforehand: one attempt only). Raises
    :class:`ConfigurationError` naming the variable when waiting cannot help: an unknown
    driver, a path SQLite cannot use, a server that refuses this database, role or password.
    """
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        engine = make_engine(url, connect_timeout)
    except (SQLAlchemyError, OSError, ImportError) as exc:
        reason = describe_database_error(exc)
        raise ConfigurationError(
            "YARDMASTER_DATABASE_URL", f"cannot use {shown}: {reason}"
        ) from None
    try:
        wait_out(lambda: check_database(engine), f"database at {shown}", stop)
    except DatabaseUnavailableError as exc:
        log.warning("database at %s not answering: %s", shown, exc)
        engine.dispose()
        return None
    except (SQLAlchemyError, OSError) as exc:
        engine.dispose()
        reason = describe_database_error(exc)
        raise ConfigurationError(
            "YARDMASTER_DATABASE_URL", f"cannot use {shown}: {reason}"
        ) from None
    return engine


def describe_database_error(exc: BaseException) -> str:
    """The first line of a driver error, without SQLAlchemy's background links."""
    return describe(exc)
