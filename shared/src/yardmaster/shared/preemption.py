"""Making room for an urgent job: ask a heavy running job to yield its worker.

The choice is the policy's (:func:`yardmaster.shared.scheduling.choose_victim`); this module
reads what runs from the database and sends the yield over the job's control channel. The
yielding job checkpoints and goes back to the front of its queue, like a paused one resumed.
"""

from __future__ import annotations

import logging

import redis
from sqlalchemy import Engine, select

from yardmaster.shared import keys
from yardmaster.shared.heartbeat import live_count
from yardmaster.shared.jobbus import Control, send_control
from yardmaster.shared.jobs import JobState
from yardmaster.shared.models import Job
from yardmaster.shared.scheduling import Running, choose_victim
from yardmaster.shared.services import Service

log = logging.getLogger(__name__)

#: A job asked to yield is not asked again for this long (it checkpoints within milliseconds).
YIELD_MARK_MS = 5000


def make_room(engine: Engine, client: redis.Redis, urgent: Job) -> str | None:
    """Ask one running job to yield to ``urgent`` if every worker is busy with another job;
    its id, or None. A worker that took ``urgent`` already is not busy with another job."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(Job.id, Job.job_class, Job.priority, Job.preemptions).where(
                Job.state == JobState.RUNNING.value, Job.id != urgent.id
            )
        ).all()
    running = [Running(row.id, row.job_class, row.priority, row.preemptions) for row in rows]
    victim = choose_victim(running, live_count(client, Service.REPORT_WORKER), urgent.priority)
    if victim is None:
        return None
    if not client.set(keys.job_yield_key(victim), "1", nx=True, px=YIELD_MARK_MS):
        return None  # asked already; it is on its way out
    send_control(client, victim, Control.YIELD)
    log.info("job %s: asked to yield its worker to job %s", victim, urgent.id)
    return victim
