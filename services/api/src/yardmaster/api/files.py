"""The file pipeline over HTTP: ``GET /files`` (the ledger) and ``GET /workers`` (live workers)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from redis.exceptions import RedisError
from sqlalchemy import func, select

from yardmaster.api import schemas
from yardmaster.api.arguments import MAX_WHOLE, whole_number
from yardmaster.api.openapi import document
from yardmaster.api.problems import problem
from yardmaster.api.resources import resources
from yardmaster.shared import keys
from yardmaster.shared.bucket import is_bucket_file
from yardmaster.shared.fileclaims import bucket_id
from yardmaster.shared.heartbeat import live_processes
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
    for column in ("started_at", "finished_at"):
        if row[column] is not None:
            row[column] = row[column].isoformat()
    return row


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
    bucket = current_app.config["SETTINGS"].bucket
    try:
        names = sorted(e.name for e in bucket.iterdir() if e.is_file() and is_bucket_file(e.name))
    except OSError:  # not mounted here (or not created yet): nothing to show, and said so
        return jsonify(items=[], total=0, bucket_visible=False)
    with resources().engine.connect() as connection:
        recorded = set(
            connection.scalars(
                select(FileLedger.name).where(FileLedger.bucket == bucket_id(bucket))
            )
        )
    arriving = [name for name in names if name not in recorded]
    items = [{"name": name} for name in arriving[:ARRIVING_SHOWN]]
    return jsonify(items=items, total=len(arriving), bucket_visible=True)


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
