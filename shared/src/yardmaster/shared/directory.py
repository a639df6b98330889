"""Sites and customers in the database: the counts the scheduling policy's tiers come from."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from yardmaster.shared.jobs import JobState
from yardmaster.shared.models import Customer, Job

#: States in which a job counts as queued for its customer's activity tier.
WAITING_STATES = (JobState.QUEUED.value, JobState.RESUMING.value)


def active_records(connection: Connection, site_id: int) -> int:
    """How many active user records (customers) the site has."""
    return int(
        connection.scalar(
            select(func.count())
            .select_from(Customer)
            .where(Customer.site_id == site_id, Customer.is_active.is_(True))
        )
        or 0
    )


def queued_jobs(connection: Connection, customer_id: int) -> int:
    """How many of the customer's jobs wait for a worker."""
    return int(
        connection.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.customer_id == customer_id, Job.state.in_(WAITING_STATES))
        )
        or 0
    )
