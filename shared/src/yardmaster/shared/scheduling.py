"""The scheduling policy: which queue a job goes to, when a waiting job is promoted, and how many
jobs of one site may run at once. Pure: values in, values out (no Redis, no database).

A job's **class** comes from its expected run time (the brief's five classes); its customer's
**tiers** come from data: the site's active record volume and the customer's queued jobs. The
three add up to a **priority** score (higher = sooner) that picks one of the platform's RQ
queues, which every report worker listens to in order. A job that waits longer than half its
class's **aging bound** is promoted to the front of the most urgent queue, so no job waits
much past its bound whatever arrives after it. A **site cap** keeps one site from taking
every worker (only jobs of the heavier classes count against it and wait for it). When an
urgent job arrives and every worker is busy, a heavy job of lower priority **yields**: it
checkpoints and goes back to the front of its queue (pre-emption, built on job control).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final

from yardmaster.shared import queues

#: Upper bounds (inclusive, seconds) of the expected run time of classes 1 to 5.
CLASS_LIMITS: Final = (0.001, 0.01, 0.1, 1.0, 10.0)
#: Longest expected run time accepted (the brief's class 5); longer jobs are refused.
MAX_EXECUTION_SECONDS: Final = CLASS_LIMITS[-1]


class JobClass(IntEnum):
    """The brief's five job types, lightest first."""

    C1 = 1  # <= 0.001 s
    C2 = 2  # <= 0.01 s
    C3 = 3  # <= 0.1 s
    C4 = 4  # <= 1 s
    C5 = 5  # <= 10 s


class VolumeTier(StrEnum):
    """A site's size by its active user records (the brief's capacity bands)."""

    LOW = "low"  # up to 10,000
    MEDIUM = "medium"  # up to 50,000
    HIGH = "high"  # more


class ActivityTier(StrEnum):
    """A customer's current load: how many of its jobs are queued."""

    ACTIVE = "active"  # fewer than 5
    VERY_ACTIVE = "very_active"  # 5 to 9
    HYPERACTIVE = "hyperactive"  # 10 or more


VOLUME_BANDS: Final = ((10_000, VolumeTier.LOW), (50_000, VolumeTier.MEDIUM))
ACTIVITY_BANDS: Final = ((5, ActivityTier.ACTIVE), (10, ActivityTier.VERY_ACTIVE))

#: Points of the priority score: light jobs first, large sites favoured, a customer flooding
#: the queue yields to the others.
CLASS_POINTS: Final = {
    JobClass.C1: 5,
    JobClass.C2: 4,
    JobClass.C3: 2,
    JobClass.C4: 1,
    JobClass.C5: 0,
}
VOLUME_POINTS: Final = {VolumeTier.LOW: 0, VolumeTier.MEDIUM: 1, VolumeTier.HIGH: 2}
ACTIVITY_POINTS: Final = {
    ActivityTier.ACTIVE: 0,
    ActivityTier.VERY_ACTIVE: -1,
    ActivityTier.HYPERACTIVE: -2,
}
#: Score at or above which a job goes to the queue (checked in this order).
QUEUE_THRESHOLDS: Final = ((4, queues.HIGH), (2, queues.DEFAULT))
#: A class's aging bound, in multiples of the configured base (heavier classes may wait longer).
AGING_FACTORS: Final = {
    JobClass.C1: 1,
    JobClass.C2: 1,
    JobClass.C3: 2,
    JobClass.C4: 4,
    JobClass.C5: 8,
}
#: A job is promoted once it has waited this fraction of its bound, leaving the rest of the
#: bound for a worker to come free.
PROMOTE_AT: Final = 0.5


def job_class(expected_seconds: float) -> JobClass:
    """The class of a job expected to run ``expected_seconds``; ValueError if not in (0, 10]."""
    if not (0 < expected_seconds <= MAX_EXECUTION_SECONDS) or math.isnan(expected_seconds):
        raise ValueError(
            f"execution_time must be more than 0 and at most {MAX_EXECUTION_SECONDS:g} s"
        )
    for number, limit in enumerate(CLASS_LIMITS, start=1):
        if expected_seconds <= limit:
            return JobClass(number)
    raise AssertionError("unreachable")  # pragma: no cover


def volume_tier(active_records: int) -> VolumeTier:
    """The tier of a site with ``active_records`` active user records."""
    for upper, tier in VOLUME_BANDS:
        if active_records <= upper:
            return tier
    return VolumeTier.HIGH


def activity_tier(queued_jobs: int) -> ActivityTier:
    """The tier of a customer with ``queued_jobs`` jobs waiting."""
    for below, tier in ACTIVITY_BANDS:
        if queued_jobs < below:
            return tier
    return ActivityTier.HYPERACTIVE


def priority(cls: JobClass, volume: VolumeTier, activity: ActivityTier) -> int:
    """The priority score, 0 (latest) to 7 (soonest)."""
    return max(0, CLASS_POINTS[cls] + VOLUME_POINTS[volume] + ACTIVITY_POINTS[activity])


def queue_for(score: int) -> str:
    """The RQ queue of a job with priority ``score``."""
    for threshold, queue in QUEUE_THRESHOLDS:
        if score >= threshold:
            return queue
    return queues.LOW


def aging_bound(cls: JobClass, base_seconds: float) -> float:
    """How long a job of class ``cls`` should wait at most, in seconds."""
    return AGING_FACTORS[cls] * base_seconds


def promotion_due(cls: JobClass, waited_seconds: float, base_seconds: float) -> bool:
    """True when a job that has waited ``waited_seconds`` must move to the front of the line."""
    return waited_seconds >= PROMOTE_AT * aging_bound(cls, base_seconds)


#: Classes that hold a worker so briefly that no site cap applies to them: parking a
#: millisecond job behind its own site's ten-second job would only make it wait.
UNCAPPED_CLASSES: Final = frozenset({JobClass.C1, JobClass.C2})


def capped(cls: JobClass | None) -> bool:
    """True when jobs of ``cls`` count against (and wait for) their site's cap."""
    return cls not in UNCAPPED_CLASSES


def site_cap(live_workers: int, share: float) -> int:
    """How many jobs of one site may run at once: ``share`` of the live workers, at least 1."""
    return max(1, math.floor(share * live_workers))


@dataclass(frozen=True)
class Placement:
    """Where a job goes and why."""

    job_class: JobClass
    volume: VolumeTier
    activity: ActivityTier
    priority: int
    queue: str


def place(cls: JobClass, volume: VolumeTier, activity: ActivityTier) -> Placement:
    """The placement of a job of class ``cls`` for a customer in these tiers."""
    score = priority(cls, volume, activity)
    return Placement(cls, volume, activity, score, queue_for(score))


#: Running jobs of these classes yield their worker to an urgent job when no worker is idle
#: (they checkpoint and go back to the front of their queue), at most MAX_PREEMPTIONS times.
PREEMPTIBLE_CLASSES: Final = frozenset({JobClass.C4, JobClass.C5})
MAX_PREEMPTIONS: Final = 3


def urgent(placement: Placement) -> bool:
    """True for a job that should not wait for a heavy job to finish."""
    return placement.queue == queues.HIGH


@dataclass(frozen=True)
class Running:
    """What pre-emption needs to know of a running job."""

    job_id: str
    job_class: int | None
    priority: int
    preemptions: int


def choose_victim(
    running: Sequence[Running], live_workers: int, urgent_priority: int
) -> str | None:
    """The running job that should yield to an urgent job of ``urgent_priority``, if any:
    only when every worker is busy; the lowest priority first, then the heaviest class."""
    if len(running) < live_workers:
        return None  # a worker is free: the urgent job needs nobody to yield
    candidates = [
        r
        for r in running
        if r.job_class in PREEMPTIBLE_CLASSES
        and r.preemptions < MAX_PREEMPTIONS
        and r.priority < urgent_priority
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda r: (r.priority, -(r.job_class or 0), r.job_id)).job_id


#: Jobs that belong to no customer (store reports, imports, exports started by an operator)
#: are placed as a medium site's active customer would be.
PLATFORM_TIERS: Final = (VolumeTier.MEDIUM, ActivityTier.ACTIVE)
