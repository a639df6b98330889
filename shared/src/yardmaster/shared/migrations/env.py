"""Alembic environment: runs migrations on the connection handed in by ``migrate``.

Used directly by the ``alembic`` command (``alembic.ini`` at the repository root), it
connects to ``YARDMASTER_DATABASE_URL`` itself.
"""

from alembic import context
from sqlalchemy import Connection

from yardmaster.shared.db import make_engine
from yardmaster.shared.models import Base
from yardmaster.shared.settings import load_settings


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    if context.is_offline_mode():
        raise SystemExit(
            "offline (--sql) migrations are not supported; run them against a database"
        )
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    engine = make_engine(load_settings().database_url)
    with engine.begin() as own_connection:
        run_on(own_connection)
    engine.dispose()


run()
