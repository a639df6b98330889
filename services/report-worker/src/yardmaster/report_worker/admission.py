"""The worker side of the scheduling policy: per-site run slots and aging promotions.

The policy itself (classes, tiers, queues, bounds, caps) is pure and lives in
:mod:`yardmaster.shared.scheduling`; this module applies it with Redis and the database.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

import redis

from yardmaster.shared import keys, queues, scheduling
from yardmaster.shared.heartbeat import live_count
from yardmaster.shared.jobbus import cancel_segment, enqueue_segment, publish_job
from yardmaster.shared.jobs import CLAIMABLE_STATES, HELD_STATES, JobState
from yardmaster.shared.jobstore import JobStore, utcnow
from yardmaster.shared.models import Job
from yardmaster.shared.services import Service
from yardmaster.shared.siteslots import SiteSlots, Slot, park_score

log = logging.getLogger(__name__)

#: How long the count of live report workers (for site caps) is reused.
WORKER_COUNT_TTL_SECONDS = 2.0


@dataclass
class Admission:
    """Site caps and aging for one report worker process."""

    store: JobStore
    redis: redis.Redis
    site_share: float
    aging_base: float
    slots: SiteSlots = field(init=False)
    _workers: tuple[float, int] = (0.0, 1)
    #: Slot holders found not running at the previous sweep (freed if still so at the next).
    _suspects: set[tuple[int, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.slots = SiteSlots(self.redis)

    # -- run slots -------------------------------------------------------------------------

    def cap(self) -> int:
        """How many jobs of one site may run now (a share of the live report workers)."""
        checked, count = self._workers
        if time.monotonic() - checked > WORKER_COUNT_TTL_SECONDS:
            count = max(1, live_count(self.redis, Service.REPORT_WORKER))
            self._workers = (time.monotonic(), count)
        return scheduling.site_cap(count, self.site_share)

    def admit(self, job: Job) -> Slot | None:
        """A run slot for ``job`` (None: no cap applies: no site, or a light class)."""
        if job.site_id is None or not scheduling.capped(_job_class(job)):
            return None
        enqueued = (job.enqueued_at or job.created_at).timestamp()
        slot = self.slots.acquire(
            job.site_id, job.id, self.cap(), park_score(job.priority, enqueued)
        )
        if slot is Slot.PARKED:
            log.info("job %s: site %s is at its cap; parked", job.id, job.site_id)
        return slot

    def release(self, job: Job) -> None:
        """Give the job's slot back and start the site's next parked job, if any."""
        if job.site_id is not None and scheduling.capped(_job_class(job)):
            self._start_parked(job.site_id, self.slots.release(job.site_id, job.id, self.cap()))

    def _start_parked(self, site_id: int, job_id: str | None) -> None:
        """Enqueue parked ``job_id`` (first in its queue), skipping jobs no longer waiting."""
        while job_id is not None:
            job = self.store.get(job_id)
            if job is not None and JobState(job.state) in CLAIMABLE_STATES:
                state = JobState(job.state)
                if self.store.transition(job.id, [state], state, fence=job.attempt):
                    self._enqueue(job.id, at_front=True)
                    return
            job_id = self.slots.release(site_id, "", self.cap())

    # -- reaper duties ---------------------------------------------------------------------

    def sweep(self) -> None:
        """Free slots of jobs that no longer run, start parked jobs that can, promote aged jobs."""
        self._free_stale_slots()
        if self.redis.set(keys.AGING_LOCK, "1", nx=True, px=400):
            self.promote_aged(utcnow())

    def _free_stale_slots(self) -> None:
        suspects: set[tuple[int, str]] = set()
        for site_id in self.slots.sites_in_use():
            for job_id in self.slots.running(site_id):
                job = self.store.get(job_id)
                if job is not None and JobState(job.state) in HELD_STATES:
                    continue
                if (site_id, job_id) in self._suspects:  # not running for a whole sweep
                    log.warning("job %s: held a slot of site %s without running", job_id, site_id)
                    self._start_parked(site_id, self.slots.release(site_id, job_id, self.cap()))
                else:
                    suspects.add((site_id, job_id))
            # a release lost with its worker: start what the free slots allow
            self._start_parked(site_id, self.slots.release(site_id, "", self.cap()))
        self._suspects = suspects

    def promote_aged(self, now: dt.datetime) -> list[str]:
        """Move every queued job past half its aging bound to the front of the first queue."""
        promoted = []
        for job in self.store.in_states([JobState.QUEUED]):
            if job.job_class is None or job.enqueued_at is None or job.promotions:
                continue
            waited = (now - job.enqueued_at).total_seconds()
            cls = scheduling.JobClass(job.job_class)
            if not scheduling.promotion_due(cls, waited, self.aging_base):
                continue
            if job.site_id is not None and self.slots.is_parked(job.site_id, job.id):
                continue  # waits for its own site's slot, not for a queue
            if self.store.transition(
                job.id,
                [JobState.QUEUED],
                JobState.QUEUED,
                fence=job.attempt,
                version=job.state_version,
                queue=queues.HIGH,
                promotions=job.promotions + 1,
            ):
                cancel_segment(self.redis, job.segment)
                self._enqueue(job.id, at_front=True)
                log.info("job %s: waited %.1f s (class %d); promoted", job.id, waited, cls)
                promoted.append(job.id)
        return promoted

    def _enqueue(self, job_id: str, at_front: bool) -> None:
        job = self.store.get(job_id)
        if job is not None:
            self.store.set_segment(job.id, enqueue_segment(self.redis, job, at_front=at_front))
            publish_job(self.redis, job)


def _job_class(job: Job) -> scheduling.JobClass | None:
    return scheduling.JobClass(job.job_class) if job.job_class is not None else None
