"""A PostgreSQL restart in the middle of an import and of a file day: nothing lost, nothing
twice, every job finishes, no process exits.

The server is the test's own (tests/private_postgres.py), never the machine's shared one.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from sqlalchemy import create_engine, func, insert, select, text

from e2e.stack import Start, make_stack
from private_postgres import PrivatePostgres, postgres_bindir
from support import eventually
from yardmaster.shared.fileclaims import FileClaims
from yardmaster.shared.migrate import upgrade_to_head
from yardmaster.shared.models import FileLedger, StoreTimezone, visible_store_status

IMPORT_ROWS = 200_000
STORES = 40
#: How long the database stays down (the processes must notice and wait it out).
OUTAGE_SECONDS = 5


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    if postgres_bindir() is None:
        pytest.skip("this machine has no PostgreSQL server binaries (initdb, pg_ctl)")
    server = PrivatePostgres(tmp_path / "postgres").create()
    yield server
    server.destroy()


def prepare(database_url: str) -> None:
    """Migrate, and know some stores, so the simulator's files carry polls for them."""
    engine = create_engine(database_url)
    upgrade_to_head(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(StoreTimezone),
            [{"store_id": f"s{n}", "timezone_str": "America/Chicago"} for n in range(STORES)],
        )
    engine.dispose()


def write_polls(path: Path, rows: int) -> Path:
    base = dt.datetime(2023, 1, 18)
    with open(path, "w") as handle:
        handle.write("store_id,status,timestamp_utc\n")
        for n in range(rows):
            at = base + dt.timedelta(seconds=n * 3)
            handle.write(f"i{n % 1000},active,{at:%Y-%m-%d %H:%M:%S}.000000 UTC\n")
    return path


def test_a_postgresql_restart_mid_import_and_mid_file_day_loses_nothing_and_doubles_nothing(
    start: Start, redis_url: str, private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    database_url = private_postgres.url
    prepare(database_url)
    stack = make_stack(start, redis_url, database_url, workers=1)
    bucket = tmp_path / "bucket"
    settings = {"redis_url": redis_url, "database_url": database_url}
    speed = ["--dir", str(bucket), "--seconds-in-min", "0.01"]
    file_workers = [
        start("yardmaster.file_worker", *speed, "--name", f"fw-{n}", **settings) for n in (1, 2)
    ]
    for worker in file_workers:
        worker.wait_for_output("watching")
    simulator = start("yardmaster.simulator", *speed, "--payload", "stores", **settings)
    polls = write_polls(tmp_path / "polls.csv", IMPORT_ROWS)
    with open(polls, "rb") as handle:
        response = requests.post(
            f"{stack.base}/imports",
            data={"table": "store_status", "mode": "append"},
            files={"file": (polls.name, handle)},
            timeout=60,
        )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    claims = FileClaims(redis.Redis.from_url(redis_url), bucket)
    stack.eventually_progress(job_id, 0.2)
    eventually(lambda: len(claims.done()) >= 10, 60, "10 files done")

    private_postgres.stop()
    time.sleep(OUTAGE_SECONDS)  # the outage itself: everyone meets a database that is down
    private_postgres.start()

    finished = stack.wait_for(job_id, "finished", timeout=120)
    assert finished["failures"] == 0
    assert simulator.wait(timeout=90) == 0
    eventually(lambda: len(claims.done()) == 96, 90, "96 files done")
    engine = create_engine(database_url)

    def ledger_caught_up() -> bool:
        with engine.connect() as connection:
            states = dict(
                connection.execute(
                    select(FileLedger.state, func.count()).group_by(FileLedger.state)
                ).all()
            )
        return states == {"done": 96}

    eventually(ledger_caught_up, 30, "the ledger: 96 files done")
    view = visible_store_status.c
    with engine.connect() as connection:
        imported = connection.scalar(select(func.count()).where(view.store_id.like("i%")))
        filed = connection.scalar(select(func.count()).where(view.store_id.like("s%")))
        in_ledger = connection.scalar(select(func.sum(FileLedger.rows)))
        doubled = connection.scalar(
            text(
                "SELECT count(*) FROM (SELECT store_id, timestamp_utc FROM visible_store_status"
                " WHERE store_id LIKE 'i%' GROUP BY store_id, timestamp_utc HAVING count(*) > 1)"
                " AS twice"
            )
        )
    engine.dispose()
    assert imported == IMPORT_ROWS
    assert filed == in_ledger
    assert filed > 0
    assert doubled == 0
    for process in [*stack.workers, *file_workers]:
        assert process.popen.poll() is None, f"{process.args[1:4]} exited"
