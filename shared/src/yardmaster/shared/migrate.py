"""Schema migrations (Alembic): ``python -m yardmaster.shared.migrate`` brings the database to head.

Run once per deployment (the one-shot ``migrate`` service in Compose, a step of ``make run``),
never by every container. On PostgreSQL an advisory lock makes concurrent runs wait for each
other instead of racing. A database that is busy (another process holds SQLite's write lock)
or unreachable is waited out with backoff, as every process does.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, select

from yardmaster.shared import lifecycle
from yardmaster.shared.errors import DatabaseUnavailableError
from yardmaster.shared.outage import wait_out
from yardmaster.shared.services import Service

log = logging.getLogger("yardmaster.shared.migrate")

SCRIPT_LOCATION = "yardmaster.shared:migrations"
#: Key of the PostgreSQL advisory lock held while migrating (arbitrary, fixed).
MIGRATION_LOCK_ID = 0x59A2D0


@dataclass(frozen=True)
class SchemaStatus:
    """Where the database's schema is, against the newest migration shipped with the code."""

    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        """True when the database is at the newest migration."""
        return self.current == self.head


def alembic_config() -> Config:
    """Alembic configuration pointing at the migrations shipped inside this package."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head_revision() -> str:
    """The newest migration's revision id."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def schema_status(engine: Engine, head: str | None = None) -> SchemaStatus:
    """Read the database's current revision (``None`` if never migrated)."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return SchemaStatus(current=current, head=head or head_revision())


def upgrade_to_head(engine: Engine) -> SchemaStatus:
    """Apply every pending migration in one transaction; return the resulting status.

    On PostgreSQL the transaction first takes an advisory lock, so a second migrator
    waits and then finds nothing left to do.
    """
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_ID)))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return schema_status(engine)


def main() -> int:
    """Entry point of the ``migrate`` process."""
    settings = lifecycle.start(Service.MIGRATE)
    engine = lifecycle.connect_database(Service.MIGRATE, settings)
    stop = threading.Event()
    lifecycle.install_shutdown_handlers(stop)
    try:
        before = wait_out(lambda: schema_status(engine), "migrations", stop)
        after = wait_out(lambda: upgrade_to_head(engine), "migrations", stop)
    except DatabaseUnavailableError as exc:
        log.warning("stopped before the database could be migrated: %s", exc)
        engine.dispose()
        return 1
    if before.current == after.current:
        log.info("database already at revision %s; nothing to do", after.current)
    else:
        log.info("database migrated from %s to %s", before.current or "empty", after.current)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
