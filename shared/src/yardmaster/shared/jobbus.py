"""The Redis side of jobs: segments on RQ queues, events, control messages and leases.

The database decides; Redis carries. Every message here follows a database change that
has already been committed.
"""

from __future__ import annotations

import contextlib
import json
import logging
from enum import StrEnum
from typing import Any

import redis
from redis.exceptions import RedisError
from rq import Queue
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job as RQJob

from yardmaster.shared import keys
from yardmaster.shared.jobs import JobState, allowed_actions
from yardmaster.shared.models import Job

log = logging.getLogger(__name__)

#: The function every segment runs, by dotted path (the API never imports worker code).
SEGMENT_FUNCTION = "yardmaster.report_worker.runner.run_segment"
#: A segment that runs longer than this is killed by RQ (and resumed from its checkpoint).
SEGMENT_TIMEOUT_SECONDS = 6 * 3600


class Control(StrEnum):
    """Messages to the process running a job."""

    CHECK = "check"  # the user changed the job's state: checkpoint now and read it
    PREEMPT = "preempt"  # the worker is shutting down: checkpoint and requeue
    YIELD = "yield"  # a more urgent job needs this worker: checkpoint and requeue


def segment_id(job: Job) -> str:
    """The RQ id of the segment enqueued for ``job`` now (never reused: state_version grows)."""
    return f"{job.id}-v{job.state_version}"


def enqueue_segment(client: redis.Redis, job: Job, *, at_front: bool = False) -> str:
    """Put one segment of ``job`` on its queue; return the RQ job id.

    ``at_front`` for resumed and pre-empted jobs: they already hold partial work. The segment
    carries the job's ``state_version``: it may claim the job only while that is unchanged
    (any later decision about the job, a reaper's replacement included, bumps it).
    """
    rq_id = segment_id(job)
    Queue(job.queue, connection=client).enqueue(
        SEGMENT_FUNCTION,
        job.id,
        job.state_version,
        job_id=rq_id,
        at_front=at_front,
        job_timeout=SEGMENT_TIMEOUT_SECONDS,
        result_ttl=3600,
        failure_ttl=7 * 86400,
        description=f"{job.kind} job {job.id}",
    )
    return rq_id


def cancel_segment(client: redis.Redis, rq_id: str | None) -> None:
    """Take a segment off its queue if it has not started (best effort: claims are fenced)."""
    if not rq_id:
        return
    with contextlib.suppress(NoSuchJobError, InvalidJobOperation):
        RQJob.fetch(rq_id, connection=client).cancel()


def kill_segment(client: redis.Redis, rq_id: str | None) -> bool:
    """Ask RQ to kill the process running a segment; False if it is not running."""
    if not rq_id:
        return False
    try:
        send_stop_job_command(client, rq_id)
    except (NoSuchJobError, InvalidJobOperation):
        return False
    return True


def send_control(client: redis.Redis, job_id: str, message: Control) -> None:
    """Tell the process running ``job_id`` to look at its job now."""
    client.publish(keys.job_control_channel(job_id), str(message))


def job_view(job: Job) -> dict[str, Any]:
    """The JSON representation of a job, shared by HTTP answers and events."""
    state = JobState(job.state)
    return {
        "id": job.id,
        "kind": job.kind,
        "owner": job.owner,
        "site": job.site,
        "state": state.value,
        "state_version": job.state_version,
        "allowed_actions": [a.value for a in allowed_actions(state)],
        "params": job.params,
        "progress": {
            "fraction": job.progress_fraction,
            "message": job.progress_message,
            "done": job.progress_done,
            "total": job.progress_total,
        },
        "customer_id": job.customer_id,
        "site_id": job.site_id,
        "job_class": job.job_class,
        "volume_tier": job.volume_tier,
        "activity_tier": job.activity_tier,
        "queue": job.queue,
        "priority": job.priority,
        "promotions": job.promotions,
        "preemptions": job.preemptions,
        "enqueued_at": _iso(job.enqueued_at),
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "failures": job.failures,
        "error": job.error,
        "result": {"name": job.result_name, "type": job.result_type} if job.result_path else None,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "updated_at": _iso(job.updated_at),
        "links": {
            "self": f"/jobs/{job.id}",
            "result": f"/jobs/{job.id}/result",
            "pause": f"/jobs/{job.id}/pause",
            "resume": f"/jobs/{job.id}/resume",
            "stop": f"/jobs/{job.id}/stop",
        },
    }


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def publish_job(client: redis.Redis, job: Job) -> None:
    """Announce the job's new state or progress to every listener (errors only logged)."""
    try:
        client.publish(keys.JOB_EVENTS, json.dumps(job_view(job)))
    except RedisError as exc:
        log.warning("job %s: event not published (%s)", job.id, exc)
