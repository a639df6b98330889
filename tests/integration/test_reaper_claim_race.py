"""A worker's claim and the reaper's decision about the same queued job cannot interleave.

The reaper reads the jobs waiting for a worker, then decides about each. A segment that
starts and claims its job between the two must be left alone (the job runs once, on its
first attempt); a segment the reaper replaced must not claim the job afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.job import Job as RQJob
from rq.job import JobStatus
from sqlalchemy import Engine, update

from support import eventually
from yardmaster.report_worker import runner
from yardmaster.report_worker.reaper import Reaper
from yardmaster.report_worker.tasks import TaskContext
from yardmaster.shared import queues
from yardmaster.shared.db import make_engine
from yardmaster.shared.jobbus import enqueue_segment
from yardmaster.shared.jobs import JobKind
from yardmaster.shared.jobstore import JobStore
from yardmaster.shared.migrate import upgrade_to_head
from yardmaster.shared.models import Job

#: The RQ worker the started segment runs on; the reaper's kill would be sent to it.
WORKER = "rw-race"


@pytest.fixture
def runtime(
    database_url: str,
    engine: Engine,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[runner.Runtime]:
    """The runtime a report worker installs, for segments run in this process (its engine is
    the segments' alone: a segment drops the pool it inherits, as a forked work horse must)."""
    upgrade_to_head(engine)
    own = make_engine(database_url)
    client = redis.Redis.from_url(redis_url)
    runtime = runner.Runtime(own, client, TaskContext(own, tmp_path / "files"), WORKER, 5.0)
    monkeypatch.setattr(runner, "_runtime", runtime)
    yield runtime
    client.close()
    own.dispose()


class SegmentThread(threading.Thread):
    """``run_segment`` as the RQ worker runs it, on a thread of its own."""

    def __init__(self, job_id: str, version: int) -> None:
        super().__init__(name=f"segment:{job_id}", daemon=True)
        self.job_id, self.version = job_id, version
        self.outcome: str | None = None

    def run(self) -> None:
        self.outcome = runner.run_segment(self.job_id, self.version)

    def result(self, timeout: float = 60.0) -> str | None:
        self.join(timeout)
        assert not self.is_alive(), "the segment did not end"
        return self.outcome


class KillListener:
    """Records the commands sent to :data:`WORKER` (``stop-job`` is the reaper's kill)."""

    def __init__(self, client: redis.Redis) -> None:
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self.pubsub.subscribe(f"rq:pubsub:{WORKER}")

    def commands(self, wait: float = 0.5) -> list[str]:
        """The commands sent so far (any sent up to ``wait`` seconds ago have arrived)."""
        seen, deadline = [], time.monotonic() + wait
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.05)
            if message is not None:
                seen.append(json.loads(message["data"])["command"])
        return seen

    def close(self) -> None:
        self.pubsub.close()


def queued_job_with_started_segment(store: JobStore, client: redis.Redis) -> tuple[Job, str]:
    """A job queued long ago whose segment a worker has just taken off the queue (started,
    not yet claimed): exactly what the reaper sees when it reads between the two."""
    job = store.create(JobKind.WORK, {"execution_time": 0.3}, queues.DEFAULT)
    segment = enqueue_segment(client, job)
    store.set_segment(job.id, segment)
    Queue(queues.DEFAULT, connection=client).remove(segment)
    rq_job = RQJob.fetch(segment, connection=client)
    rq_job.worker_name = WORKER
    rq_job.save()
    rq_job.set_status(JobStatus.STARTED)
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
    with store.engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == job.id).values(updated_at=earlier))
    aged = store.get(job.id)
    assert aged is not None
    return aged, segment


def state(store: JobStore, job_id: str) -> str:
    job = store.get(job_id)
    assert job is not None
    return job.state


def test_a_claim_between_the_reapers_read_and_its_decision_runs_the_job_once(
    runtime: runner.Runtime, engine: Engine, tmp_path: Path
) -> None:
    store, client = JobStore(engine), runtime.redis
    reaper = Reaper(store, client, TaskContext(engine, tmp_path), stop_grace=5)
    job, segment = queued_job_with_started_segment(store, client)
    kills = KillListener(client)

    read = reaper.survey()  # the reaper reads the job: queued, its segment started
    assert [(j.id, j.state) for j in read] == [(job.id, "queued")]
    running = SegmentThread(job.id, job.state_version)
    running.start()
    eventually(lambda: state(store, job.id) != "queued", 30, "the segment claimed its job")
    reaper.decide(read)  # ... and decides on what it read

    assert running.result() == "finished"
    assert kills.commands() == []  # no stop-job: the worker's horse would have been killed
    kills.close()
    done = store.get(job.id)
    assert done is not None
    assert (done.state, done.attempt, done.failures, done.segment) == ("finished", 1, 0, segment)
    assert Queue(queues.DEFAULT, connection=client).job_ids == []
    history = [(h.to_state, h.reason) for h in store.history(job.id)]
    assert history == [
        ("queued", "created"),
        ("running", f"worker {WORKER} claimed it (attempt 1)"),
        ("finished", "finished"),
    ]


def test_a_segment_the_reaper_replaced_can_no_longer_claim_its_job(
    runtime: runner.Runtime, engine: Engine, tmp_path: Path
) -> None:
    store, client = JobStore(engine), runtime.redis
    reaper = Reaper(store, client, TaskContext(engine, tmp_path), stop_grace=5)
    job, stuck = queued_job_with_started_segment(store, client)

    reaper.decide(reaper.survey())  # the segment looks stuck: replaced, and killed
    replaced = store.get(job.id)
    assert replaced is not None
    assert replaced.segment != stuck
    assert Queue(queues.DEFAULT, connection=client).job_ids == [replaced.segment]

    # The stuck segment wakes up after all: it is skipped, the job still waits for the new one.
    assert runner.run_segment(job.id, job.state_version) == "skipped"
    assert state(store, job.id) == "queued"
    runtime.engine.dispose()  # closed, not dropped, before the next segment drops the pool
    fresh = SegmentThread(job.id, replaced.state_version)
    fresh.start()
    assert fresh.result() == "finished"
    done = store.get(job.id)
    assert done is not None
    assert (done.state, done.attempt, done.failures) == ("finished", 1, 0)
