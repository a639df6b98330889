"""Running one segment of a job: claim, steps, checkpoints, and the user's pause or stop.

``run_segment`` is what RQ executes (enqueued by dotted path from :mod:`jobbus`). The
database decides everything: the claim is a conditional update, every checkpoint is fenced
by the attempt and reports what the user asked for meanwhile.

A busy or unreachable database is waited out, not counted as a failed attempt: the chunk
that met it was rolled back together with its checkpoint, so the task is restored from the
checkpoint the database holds and the chunk done again (no row lost, none written twice).
The segment keeps its lease meanwhile; it gives up only if the lease is lost.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from rq import Queue
from sqlalchemy import Engine

from yardmaster.report_worker.admission import Admission
from yardmaster.report_worker.tasks import TASKS, Task, TaskContext
from yardmaster.report_worker.tasks.base import TaskError
from yardmaster.shared import keys, queues, scheduling
from yardmaster.shared.errors import DatabaseUnavailableError
from yardmaster.shared.holds import Holds, customer_of, is_deactivated
from yardmaster.shared.jobbus import Control, enqueue_segment, publish_job
from yardmaster.shared.jobs import CLAIMABLE_STATES, HELD_STATES, JobState
from yardmaster.shared.jobstore import JobStore, utcnow
from yardmaster.shared.leases import Lease, LeaseKeeper
from yardmaster.shared.models import Job
from yardmaster.shared.outage import wait_out
from yardmaster.shared.siteslots import Slot

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Work between two checkpoints (and two looks at what the user asked for).
CHECKPOINT_INTERVAL_SECONDS = 0.25


class SupersededError(Exception):
    """This attempt no longer holds the job; everything it did in the transaction is undone."""


@dataclass
class Runtime:
    """What segments need, built once by the worker process (inherited by its work horses)."""

    engine: Engine
    redis: redis.Redis
    tasks: TaskContext
    worker_name: str
    lease_seconds: float
    #: Site caps (None: scheduling is plain FIFO, no caps).
    admission: Admission | None = None


_runtime: Runtime | None = None


def configure(runtime: Runtime) -> None:
    """Install the runtime of this worker process (its composition root calls this)."""
    global _runtime
    _runtime = runtime


def run_segment(job_id: str, version: int | None = None) -> str:
    """RQ entry point: run the job until it finishes, pauses, stops or must yield.

    ``version`` is the job's ``state_version`` when this segment was enqueued; the claim is
    fenced by it, so a segment that a later decision replaced (the reaper's, say) is skipped.
    Segments enqueued without one claim unfenced.
    """
    if _runtime is None:
        raise RuntimeError(
            "runner not configured: start segments with python -m yardmaster.report_worker"
        )
    _runtime.engine.dispose(close=False)  # a forked horse must not share the parent's connections
    store = JobStore(_runtime.engine)
    waiting = wait_out(lambda: store.get(job_id), f"job {job_id}")
    if waiting is None or JobState(waiting.state) not in CLAIMABLE_STATES:
        log.info("job %s: not claimable any more; segment skipped", job_id)
        return "skipped"
    client = _runtime.redis
    if wait_out(lambda: _put_on_hold(store, client, waiting, version), f"job {job_id}"):
        return "on hold"
    admission = _runtime.admission
    slot = admission.admit(waiting) if admission is not None else None
    if slot is Slot.PARKED:
        return "parked"
    job = None
    # Listen before claiming: a pause or stop sent right after the claim must not be missed.
    control = ControlListener(_runtime.redis, job_id)
    try:
        worker = _runtime.worker_name
        job = wait_out(lambda: store.claim(job_id, worker=worker, version=version), f"job {job_id}")
        if job is None:
            log.info("job %s: not claimable any more; segment skipped", job_id)
            return "skipped"
        publish_job(_runtime.redis, job)
        return Segment(job, store, _runtime, control).run()
    finally:
        control.close()
        # A slot held already belongs to another segment of this job, unless this one ran it.
        if admission is not None and (
            slot is Slot.TAKEN or (slot is Slot.HELD_ALREADY and job is not None)
        ):
            admission.release(waiting)


def _put_on_hold(store: JobStore, client: redis.Redis, waiting: Job, version: int | None) -> bool:
    """Put the job on hold instead of claiming it if its customer is deactivated (see
    :mod:`yardmaster.shared.holds`); True if it was. A customer reactivated meanwhile, or a
    job decided about since this segment was enqueued, is left to the claim."""
    customer_id = customer_of(waiting.owner)
    if customer_id is None:
        return False
    with store.engine.connect() as connection:
        if not is_deactivated(connection, customer_id):
            return False
    if not Holds(store).hold(waiting, waiting.state_version if version is None else version):
        return False
    log.info("job %s: customer %d is deactivated; job on hold", waiting.id, customer_id)
    held = store.get(waiting.id)
    if held is not None:
        publish_job(client, held)
    return True


class ControlListener:
    """Wakes the segment when the API or the worker sends a control message for its job."""

    def __init__(self, client: redis.Redis, job_id: str) -> None:
        self.wake = threading.Event()
        self.preempted = threading.Event()
        self.yielding = threading.Event()
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self._pubsub.subscribe(**{keys.job_control_channel(job_id): self._on_message})
        self._thread = self._pubsub.run_in_thread(
            sleep_time=0.05, daemon=True, exception_handler=self._on_error
        )

    def _on_error(self, error: BaseException, pubsub: Any, thread: Any) -> None:
        """A lost control channel is not fatal: checkpoints still read the state every 0.25 s."""
        log.warning("control channel error (%s); relying on checkpoints", error)
        thread.stop()

    def _on_message(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        if data in (Control.PREEMPT.encode(), Control.PREEMPT):
            self.preempted.set()
        elif data in (Control.YIELD.encode(), Control.YIELD):
            self.yielding.set()
        self.wake.set()

    def close(self) -> None:
        """Stop listening. Not waited for: the thread notices within its 50 ms poll and closes
        the subscription itself, and a work horse exits right after its segment anyway."""
        self._thread.stop()


class Segment:
    """One attempt's run of a job, from its claim to the point it gives the job back."""

    def __init__(
        self, job: Job, store: JobStore, runtime: Runtime, control: ControlListener
    ) -> None:
        self.job = job
        self.store = store
        self.runtime = runtime
        self.control = control
        self.attempt = job.attempt
        #: The task as of the last checkpoint committed; None when it must be restored again.
        self.task: Task | None = None
        #: Set when this attempt lost its lease (the keeper's event, once it runs).
        self.lost = threading.Event()

    def run(self) -> str:
        token = f"{self.attempt}:{self.runtime.worker_name}:{os.getpid()}"
        lease = Lease(
            self.runtime.redis, keys.job_lease_key(self.job.id), token, self.runtime.lease_seconds
        )
        lease.take_over()
        keeper = LeaseKeeper(lease)
        keeper.start()
        self.lost = keeper.lost
        try:
            return self._run(self.control)
        except SupersededError:
            log.warning(
                "job %s: attempt %d superseded; its last chunk was undone",
                self.job.id,
                self.attempt,
            )
            return "superseded"
        except DatabaseUnavailableError as exc:
            log.warning(
                "job %s: attempt %d lost its lease while waiting (%s); the job is requeued",
                self.job.id,
                self.attempt,
                exc,
            )
            return "superseded"
        finally:
            keeper.stop()
            lease.release()

    def _run(self, control: ControlListener) -> str:
        task_class = TASKS.get(self.job.kind)
        if task_class is None:
            return self._fail(None, f"no worker knows jobs of kind {self.job.kind!r}")
        try:
            while True:
                if self.lost.is_set():
                    raise SupersededError
                state, done = self._durably(lambda: self._next_chunk(task_class, control))
                self._publish()
                if done:
                    return self._finish()
                if state is JobState.PAUSING:
                    return self._settle(JobState.PAUSING, JobState.PAUSED, "paused")
                if state is JobState.STOPPING:
                    return self._stop(task_class(self.job, self.runtime.tasks))
                if control.preempted.is_set():
                    return self._preempt("requeued: worker shutting down")
                if control.yielding.is_set() or self._urgent_job_waiting():
                    return self._preempt("requeued: yielded to a more urgent job", yielded=True)
        except TaskError as exc:
            return self._fail(task_class(self.job, self.runtime.tasks), str(exc))
        except (SupersededError, DatabaseUnavailableError):
            raise
        except Exception as exc:
            log.exception("job %s: attempt %d crashed", self.job.id, self.attempt)
            reason = f"{type(exc).__name__}: {exc}"
            return self._retry_or_fail(task_class(self.job, self.runtime.tasks), reason)

    def _durably(self, work: Callable[[], T]) -> T:
        """``work()``, waiting out a busy or unreachable database for as long as this
        attempt holds its lease (:class:`DatabaseUnavailableError` once it does not)."""
        return wait_out(work, f"job {self.job.id}", self.lost)

    def _next_chunk(
        self, task_class: type[Task], control: ControlListener
    ) -> tuple[JobState, bool]:
        """One chunk (:meth:`_chunk`) of the task as of the last checkpoint committed.

        A chunk that failed was rolled back with its checkpoint while the task had moved on,
        so the next one starts from a task restored from the checkpoint the database holds.
        """
        if self.task is None:
            self.task = self._restore(task_class)
        try:
            return self._chunk(self.task, control)
        except BaseException:
            self.task = None
            raise

    def _restore(self, task_class: type[Task]) -> Task:
        """A task continuing from this attempt's last checkpoint, as the job's row holds it."""
        job = self.store.get(self.job.id)
        if job is None or job.attempt != self.attempt or JobState(job.state) not in HELD_STATES:
            raise SupersededError
        task = task_class(job, self.runtime.tasks)
        task.restore(job.checkpoint)
        return task

    def _urgent_job_waiting(self) -> bool:
        """True when this heavy job should yield because an urgent job has been waiting a
        whole checkpoint interval (so no worker is idle). One such yield per interval across
        all workers; at most MAX_PREEMPTIONS per job."""
        job = self.job
        if (
            self.runtime.admission is None
            or job.queue == queues.HIGH
            or job.job_class not in scheduling.PREEMPTIBLE_CLASSES
            or job.preemptions >= scheduling.MAX_PREEMPTIONS
        ):
            return False
        client = self.runtime.redis
        if Queue(queues.HIGH, connection=client).count == 0:
            return False
        gate_ms = int(CHECKPOINT_INTERVAL_SECONDS * 1000)
        return bool(client.set(keys.YIELD_GATE, "1", nx=True, px=gate_ms))

    def _retry_or_fail(self, task: Task, reason: str) -> str:
        """After an unexpected error: queue again from the checkpoint while attempts are left."""
        failures = self.job.failures + 1
        if failures >= self.job.max_attempts:
            return self._fail(task, f"{reason} (after {failures} failed attempts)")
        if not self._durably(
            lambda: self.store.transition(
                self.job.id,
                HELD_STATES,
                JobState.QUEUED,
                fence=self.attempt,
                error=reason[:2000],
                progress_message="retrying",
                failures=failures,
            )
        ):
            raise SupersededError
        self._enqueue_next()
        self._publish()
        return "retrying"

    def _enqueue_next(self, at_front: bool = False) -> None:
        """Enqueue the job's next segment and record it (the job must be queued again)."""
        job = self._durably(lambda: self.store.get(self.job.id))
        assert job is not None
        rq_id = enqueue_segment(self.runtime.redis, job, at_front=at_front)
        self._durably(lambda: self.store.set_segment(job.id, rq_id))

    def _chunk(self, task: Task, control: ControlListener) -> tuple[JobState, bool]:
        """Steps for one checkpoint interval, committed together with the checkpoint."""
        with self.runtime.engine.begin() as connection:
            deadline = time.monotonic() + CHECKPOINT_INTERVAL_SECONDS
            done = False
            while not done and time.monotonic() < deadline and not control.wake.is_set():
                done = task.step(connection)
                if task.writes_in_bulk:
                    break  # its next step's reading and parsing must not hold the write lock
            control.wake.clear()
            state = self.store.save_checkpoint(
                connection, self.job.id, self.attempt, task.checkpoint(), task.progress()
            )
            if state is None:
                raise SupersededError
        return state, done

    def _finish(self) -> str:
        task = self.task
        assert task is not None  # the chunk that just committed left it
        self._durably(lambda: self._commit_finish(task))
        task.after_finish()
        self._publish()
        log.info("job %s: finished", self.job.id)
        return "finished"

    def _commit_finish(self, task: Task) -> None:
        with self.runtime.engine.begin() as connection:
            # The job's row first: it takes the write lock before the task moves any file
            # (SQLite waits for the lock here), and tells whether the job is still ours.
            held = self.store.save_checkpoint(
                connection, self.job.id, self.attempt, task.checkpoint(), task.progress()
            )
            if held is None:
                raise SupersededError
            result = task.finish(connection)
            columns: dict[str, Any] = {
                "finished_at": utcnow(),
                "progress_fraction": 1.0,
                "progress_message": "finished",
            }
            if result is not None:
                columns.update(
                    result_path=str(result.path),
                    result_name=result.name,
                    result_type=result.media_type,
                )
            if not self.store.transition(
                self.job.id,
                HELD_STATES,
                JobState.FINISHED,
                fence=self.attempt,
                connection=connection,
                **columns,
            ):
                raise SupersededError

    def _stop(self, task: Task) -> str:
        self._durably(lambda: self._commit_stop(task))
        self._publish()
        log.info("job %s: stopped by request", self.job.id)
        return "stopped"

    def _commit_stop(self, task: Task) -> None:
        with self.runtime.engine.begin() as connection:
            task.cleanup(connection)
            if not self.store.transition(
                self.job.id,
                [JobState.STOPPING],
                JobState.STOPPED,
                fence=self.attempt,
                connection=connection,
                finished_at=utcnow(),
                progress_message="stopped",
            ):
                raise SupersededError

    def _settle(self, source: JobState, target: JobState, note: str) -> str:
        if not self._durably(
            lambda: self.store.transition(
                self.job.id, [source], target, fence=self.attempt, progress_message=note
            )
        ):
            raise SupersededError
        self._publish()
        log.info("job %s: %s", self.job.id, note)
        return note

    def _preempt(self, note: str, yielded: bool = False) -> str:
        """Give the job back, first in its queue, to continue from its checkpoint."""
        extra: dict[str, Any] = {"preemptions": Job.preemptions + 1} if yielded else {}
        if not self._durably(
            lambda: self.store.transition(
                self.job.id,
                [JobState.RUNNING],
                JobState.QUEUED,
                fence=self.attempt,
                progress_message=note,
                enqueued_at=utcnow(),  # aging counts this wait, not the time it ran
                **extra,
            )
        ):
            raise SupersededError
        self._publish()
        log.info("job %s: %s", self.job.id, note)
        self._enqueue_next(at_front=True)
        return "requeued"

    def _fail(self, task: Task | None, reason: str) -> str:
        self._durably(lambda: self._commit_fail(task, reason))
        self._publish()
        log.warning("job %s: failed: %s", self.job.id, reason)
        return "failed"

    def _commit_fail(self, task: Task | None, reason: str) -> None:
        with self.runtime.engine.begin() as connection:
            if task is not None:
                task.cleanup(connection)
            if not self.store.transition(
                self.job.id,
                HELD_STATES,
                JobState.FAILED,
                fence=self.attempt,
                connection=connection,
                error=reason[:2000],
                finished_at=utcnow(),
                progress_message="failed",
            ):
                raise SupersededError

    def _publish(self) -> None:
        job = self._durably(lambda: self.store.get(self.job.id))
        if job is not None:
            publish_job(self.runtime.redis, job)
