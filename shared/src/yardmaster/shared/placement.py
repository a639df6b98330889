"""Placing a new job: its class, its customer's tiers from the database, then the policy."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Connection

from yardmaster.shared import queues, scheduling
from yardmaster.shared.directory import active_records, queued_jobs
from yardmaster.shared.jobs import JobKind
from yardmaster.shared.scheduling import Placement

#: Expected run time of the platform's own job kinds: the heaviest class (a store report over
#: every store, an import or export of a whole table, take seconds to minutes).
PLATFORM_EXPECTED_SECONDS = scheduling.MAX_EXECUTION_SECONDS

Mode = Literal["priority", "fifo"]


def expected_seconds(kind: JobKind, params: dict[str, Any]) -> float:
    """How long a job is expected to run (simulated work says so itself)."""
    if kind is JobKind.WORK:
        return min(float(params["execution_time"]), scheduling.MAX_EXECUTION_SECONDS)
    return PLATFORM_EXPECTED_SECONDS


def place_new_job(
    connection: Connection,
    kind: JobKind,
    params: dict[str, Any],
    customer_id: int | None,
    site_id: int | None,
    mode: Mode,
) -> Placement:
    """Where the job goes. Jobs of no customer get the platform's tiers; in FIFO mode every
    job goes to the default queue at priority 0 (its class is still recorded)."""
    cls = scheduling.job_class(expected_seconds(kind, params))
    if customer_id is None or site_id is None:
        volume, activity = scheduling.PLATFORM_TIERS
    else:
        volume = scheduling.volume_tier(active_records(connection, site_id))
        activity = scheduling.activity_tier(queued_jobs(connection, customer_id))
    placement = scheduling.place(cls, volume, activity)
    if mode == "fifo":
        return Placement(cls, volume, activity, 0, queues.DEFAULT)
    return placement
