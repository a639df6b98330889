"""Making room for an urgent job in real Redis and databases: a heavy running job is asked to
yield only when every worker is busy with someone else."""

from __future__ import annotations

import redis
from sqlalchemy import Engine

from yardmaster.shared import keys, queues
from yardmaster.shared.jobs import JobKind
from yardmaster.shared.jobstore import JobStore
from yardmaster.shared.models import Job
from yardmaster.shared.preemption import make_room


def with_report_workers(redis_url: str, count: int) -> redis.Redis:
    client = redis.Redis.from_url(redis_url)
    for n in range(count):
        client.set(keys.heartbeat_key("report-worker", f"w{n}"), "{}")
    return client


def running_job(store: JobStore, job_class: int, priority: int) -> Job:
    job = store.create(
        JobKind.WORK, {"execution_time": 1}, queues.LOW, priority=priority, job_class=job_class
    )
    claimed = store.claim(job.id, worker="w0")
    assert claimed is not None
    return claimed


def queued_job(store: JobStore, job_class: int, priority: int) -> Job:
    return store.create(
        JobKind.WORK, {"execution_time": 0.001}, queues.HIGH, priority=priority,
        job_class=job_class,
    )  # fmt: skip


def test_a_heavy_job_yields_when_every_worker_is_busy(engine: Engine, redis_url: str) -> None:
    store, client = JobStore(engine), with_report_workers(redis_url, 2)
    heavy = running_job(store, job_class=5, priority=10)
    running_job(store, job_class=1, priority=90)

    assert make_room(engine, client, queued_job(store, job_class=1, priority=90)) == heavy.id


def test_nobody_yields_while_a_worker_is_free(engine: Engine, redis_url: str) -> None:
    store, client = JobStore(engine), with_report_workers(redis_url, 2)
    running_job(store, job_class=5, priority=10)

    assert make_room(engine, client, queued_job(store, job_class=1, priority=90)) is None


def test_an_urgent_job_a_free_worker_already_took_makes_nobody_yield(
    engine: Engine, redis_url: str
) -> None:
    store, client = JobStore(engine), with_report_workers(redis_url, 2)
    running_job(store, job_class=5, priority=10)
    urgent = queued_job(store, job_class=1, priority=90)
    taken = store.claim(urgent.id, worker="w1")  # the free worker was faster than make_room
    assert taken is not None

    assert make_room(engine, client, taken) is None
