"""``GET /jobs/events``: Server-Sent Events of every job's state and progress changes.

Workers and API processes publish each change on one Redis channel; every API process relays
it to each of its connected clients, so all clients see all changes whichever process served
the request or ran the job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import redis
from flask import Blueprint, Response, request
from redis.exceptions import RedisError

from yardmaster.api import schemas
from yardmaster.api.auth import owner_scope
from yardmaster.api.openapi import EVENT_STREAM, document
from yardmaster.api.problems import problem
from yardmaster.api.resources import resources
from yardmaster.api.shutdown import stopping
from yardmaster.shared import keys

blueprint = Blueprint("events", __name__)

#: A comment line this often keeps proxies from closing an idle stream and detects gone clients.
KEEPALIVE_SECONDS = 15.0
#: How long a browser waits before reconnecting after the stream drops.
RETRY_MS = 2000


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

    A customer's stream carries its own jobs only."""
    only, owner = request.args.get("job"), owner_scope()
    client = resources().redis
    try:
        pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        pubsub.subscribe(keys.JOB_EVENTS)
    except RedisError as exc:
        response = problem(
            503, "Service Unavailable", f"events unavailable: Redis unreachable ({exc})"
        )
        response.headers["Retry-After"] = "2"
        return response
    return Response(
        _stream(pubsub, only, owner),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _stream(pubsub: redis.client.PubSub, only: str | None, owner: str | None) -> Iterator[str]:
    try:
        yield f"retry: {RETRY_MS}\n: connected\n\n"
        last_sent = time.monotonic()
        while not stopping():  # this worker stops: the browser reconnects to another
            message = pubsub.get_message(timeout=1.0)
            if message is not None:
                data = (
                    message["data"].decode()
                    if isinstance(message["data"], bytes)
                    else str(message["data"])
                )
                job = json.loads(data)
                if (only is None or job["id"] == only) and (owner is None or job["owner"] == owner):
                    yield f"id: {job['id']}.{job['state_version']}\nevent: job\ndata: {data}\n\n"
                    last_sent = time.monotonic()
            if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
    except RedisError:
        yield 'event: error\ndata: {"detail": "Redis unreachable; reconnect"}\n\n'
    finally:
        pubsub.close()
