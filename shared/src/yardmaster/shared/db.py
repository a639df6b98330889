"""Database engine: SQLite (embedded default) or PostgreSQL, chosen by the URL."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from yardmaster.shared.errors import ConfigurationError

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, connect_timeout: float = 5.0, sqlite_module: Any = None) -> Engine:
    """Create an engine that survives the database going away and several processes at once.

    SQLite runs in WAL mode with a busy timeout, so the API and the workers can share one
    file; its folder is created if missing. PostgreSQL connections are checked before use
    (``pool_pre_ping``) so a restarted server costs one failed check, not a failed request.
    ``sqlite_module`` replaces Python's ``sqlite3`` as the SQLite driver (the API passes one
    that waits for locks off its event loop).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, connect_timeout, sqlite_module)
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        connect_args={"connect_timeout": max(1, round(connect_timeout))},
    )


def _sqlite_engine(url: str, connect_timeout: float, module: Any) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    driver = {"module": module} if module is not None else {}
    engine = create_engine(url, connect_args={"timeout": max(connect_timeout, 30.0)}, **driver)
    event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def _configure_sqlite_connection(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL with synchronous=NORMAL: never corrupts, survives any process crash; only an OS
    # crash or power cut may drop the last commits. Saves an fsync per commit.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def check_database(engine: Engine) -> None:
    """Run ``SELECT 1``; raise :class:`SQLAlchemyError` if the database cannot answer."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def connect_or_fail(url: str, connect_timeout: float) -> Engine:
    """An engine whose database answered, else :class:`ConfigurationError` naming the variable.

    Used at process start: an unreachable database is a configuration problem to report
    in one line, not a stack trace.
    """
    try:
        engine = make_engine(url, connect_timeout)
        check_database(engine)
    except (SQLAlchemyError, OSError) as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        reason = describe_database_error(exc)
        raise ConfigurationError(
            "YARDMASTER_DATABASE_URL", f"cannot reach {shown}: {reason}"
        ) from None
    return engine


def describe_database_error(exc: BaseException) -> str:
    """The first line of a driver error, without SQLAlchemy's background links."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__
