"""Migrations: one command brings an empty database to the schema the models describe."""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from support import eventually
from yardmaster.shared import db, lifecycle, migrate
from yardmaster.shared.db import make_engine
from yardmaster.shared.migrate import head_revision, schema_status, upgrade_to_head
from yardmaster.shared.models import Base

pytestmark = pytest.mark.empty_database  # these tests migrate it themselves


def test_an_empty_database_is_not_up_to_date(engine: Engine) -> None:
    status = schema_status(engine)

    assert status.current is None
    assert status.head == head_revision()
    assert not status.up_to_date


def test_upgrade_creates_the_store_data_tables_and_records_the_head(engine: Engine) -> None:
    status = upgrade_to_head(engine)

    assert status.up_to_date
    tables = set(inspect(engine).get_table_names())
    assert {"store_status", "business_hours", "timezones", "alembic_version"} <= tables


def test_upgrading_twice_changes_nothing(engine: Engine) -> None:
    first = upgrade_to_head(engine)
    second = upgrade_to_head(engine)

    assert first == second


def test_the_migrations_build_exactly_the_schema_of_the_models(engine: Engine) -> None:
    upgrade_to_head(engine)

    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert differences == []


def test_migrations_wait_out_a_database_another_process_holds_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "busy.db"
    monkeypatch.setenv("YARDMASTER_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_SECONDS", 0.2)  # meet the lock quickly
    monkeypatch.setattr(lifecycle, "configure_logging", lambda *_args: None)  # keep caplog's
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN EXCLUSIVE")

    def release_once_met() -> None:
        eventually(lambda: "migrations: database busy" in caplog.text, 30, "the lock was met")
        holder.rollback()

    releaser = threading.Thread(target=release_once_met, daemon=True)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with caplog.at_level(logging.INFO):
            releaser.start()
            status = migrate.main()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        releaser.join(30)
        holder.close()

    assert status == 0
    assert "migrations: database answers again" in caplog.text
    engine = make_engine(f"sqlite:///{database}")
    assert schema_status(engine).up_to_date
    engine.dispose()
