"""Jobs on hold while their customer is deactivated: held, and released in their order.

A customer's jobs are those it owns (``owner`` is its id: work submitted for it, and reports
and exports made with its token). While the customer is deactivated none of them starts:

- deactivating it puts its waiting jobs (``queued``, ``resuming``) ``on_hold``, in the
  transaction that deactivates it (their segments are then taken off the queues);
- a segment that finds a waiting job of a deactivated customer puts it on hold instead of
  claiming it: a job that became waiting since (retried after a crash, yielded to an urgent
  job, resumed by the admin, submitted by the admin for the customer);
- reactivating it puts its jobs on hold back to ``queued``, oldest first, in the transaction
  that reactivates it; a segment is then enqueued for each, in that order. The reaper
  releases any job left on hold whose customer is active (a hold that raced the
  reactivation, an enqueue lost with Redis).

Jobs already running are not touched: they finish. Every step is a conditional update of the
job (:meth:`JobStore.transition`), so a hold and a claim, or a release and a user's stop,
never both win.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis
from sqlalchemy import ColumnElement, Connection, exists, func, not_, select

from yardmaster.shared.jobbus import cancel_segment, enqueue_segment, publish_job
from yardmaster.shared.jobs import CLAIMABLE_STATES, JobState
from yardmaster.shared.jobstore import JobStore, utcnow
from yardmaster.shared.models import Customer, Job

#: The largest id the customers table holds on every backend (larger ids are unknown).
MAX_CUSTOMER_ID = 2**31 - 1


def customer_of(owner: str | None) -> int | None:
    """The customer a job's ``owner`` is (its id), or None (an admin's job)."""
    if owner is None or not (owner.isascii() and owner.isdigit()):
        return None
    return int(owner)


def is_deactivated(connection: Connection, customer_id: int) -> bool:
    """True if the customer exists and is deactivated: one primary-key lookup.

    A customer that does not exist is not deactivated (its token is refused elsewhere, or
    speaks for nobody's data)."""
    if not 1 <= customer_id <= MAX_CUSTOMER_ID:
        return False
    active = connection.scalar(select(Customer.is_active).where(Customer.id == customer_id))
    return active is False


def deactivated(customer_id: int) -> ColumnElement[bool]:
    """SQL: the customer exists and is deactivated (a condition for a job's update)."""
    return exists().where(Customer.id == customer_id, Customer.is_active.is_(False))


class Holds:
    """Putting a customer's jobs on hold and back, through the job store's updates."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def hold_waiting(self, connection: Connection, customer_id: int) -> list[str]:
        """Put the customer's waiting jobs on hold inside the caller's transaction (the one
        that deactivates it); the ids of the jobs held."""
        query = select(Job.id).where(
            Job.owner == str(customer_id), Job.state.in_([s.value for s in CLAIMABLE_STATES])
        )
        return [
            job_id
            for job_id in connection.scalars(query).all()
            if self._hold(job_id, customer_id, connection=connection)
        ]

    def hold(self, job: Job, version: int) -> bool:
        """Put ``job`` on hold if its customer is deactivated and nothing was decided about
        it since ``version`` (the waiting job a segment read). False: it was not held."""
        customer_id = customer_of(job.owner)
        return customer_id is not None and self._hold(job.id, customer_id, version=version)

    def _hold(
        self,
        job_id: str,
        customer_id: int,
        *,
        version: int | None = None,
        connection: Connection | None = None,
    ) -> bool:
        return self.store.transition(
            job_id,
            CLAIMABLE_STATES,
            JobState.ON_HOLD,
            version=version,
            connection=connection,
            condition=deactivated(customer_id),
            progress_message=f"on hold: customer {customer_id} is deactivated",
        )

    def release(self, connection: Connection, owner: str) -> list[str]:
        """Put the jobs on hold of ``owner`` (a customer's id) back in the queue, oldest
        first, inside the caller's transaction; their ids, in that order. Jobs of a customer
        deactivated (again) are left on hold."""
        query = (
            select(Job.id)
            .where(Job.owner == owner, Job.state == JobState.ON_HOLD.value)
            .order_by(func.coalesce(Job.enqueued_at, Job.created_at), Job.created_at, Job.id)
        )
        customer_id = customer_of(owner) or 0
        now = utcnow()
        return [
            job_id
            for job_id in connection.scalars(query).all()
            if self.store.transition(
                job_id,
                [JobState.ON_HOLD],
                JobState.QUEUED,
                connection=connection,
                condition=not_(deactivated(customer_id)),
                enqueued_at=now,  # aging counts the wait for a worker, not the hold
                progress_message="queued: its customer is active again",
            )
        ]

    def release_stranded(self) -> list[str]:
        """Release every job on hold whose customer is not deactivated (any more); the ids
        released, each customer's oldest first (the reaper's backstop)."""
        on_hold = select(Job.owner).where(Job.state == JobState.ON_HOLD.value).distinct()
        with self.store.engine.connect() as connection:
            owners = [
                owner
                for owner in connection.scalars(on_hold).all()
                if owner is not None and not _owner_deactivated(connection, owner)
            ]
        if not owners:
            return []
        released: list[str] = []
        with self.store.engine.begin() as connection:
            for owner in owners:
                released += self.release(connection, owner)
        return released


def _owner_deactivated(connection: Connection, owner: str) -> bool:
    customer_id = customer_of(owner)
    return customer_id is not None and is_deactivated(connection, customer_id)


def enqueue_released(store: JobStore, client: redis.Redis, job_ids: Iterable[str]) -> None:
    """Enqueue a segment for each released job, in the order given, and announce it.

    Call after the release committed. A segment lost here (Redis away) is enqueued again by
    the reaper, as for any queued job without one."""
    for job_id in job_ids:
        job = store.get(job_id)
        if job is None or job.state != JobState.QUEUED:
            continue  # stopped or paused meanwhile
        store.set_segment(job.id, enqueue_segment(client, job))
        publish_job(client, job)


def park_held(store: JobStore, client: redis.Redis, job_ids: Iterable[str]) -> None:
    """Take the held jobs' segments off their queues and announce the jobs on hold.

    Call after the hold committed. Best effort: a segment left behind finds its job's
    version changed and does not claim it."""
    for job_id in job_ids:
        job = store.get(job_id)
        if job is not None:
            cancel_segment(client, job.segment)
            publish_job(client, job)
