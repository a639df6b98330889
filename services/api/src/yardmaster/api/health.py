"""Health endpoints: ``/healthz`` (the process is up), ``/readyz`` (it can do its work),
``/status`` (which Yardmaster processes are alive)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify
from redis.exceptions import RedisError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from yardmaster.api import schemas
from yardmaster.api.openapi import document
from yardmaster.api.problems import problem
from yardmaster.api.resources import resources
from yardmaster.shared.db import check_database, describe_database_error
from yardmaster.shared.heartbeat import live_processes
from yardmaster.shared.migrate import schema_status
from yardmaster.shared.models import Job
from yardmaster.shared.outage import Outage, classify

log = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)

#: Longest a readiness check waits for the lock writes need before it reports "busy".
WRITE_PROBE_SECONDS = 0.2
JOBS = Job.__tablename__


@blueprint.get("/healthz")
@document(ok={200: schemas.Alive}, tags=["health"])
def healthz() -> Response:
    """Alive: answers as long as the process serves HTTP, whatever its dependencies do."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
@document(ok={200: schemas.Ready}, errors=[503], tags=["health"])
def readyz() -> Response:
    """Ready when Redis answers PING and the database answers at the current schema.

    503 otherwise, naming each failing dependency and why. A database that answers while
    another transaction holds the lock writes need stays ready: its check says
    ``"state": "busy"`` (a lock is an everyday state on SQLite, not a fault).
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
        busy = _writes_wait(engine) if status.up_to_date else None
    except SQLAlchemyError as exc:
        if classify(exc) is Outage.BUSY:  # reads waited for a lock: it answers, and is busy
            return {"ok": True, "state": "busy", "detail": describe_database_error(exc)}
        return {"ok": False, "error": f"database unreachable ({describe_database_error(exc)})"}
    if not status.up_to_date:
        error = (
            f"database schema at revision {status.current or 'none'}, code expects "
            f"{status.head}: run python -m yardmaster.shared.migrate"
        )
        return {"ok": False, "error": error}
    check: dict[str, Any] = {"ok": True, "revision": status.current}
    if busy is not None:
        check.update(state="busy", detail=busy)
    return check


def _writes_wait(engine: Engine) -> str | None:
    """Why a write would wait right now (another transaction holds the lock it needs), or
    None. Asks for that lock for at most :data:`WRITE_PROBE_SECONDS`, and writes nothing:
    SQLite's write lock (``BEGIN IMMEDIATE``), PostgreSQL's on the jobs table."""
    wait_ms = round(WRITE_PROBE_SECONDS * 1000)
    with engine.connect() as connection:
        try:
            if connection.dialect.name == "sqlite":
                _take_sqlite_write_lock(connection, wait_ms)
            else:
                with connection.begin() as transaction:
                    connection.exec_driver_sql(f"SET LOCAL lock_timeout = {wait_ms}")
                    connection.exec_driver_sql(f"LOCK TABLE {JOBS} IN ROW EXCLUSIVE MODE")
                    transaction.rollback()
        except SQLAlchemyError as exc:
            if classify(exc) is not Outage.BUSY:
                raise
            return f"{describe_database_error(exc)}: writes wait for another transaction"
    return None


def _take_sqlite_write_lock(connection: Connection, wait_ms: int) -> None:
    """Take SQLite's write lock and give it back at once, waiting at most ``wait_ms``."""
    usual = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    connection.exec_driver_sql(f"PRAGMA busy_timeout={wait_ms}")
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        connection.exec_driver_sql("ROLLBACK")
    finally:
        connection.exec_driver_sql(f"PRAGMA busy_timeout={int(usual or 0)}")


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
