"""The file pipeline over HTTP: ``GET /files`` (the ledger) and ``GET /workers`` (live workers)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from redis.exceptions import RedisError
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from yardmaster.api import schemas
from yardmaster.api.arguments import MAX_WHOLE, whole_number
from yardmaster.api.auth import current_principal
from yardmaster.api.live.channel import Outage, Restored
from yardmaster.api.live.hub import FullError, Hub
from yardmaster.api.live.registry import LiveChannel, add_channel, hub
from yardmaster.api.live.revocation import Speaker, decode_deactivated
from yardmaster.api.live.sse import LAGGED, Feed, Stream, frame, refused, unavailable
from yardmaster.api.openapi import EVENT_STREAM, document
from yardmaster.api.problems import problem
from yardmaster.api.resources import Resources, resources
from yardmaster.api.shutdown import stopping
from yardmaster.shared import keys
from yardmaster.shared.bucket import is_bucket_file
from yardmaster.shared.fileclaims import bucket_id
from yardmaster.shared.heartbeat import live_processes
from yardmaster.shared.ledger import ledger_view
from yardmaster.shared.models import FileLedger
from yardmaster.shared.services import Service

blueprint = Blueprint("files", __name__)
STATES = ("loaded", "done", "quarantined")
#: At most this many arriving files are listed (oldest first); ``total`` counts them all.
ARRIVING_SHOWN = 100


@blueprint.get("/files")
@document(query=schemas.FilesQuery, ok={200: schemas.FilePage}, errors=[400], tags=["files"])
def list_files() -> Response:
    """Ledger rows by name, filtered by ``state`` and ``worker``, with attempts from Redis."""
    state, worker = request.args.get("state"), request.args.get("worker")
    if state is not None and state not in STATES:
        return problem(400, "Bad Request", f"state must be one of {', '.join(STATES)}")
    page = request.args.get("page", "1")
    if whole_number(page) is None:
        return problem(400, "Bad Request", f"page must be a whole number from 1 to {MAX_WHOLE}")
    query = select(FileLedger)
    if state:
        query = query.where(FileLedger.state == state)
    if worker:
        query = query.where(FileLedger.worker == worker)
    with resources().engine.connect() as connection:
        total = connection.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = (
            connection.execute(
                query.order_by(FileLedger.name).offset((int(page) - 1) * 100).limit(100)
            )
            .mappings()
            .all()
        )
    items = [_file(dict(row)) for row in rows]
    _add_attempts(items)
    return jsonify(items=items, total=total, page=int(page), per_page=100)


def _file(row: dict[str, Any]) -> dict[str, Any]:
    return ledger_view(row)


def _add_attempts(items: list[dict[str, Any]]) -> None:
    try:
        pipeline = resources().redis.pipeline()
        for item in items:
            pipeline.hget(keys.files_namespace(item["bucket"]) + "attempts", item["name"])
        for item, attempts in zip(items, pipeline.execute(), strict=True):
            item["attempts"] = int(attempts or 0)
    except RedisError:
        for item in items:
            item["attempts"] = None


@blueprint.get("/files/arriving")
@document(ok={200: schemas.ArrivingFiles}, tags=["files"])
def arriving_files() -> Response:
    """Files in the bucket that no worker has loaded yet, oldest first (the bucket folder is
    the configured one: no client input reaches the filesystem)."""
    return jsonify(arriving(current_app.config["SETTINGS"].bucket, resources().engine))


def arriving(bucket: Path, engine: Engine) -> dict[str, Any]:
    """The files of ``bucket`` without a ledger row: ``{"items", "total", "bucket_visible"}``."""
    try:
        names = sorted(e.name for e in bucket.iterdir() if e.is_file() and is_bucket_file(e.name))
    except OSError:  # not mounted here (or not created yet): nothing to show, and said so
        return {"items": [], "total": 0, "bucket_visible": False}
    with engine.connect() as connection:
        recorded = set(
            connection.scalars(
                select(FileLedger.name).where(FileLedger.bucket == bucket_id(bucket))
            )
        )
    waiting = [name for name in names if name not in recorded]
    items = [{"name": name} for name in waiting[:ARRIVING_SHOWN]]
    return {"items": items, "total": len(waiting), "bucket_visible": True}


@blueprint.get("/workers")
@document(ok={200: schemas.Workers}, errors=[503], tags=["files"])
def list_workers() -> Response:
    """Live file workers: their current file and statistics."""
    try:
        processes = live_processes(resources().redis)
    except RedisError as exc:
        return problem(503, "Service Unavailable", f"Redis unreachable ({exc})")
    workers = [p for p in processes if p["service"] == Service.FILE_WORKER]
    return jsonify(workers=workers)


@blueprint.get("/files/events")
@document(ok={200: None}, media={200: EVENT_STREAM}, errors=[503], tags=["files"])
def file_events() -> Response:
    """The file pipeline live: ``snapshot`` (``workers``, ``arriving``) on connect, then
    ``worker`` (a file worker's heartbeat: its file and statistics), ``worker-gone``,
    ``file`` (a ledger row as ``GET /files`` shows it), ``arriving`` (as ``GET
    /files/arriving``) and ``resync`` (changes were missed: reload the lists).

    ``503`` with ``Retry-After`` when this server holds all the streams it may, or as many
    from the caller's address. A customer's stream ends with an ``ended`` event
    (``{"reason"}``) when the customer is deactivated."""
    speaker = Speaker.of(current_principal(), resources().engine)
    live = hub()
    try:
        release = live.admit(CHANNEL, request.remote_addr or "unknown")
    except FullError as exc:
        return refused(exc)
    channel = live.channels[CHANNEL]
    position = channel.position
    settings = current_app.config["SETTINGS"]
    try:
        if speaker.is_deactivated():  # since the access check: its message may be missed
            release()
            return speaker.refusal()
        opening = _snapshot(resources().redis, settings.bucket, resources().engine)
    except (RedisError, SQLAlchemyError) as exc:
        release()
        return unavailable(f"the file pipeline cannot be read now ({type(exc).__name__})")
    except BaseException:
        release()  # never leave the slot counted
        raise
    view = _FilesView(settings.bucket, resources())
    keepalive = settings.stream_keepalive
    feed = Feed(channel, position, [opening], view.render, keepalive, stopping, speaker.ends_at)
    return Stream(feed, release).response()


#: The live views' channel of the file pipeline (fed by two Redis channels and the bucket).
CHANNEL = "files"


@dataclass(frozen=True)
class WorkerEvent:
    """A file worker's heartbeat (or its end), framed once for all streams."""

    text: str


@dataclass(frozen=True)
class FileEvent:
    """A ledger row's change, framed once for all streams."""

    text: str


@dataclass(frozen=True)
class ArrivingEvent:
    """The bucket's files not loaded yet, when that list changed."""

    text: str


def decode_process_event(raw: bytes | str) -> WorkerEvent | None:
    record = json.loads(raw)
    if record["service"] != Service.FILE_WORKER:
        return None
    if record.get("gone"):
        return WorkerEvent(frame("worker-gone", json.dumps({"instance": record["instance"]})))
    text = raw.decode() if isinstance(raw, bytes) else raw
    return WorkerEvent(frame("worker", text))


def decode_file_event(raw: bytes | str) -> FileEvent:
    row = json.loads(raw)
    return FileEvent(frame("file", json.dumps(ledger_view(row))))


def _file_workers(client: redis.Redis) -> list[dict[str, Any]]:
    return [p for p in live_processes(client) if p["service"] == Service.FILE_WORKER]


def _snapshot(client: redis.Redis, bucket: Path, engine: Engine) -> str:
    data = {"workers": _file_workers(client), "arriving": arriving(bucket, engine)}
    return frame("snapshot", json.dumps(data))


@dataclass
class _FilesView:
    bucket: Path
    resources: Resources

    def render(self, item: Any) -> Iterable[str]:
        if isinstance(item, (WorkerEvent, FileEvent, ArrivingEvent)):
            return (item.text,)
        if isinstance(item, Restored):
            snapshot = item.once(
                "files",
                lambda: _snapshot(self.resources.redis, self.bucket, self.resources.engine),
            )
            return (snapshot, frame("resync", "{}"))
        if item == LAGGED:
            return (frame("resync", "{}"),)
        if isinstance(item, Outage):
            return (": Redis unreachable; changes resume when it is back\n\n",)
        return ()


def _watch_the_bucket(live: Hub) -> Callable[[], object]:
    """The periodic task that announces a change of the bucket's arriving files."""
    bucket, engine = current_app.config["SETTINGS"].bucket, resources().engine
    last: list[dict[str, Any]] = []

    def look() -> None:
        now = arriving(bucket, engine)
        if not last or now != last[0]:
            last[:] = [now]
            live.publish_local(CHANNEL, ArrivingEvent(frame("arriving", json.dumps(now))))

    return look


def register(app: Flask) -> None:
    """The file pipeline's endpoints, and its changes relayed to live views."""
    app.register_blueprint(blueprint)
    sources = {
        keys.PROCESS_EVENTS: decode_process_event,
        keys.FILE_EVENTS: decode_file_event,
        keys.CUSTOMER_DEACTIVATIONS: decode_deactivated,  # a customer's streams end
    }
    add_channel(app, LiveChannel(CHANNEL, sources, periodic=_watch_the_bucket))
