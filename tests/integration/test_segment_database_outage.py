"""A report worker's segment that meets a busy database waits it out: the chunk that failed is
done again from the last checkpoint, no attempt is counted as failed, no row is lost or
written twice, and the job finishes."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.engine import make_url

from support import eventually
from yardmaster.report_worker import runner
from yardmaster.report_worker.tasks import TaskContext
from yardmaster.shared import outputs, queues
from yardmaster.shared.db import make_engine
from yardmaster.shared.jobs import JobKind
from yardmaster.shared.jobstore import JobStore, new_job_id
from yardmaster.shared.migrate import upgrade_to_head
from yardmaster.shared.models import StoreStatus, visible_store_status

#: How long the segment's statements wait for a lock before failing as busy (seconds).
WORKER_BUSY_TIMEOUT = 0.3


@contextmanager
def job_rows_locked(database_url: str) -> Iterator[None]:
    """Another process's long write transaction: SQLite's write lock (``BEGIN EXCLUSIVE``);
    on PostgreSQL, the jobs table locked against writers (checkpoints wait for it)."""
    if make_url(database_url).get_backend_name() == "sqlite":
        holder = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.rollback()
            holder.close()
        return
    engine = create_engine(database_url)
    with engine.connect() as connection:
        connection.exec_driver_sql("LOCK TABLE jobs IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            connection.rollback()
    engine.dispose()


@pytest.fixture
def runtime(
    database_url: str,
    engine: Engine,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[runner.Runtime]:
    """The runtime a report worker installs, whose statements give up on a lock quickly
    (its engine is the segment's alone: the test reads and writes with ``engine``)."""
    upgrade_to_head(engine)
    quick = make_engine(database_url, busy_timeout=WORKER_BUSY_TIMEOUT)
    client = redis.Redis.from_url(redis_url)
    runtime = runner.Runtime(quick, client, TaskContext(quick, tmp_path / "files"), "rw-1", 2.0)
    monkeypatch.setattr(runner, "_runtime", runtime)
    yield runtime
    client.close()
    quick.dispose()


class SegmentThread(threading.Thread):
    """``run_segment(job_id)`` as RQ would run it, on a thread of its own."""

    def __init__(self, job_id: str) -> None:
        super().__init__(name=f"segment:{job_id}", daemon=True)
        self.job_id = job_id
        self.outcome: str | None = None

    def run(self) -> None:
        self.outcome = runner.run_segment(self.job_id)

    def result(self, timeout: float = 60.0) -> str | None:
        self.join(timeout)
        assert not self.is_alive(), "the segment did not end"
        return self.outcome


def run_through_an_outage(
    store: JobStore, database_url: str, job_id: str, caplog: pytest.LogCaptureFixture
) -> str | None:
    """Run the job's segment; once it has checkpointed, hold the lock until the segment has
    met it (and logged so), then release it; the segment's outcome."""
    segment = SegmentThread(job_id)
    with caplog.at_level(logging.INFO):
        segment.start()
        eventually(lambda: progress(store, job_id) > 0, 30, "a first checkpoint")
        with job_rows_locked(database_url):
            eventually(lambda: "database busy" in caplog.text, 30, "the segment met the lock")
            assert state(store, job_id) == "running"
        outcome = segment.result()
    assert f"job {job_id}: database answers again" in caplog.text
    return outcome


def progress(store: JobStore, job_id: str) -> float:
    job = store.get(job_id)
    assert job is not None
    return job.progress_fraction


def state(store: JobStore, job_id: str) -> str:
    job = store.get(job_id)
    assert job is not None
    return job.state


def test_a_segment_that_meets_a_locked_database_finishes_without_a_failed_attempt(
    runtime: runner.Runtime, engine: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = JobStore(engine)
    job = store.create(JobKind.WORK, {"execution_time": 2}, queues.DEFAULT)

    outcome = run_through_an_outage(store, database_url, job.id, caplog)

    finished = store.get(job.id)
    assert finished is not None
    assert (outcome, finished.state) == ("finished", "finished")
    assert (finished.attempt, finished.failures, finished.error) == (1, 0, None)


def write_polls(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        handle.write("store_id,status,timestamp_utc\n")
        for n in range(rows):
            handle.write(f"s{n},active,2023-01-2{n % 7} 10:{n % 60:02d}:00.000000 UTC\n")


def count(engine: Engine, query: Callable[[], object]) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(query()) or 0)  # type: ignore[call-overload]


def test_an_import_that_meets_a_locked_database_stores_every_row_exactly_once(
    runtime: runner.Runtime, engine: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    rows = 200_000
    store = JobStore(engine)
    job_id = new_job_id()
    write_polls(outputs.upload_path(runtime.tasks.files_dir, job_id), rows)
    params = {"table": "store_status", "mode": "append", "file_name": "polls.csv"}
    store.create(JobKind.IMPORT, params, queues.DEFAULT, job_id=job_id)

    outcome = run_through_an_outage(store, database_url, job_id, caplog)

    finished = store.get(job_id)
    assert finished is not None
    assert (outcome, finished.state, finished.failures) == ("finished", "finished", 0)
    assert count(engine, lambda: select(func.count()).select_from(StoreStatus)) == rows
    assert count(engine, lambda: select(func.count()).select_from(visible_store_status)) == rows
    distinct = select(func.count(func.distinct(StoreStatus.store_id)))
    assert count(engine, lambda: distinct) == rows
