"""``GET /jobs/events``: Server-Sent Events of every job's state and progress changes.

Workers and API processes publish each change on one Redis channel; each API process relays
it (through its one subscription, :mod:`yardmaster.api.live`) to each of its streams, so all
clients see all changes whichever process served the request or ran the job. An event's id is
the job's ``updated_at``: a client that reconnects with ``Last-Event-ID`` first gets every job
changed since then, and after a Redis outage every stream gets the jobs changed during it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from yardmaster.api import schemas
from yardmaster.api.auth import current_principal, owner_scope
from yardmaster.api.live.channel import Outage, Restored
from yardmaster.api.live.hub import FullError
from yardmaster.api.live.registry import LiveChannel, add_channel, hub
from yardmaster.api.live.revocation import Speaker, decode_deactivated
from yardmaster.api.live.sse import LAGGED, Feed, Stream, frame, refused, unavailable
from yardmaster.api.openapi import EVENT_STREAM, document
from yardmaster.api.resources import resources
from yardmaster.api.shutdown import stopping
from yardmaster.shared import keys
from yardmaster.shared.jobbus import job_view
from yardmaster.shared.models import Job

blueprint = Blueprint("events", __name__)

#: At most this many jobs are sent to a stream that resumes or outlived a Redis outage (the
#: most recently changed; a client that missed more reloads its list, as the dashboard does).
CATCH_UP_LIMIT = 500


@dataclass(frozen=True)
class JobEvent:
    """One job change as every stream of the process sends it."""

    id: str
    owner: str | None
    text: str


def decode_job_event(raw: bytes | str) -> JobEvent:
    """A message of :data:`keys.JOB_EVENTS` (a job view as JSON), framed once for all."""
    data = raw.decode() if isinstance(raw, bytes) else raw
    job = json.loads(data)
    return JobEvent(job["id"], job["owner"], frame("job", data, event_id=job["updated_at"]))


def register(app: Flask) -> None:
    """Relay job events to the live views of ``app``."""
    app.register_blueprint(blueprint)
    sources = {
        keys.JOB_EVENTS: decode_job_event,
        keys.CUSTOMER_DEACTIVATIONS: decode_deactivated,  # a customer's streams end
    }
    add_channel(app, LiveChannel(keys.JOB_EVENTS, sources))


@blueprint.get("/jobs/events")
@document(
    query=schemas.JobEventsQuery,
    ok={200: None},
    media={200: EVENT_STREAM},
    errors=[503],
    tags=["jobs"],
)
def job_events() -> Response:
    """Stream ``event: job`` messages (``data`` = the job's JSON); ``?job=<id>`` for one job.

    A customer's stream carries its own jobs only, and ends with an ``ended`` event
    (``{"reason"}``) when the customer is deactivated. With ``Last-Event-ID`` (a job's
    ``updated_at``), the jobs changed since then come first. ``503`` with ``Retry-After`` when
    this server holds all the streams it may, or as many from the caller's address."""
    only, owner = request.args.get("job"), owner_scope()
    speaker = Speaker.of(current_principal(), resources().engine)
    live = hub()
    try:
        release = live.admit(keys.JOB_EVENTS, request.remote_addr or "unknown")
    except FullError as exc:
        return refused(exc)
    channel = live.channels[keys.JOB_EVENTS]
    position = channel.position
    try:
        if speaker.is_deactivated():  # since the access check: its message may be missed
            release()
            return speaker.refusal()
        opening = _resumed(request.headers.get("Last-Event-ID"), only, owner)
    except SQLAlchemyError:
        release()
        return unavailable("the database cannot be read now; reconnect in a moment")
    except BaseException:
        release()  # never leave the slot counted
        raise
    keepalive = current_app.config["SETTINGS"].stream_keepalive
    view = _JobView(only, owner, speaker.engine)
    feed = Feed(channel, position, opening, view.render, keepalive, stopping, speaker.ends_at)
    return Stream(feed, release).response()


@dataclass
class _JobView:
    """What one stream shows: every job, or one, of every owner, or one. It reads the
    database with ``engine`` (a stream is written after its request's context is gone)."""

    only: str | None
    owner: str | None
    engine: Engine

    def shows(self, job_id: str, owner: str | None) -> bool:
        return (self.only is None or job_id == self.only) and (
            self.owner is None or owner == self.owner
        )

    def render(self, item: Any) -> Iterable[str]:
        if isinstance(item, JobEvent):
            return (item.text,) if self.shows(item.id, item.owner) else ()
        if isinstance(item, Restored):
            jobs = item.once("jobs", lambda: _changed_jobs(self.engine, _aware(item.since)))
            return [j.text for j in jobs if self.shows(j.id, j.owner)]
        if isinstance(item, Outage):
            return (": Redis unreachable; changes resume when it is back\n\n",)
        if item == LAGGED:
            return (frame("resync", "{}"),)  # too far behind: reload the list
        return ()


def _resumed(last_event_id: str | None, only: str | None, owner: str | None) -> list[str]:
    """The jobs changed since ``last_event_id`` (a time), for a client that reconnects."""
    if not last_event_id:
        return []
    try:
        since = dt.datetime.fromisoformat(last_event_id.replace("Z", "+00:00"))
    except ValueError:
        return []
    view = _JobView(only, owner, resources().engine)
    changed = _changed_jobs(view.engine, _aware(since))
    return [j.text for j in changed if view.shows(j.id, j.owner)]


def _aware(moment: dt.datetime | float) -> dt.datetime:
    if isinstance(moment, float):
        return dt.datetime.fromtimestamp(moment, dt.UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _changed_jobs(engine: Engine, since: dt.datetime) -> Sequence[JobEvent]:
    """Jobs whose ``updated_at`` is ``since`` or later, oldest change first."""
    query = (
        select(Job)
        .where(Job.updated_at >= since)
        .order_by(Job.updated_at.desc())
        .limit(CATCH_UP_LIMIT)
    )
    with Session(engine) as session:
        jobs = list(session.scalars(query))
    return [decode_job_event(json.dumps(job_view(job))) for job in reversed(jobs)]
