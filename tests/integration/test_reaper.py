"""The reaper: queued jobs whose segment is lost or stuck get a new one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import redis
from rq import Queue
from rq.job import JobStatus
from sqlalchemy import Engine, update

from yardmaster.report_worker.reaper import Reaper
from yardmaster.report_worker.tasks import TaskContext
from yardmaster.shared import queues
from yardmaster.shared.jobbus import enqueue_segment
from yardmaster.shared.jobs import JobKind
from yardmaster.shared.jobstore import JobStore
from yardmaster.shared.migrate import upgrade_to_head
from yardmaster.shared.models import Job


def setup(engine: Engine, redis_url: str, tmp_path: Path) -> tuple[JobStore, redis.Redis, Reaper]:
    upgrade_to_head(engine)
    store = JobStore(engine)
    client = redis.Redis.from_url(redis_url)
    return store, client, Reaper(store, client, TaskContext(engine, tmp_path), stop_grace=5)


def age(engine: Engine, job_id: str, seconds: float) -> None:
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    with engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == job_id).values(updated_at=earlier))


def test_a_queued_job_whose_segment_vanished_gets_a_new_one(
    engine: Engine, redis_url: str, tmp_path: Path
) -> None:
    store, client, reaper = setup(engine, redis_url, tmp_path)
    job = store.create(JobKind.WORK, {"execution_time": 1}, queues.DEFAULT)
    store.set_segment(job.id, "gone-segment")
    age(engine, job.id, 60)

    reaper.sweep()

    segment = store.get(job.id).segment  # type: ignore[union-attr]
    assert segment != "gone-segment"
    assert Queue(queues.DEFAULT, connection=client).job_ids == [segment]


def test_a_queued_job_whose_segment_started_but_never_claimed_it_gets_a_new_one(
    engine: Engine, redis_url: str, tmp_path: Path
) -> None:
    store, client, reaper = setup(engine, redis_url, tmp_path)
    job = store.create(JobKind.WORK, {"execution_time": 1}, queues.DEFAULT)
    stuck = enqueue_segment(client, job)
    store.set_segment(job.id, stuck)
    queue = Queue(queues.DEFAULT, connection=client)
    queue.remove(stuck)
    rq_job = queue.fetch_job(stuck)
    assert rq_job is not None
    rq_job.set_status(JobStatus.STARTED)
    age(engine, job.id, 60)

    reaper.sweep()

    fresh = store.get(job.id).segment  # type: ignore[union-attr]
    assert fresh not in (None, stuck)
    assert queue.job_ids == [fresh]


def test_a_queued_job_waiting_in_its_queue_is_left_alone(
    engine: Engine, redis_url: str, tmp_path: Path
) -> None:
    store, client, reaper = setup(engine, redis_url, tmp_path)
    job = store.create(JobKind.WORK, {"execution_time": 1}, queues.DEFAULT)
    waiting = enqueue_segment(client, job)
    store.set_segment(job.id, waiting)
    age(engine, job.id, 60)

    reaper.sweep()

    assert store.get(job.id).segment == waiting  # type: ignore[union-attr]


def running_without_lease(store: JobStore, engine: Engine, attempt: int, failures: int) -> str:
    job = store.create(JobKind.WORK, {"execution_time": 1}, queues.DEFAULT)
    with engine.begin() as connection:
        connection.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(state="running", attempt=attempt, failures=failures)
        )
    age(engine, job.id, 60)
    return job.id


def test_pauses_and_yields_do_not_use_up_a_jobs_attempts_only_failures_do(
    engine: Engine, redis_url: str, tmp_path: Path
) -> None:
    store, _client, reaper = setup(engine, redis_url, tmp_path)
    resumed_often = running_without_lease(store, engine, attempt=5, failures=0)
    failed_twice = running_without_lease(store, engine, attempt=3, failures=2)

    reaper.sweep()

    requeued = store.get(resumed_often)
    assert requeued is not None
    assert (requeued.state, requeued.failures) == ("queued", 1)
    failed = store.get(failed_twice)
    assert failed is not None
    assert (failed.state, failed.error) == ("failed", "worker lost 3 times")
