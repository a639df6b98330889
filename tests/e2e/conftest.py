"""End-to-end fixtures: real processes started with the commands Compose and make run use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from e2e import stack
from e2e.stack import Start
from support import RedisServer, Starter


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def migrated_database_url(database_url: str, start: Starter) -> Iterator[str]:
    """The test's database, at the current schema (``database_url`` copies it from the run's
    template). Every process the test started is stopped before the database goes (a
    PostgreSQL database is dropped after the test): processes that lost their database while
    stopping would wait it out."""
    yield database_url
    start.close_all()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's outcome on the test item (for the log dump below)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def start(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Starter]:
    """Start ``python -m MODULE ARGS`` with the given settings; every process is stopped after."""
    starter = Starter(tmp_path)
    yield starter
    starter.close_all()
    call = getattr(request.node, "report_call", None)
    if call is not None and call.failed:  # what each process said, to diagnose the failure
        for process in starter.started:
            tail = "\n".join(process.output().splitlines()[-40:])
            print(f"\n--- last lines of {' '.join(process.args[1:4])} ---\n{tail}")


@pytest.fixture
def one_worker(start: Start, redis_url: str, migrated_database_url: str) -> stack.Stack:
    return stack.make_stack(start, redis_url, migrated_database_url, workers=1)


@pytest.fixture
def two_workers(start: Start, redis_url: str, migrated_database_url: str) -> stack.Stack:
    return stack.make_stack(start, redis_url, migrated_database_url, workers=2)


@pytest.fixture(scope="module")
def shared_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, shared_database_url: str
) -> Iterator[stack.Stack]:
    """The API and one report worker shared by a module's tests (on each backend), for tests
    that each start from what they need and do not stop, kill or reconfigure the stack."""
    redis.Redis.from_url(redis_server.url).flushall()
    starter = Starter(tmp_path_factory.mktemp("shared-stack"))
    try:
        yield stack.make_stack(starter, redis_server.url, shared_database_url, workers=1)
    finally:
        starter.close_all()
