"""The reaper: finds jobs whose worker died, ignored a stop, or whose segment was lost, and
jobs left on hold although their customer is active again.

It runs as a thread in every report worker; reapers race harmlessly because each decision
is a conditional update fenced by the job's attempt.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

import redis
from redis.exceptions import RedisError
from rq.job import Job as RQJob
from rq.job import JobStatus
from sqlalchemy.exc import SQLAlchemyError

from yardmaster.report_worker.admission import Admission
from yardmaster.report_worker.tasks import TASKS, TaskContext
from yardmaster.report_worker.tasks.publication import sweep_hidden_rows
from yardmaster.shared import keys
from yardmaster.shared.db import describe_database_error
from yardmaster.shared.errors import DatabaseUnavailableError
from yardmaster.shared.holds import Holds, enqueue_released
from yardmaster.shared.jobbus import enqueue_segment, kill_segment, publish_job
from yardmaster.shared.jobs import CLAIMABLE_STATES, HELD_STATES, JobState
from yardmaster.shared.jobstore import JobStore, utcnow
from yardmaster.shared.models import Job
from yardmaster.shared.outage import wait_out

log = logging.getLogger(__name__)

#: A held job with no lease is dead only if its row has not moved for this long either.
SILENCE_SECONDS = 2.0
#: A queued job whose segment is not on any queue for this long gets a new one.
LOST_SEGMENT_SECONDS = 5.0
#: Segments still waiting for a worker. A *started* segment of a job still queued after
#: LOST_SEGMENT_SECONDS is taken for stuck; it may also have just started, so the reaper
#: replaces it only through a compare-and-set that a claim made meanwhile defeats.
WAITING_SEGMENT_STATUSES = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


class Reaper:
    """One pass over the jobs that need a decision nobody else will take."""

    def __init__(
        self,
        store: JobStore,
        client: redis.Redis,
        tasks: TaskContext,
        stop_grace: float,
        admission: Admission | None = None,
    ) -> None:
        self.store = store
        self.redis = client
        self.tasks = tasks
        self.stop_grace = dt.timedelta(seconds=stop_grace)
        self.admission = admission

    def sweep(self) -> None:
        """Handle dead holders, overdue stops and lost segments; then site slots and aging;
        then delete rows that replaced or abandoned imports left hidden."""
        self.decide(self.survey())
        self._release_stranded()
        if self.admission is not None:
            self.admission.sweep()
        sweep_hidden_rows(self.store.engine)

    def survey(self) -> list[Job]:
        """The jobs that may need a decision, as read now (held or waiting for a worker)."""
        return self.store.in_states(HELD_STATES | CLAIMABLE_STATES)

    def decide(self, jobs: list[Job]) -> None:
        """Decide about each job as :meth:`survey` read it. The read may be stale by now (a
        worker claimed, a user paused): every decision is a compare-and-set on what was read,
        and a lost one does nothing."""
        now = utcnow()
        for job in jobs:
            if JobState(job.state) in HELD_STATES:
                self._check_held(job, now)
            else:
                self._check_queued(job, now)

    def _check_held(self, job: Job, now: dt.datetime) -> None:
        has_lease = self.redis.exists(keys.job_lease_key(job.id))
        overdue_stop = (
            job.state == JobState.STOPPING
            and job.stop_requested_at is not None
            and now - job.stop_requested_at > self.stop_grace
        )
        if overdue_stop:
            log.warning(
                "job %s: ignored its stop for %s; killing its segment", job.id, self.stop_grace
            )
            kill_segment(self.redis, job.segment)
            self._settle(
                job,
                JobState.STOPPED,
                cleanup=True,
                finished_at=utcnow(),
                progress_message="stopped (forced)",
            )
        elif not has_lease and now - job.updated_at > dt.timedelta(seconds=SILENCE_SECONDS):
            self._recover(job)

    def _recover(self, job: Job) -> None:
        """The holder is gone: honour what the user asked, else retry or fail."""
        state = JobState(job.state)
        log.warning("job %s: worker lost during attempt %d (%s)", job.id, job.attempt, state)
        if state is JobState.PAUSING:
            self._settle(job, JobState.PAUSED, progress_message="paused")
        elif state is JobState.STOPPING:
            self._settle(
                job,
                JobState.STOPPED,
                cleanup=True,
                finished_at=utcnow(),
                progress_message="stopped",
            )
        elif job.failures + 1 >= job.max_attempts:
            self._settle(
                job,
                JobState.FAILED,
                cleanup=True,
                finished_at=utcnow(),
                error=f"worker lost {job.failures + 1} times",
                progress_message="failed",
                failures=job.failures + 1,
            )
        elif self._settle(
            job,
            JobState.QUEUED,
            progress_message="requeued: worker lost",
            failures=job.failures + 1,
        ):
            self._enqueue(job.id, at_front=True)

    def _check_queued(self, job: Job, now: dt.datetime) -> None:
        if now - job.updated_at < dt.timedelta(seconds=LOST_SEGMENT_SECONDS):
            return
        status = self._segment_status(job.segment)
        if status in WAITING_SEGMENT_STATUSES:
            return
        # Decide before acting: the job must be unchanged since it was read. A segment that
        # claimed it meanwhile bumped its version, so this loses and its run is left alone.
        # Winning bumps the version in turn, so the old segment can no longer claim it (its
        # claim is fenced by the version it was enqueued at): only then is it killed.
        state = JobState(job.state)
        if not self.store.transition(
            job.id, [state], state, fence=job.attempt, version=job.state_version
        ):
            return
        log.warning(
            "job %s: %s but its segment %s is %s; enqueuing a new one",
            job.id,
            job.state,
            job.segment,
            status or "gone",
        )
        if status == JobStatus.STARTED:  # started but never claimed: its process is stuck
            kill_segment(self.redis, job.segment)
        self._enqueue(job.id, at_front=state is JobState.RESUMING)

    def _release_stranded(self) -> None:
        """Queue again the jobs on hold whose customer is active (see :mod:`.holds`)."""
        released = Holds(self.store).release_stranded()
        if released:
            log.warning("jobs %s: on hold with an active customer; queued again", released)
            enqueue_released(self.store, self.redis, released)

    def _segment_status(self, rq_id: str | None) -> JobStatus | None:
        if not rq_id:
            return None
        try:
            return RQJob.fetch(rq_id, connection=self.redis).get_status()
        except Exception:  # NoSuchJobError, or a payload RQ cannot read
            return None

    def _settle(self, job: Job, to: JobState, cleanup: bool = False, **values: Any) -> bool:
        with self.store.engine.begin() as connection:
            task_class = TASKS.get(job.kind)
            if cleanup and task_class is not None:
                task_class(job, self.tasks).cleanup(connection)
            won = self.store.transition(
                job.id,
                [JobState(job.state)],
                to,
                fence=job.attempt,
                connection=connection,
                **values,
            )
        if won:
            self.redis.delete(keys.job_lease_key(job.id))
            changed = self.store.get(job.id)
            if changed is not None:
                publish_job(self.redis, changed)
        return won

    def _enqueue(self, job_id: str, at_front: bool) -> None:
        job = self.store.get(job_id)
        if job is not None:
            self.store.set_segment(job.id, enqueue_segment(self.redis, job, at_front=at_front))


class ReaperThread(threading.Thread):
    """Sweeps every ``interval`` seconds until stopped; errors are logged, never fatal.

    A sweep that meets a busy or unreachable database is done again once it answers (one
    log line for the outage): each decision is a fenced conditional update, so a decision
    already made is not made twice.
    """

    def __init__(self, reaper: Reaper, interval: float = 0.5) -> None:
        super().__init__(daemon=True, name="reaper")
        self.reaper = reaper
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        last_error = ""
        while not self.stopping.wait(self.interval):
            try:
                wait_out(self.reaper.sweep, "reaper", self.stopping)
                last_error = ""
            except DatabaseUnavailableError:
                return  # stopping while the database is away
            except (RedisError, SQLAlchemyError) as exc:
                error = describe_database_error(exc)
                if error != last_error:  # once per distinct problem, not every second
                    log.warning("reaper: sweeps skipped until this clears: %s", error)
                last_error = error
            except Exception:  # a bug must not silently end recovery for this worker
                log.exception("reaper: sweep failed; trying again")
