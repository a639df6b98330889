"""Migrations: one command brings an empty database to the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from yardmaster.shared.migrate import head_revision, schema_status, upgrade_to_head
from yardmaster.shared.models import Base


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
