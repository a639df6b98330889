"""Health endpoints: ``/healthz`` (the process is up), ``/readyz`` (it can do its work),
``/status`` (which Yardmaster processes are alive)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from yardmaster.api import schemas
from yardmaster.api.openapi import document
from yardmaster.api.problems import problem
from yardmaster.api.resources import resources
from yardmaster.shared.db import check_database, describe_database_error
from yardmaster.shared.heartbeat import live_processes
from yardmaster.shared.migrate import schema_status

log = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
@document(ok={200: schemas.Alive}, tags=["health"])
def healthz() -> Response:
    """Alive: answers as long as the process serves HTTP, whatever its dependencies do."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
@document(ok={200: schemas.Ready}, errors=[503], tags=["health"])
def readyz() -> Response:
    """Ready when Redis answers PING and the database answers at the current schema.

    503 otherwise, naming each failing dependency and why.
    """
    checks = {"redis": _check_redis(), "database": _check_database()}
    failing = {name: check["error"] for name, check in checks.items() if not check["ok"]}
    if not failing:
        return jsonify(status="ready", checks=checks)
    detail = "; ".join(f"{name}: {reason}" for name, reason in failing.items())
    log.warning("not ready: %s", detail)
    return problem(503, "Service Unavailable", f"not ready: {detail}", checks=checks)


def _check_redis() -> dict[str, Any]:
    try:
        resources().redis.ping()
    except RedisError as exc:
        return {"ok": False, "error": f"Redis unreachable ({exc})"}
    return {"ok": True}


def _check_database() -> dict[str, Any]:
    engine = resources().engine
    try:
        check_database(engine)
        status = schema_status(engine, head=resources().schema_head)
    except SQLAlchemyError as exc:
        return {"ok": False, "error": f"database unreachable ({describe_database_error(exc)})"}
    if not status.up_to_date:
        error = (
            f"database schema at revision {status.current or 'none'}, code expects "
            f"{status.head}: run python -m yardmaster.shared.migrate"
        )
        return {"ok": False, "error": error}
    return {"ok": True, "revision": status.current}


@blueprint.get("/status")
@document(ok={200: schemas.Processes}, errors=[503], tags=["health"])
def status() -> Response:
    """The Yardmaster processes whose heartbeat is current, grouped by service."""
    try:
        processes = live_processes(resources().redis)
    except RedisError as exc:
        return problem(503, "Service Unavailable", f"Redis unreachable ({exc})")
    services: dict[str, list[dict[str, Any]]] = {}
    for record in processes:
        services.setdefault(record["service"], []).append(record)
    return jsonify(services=services)
