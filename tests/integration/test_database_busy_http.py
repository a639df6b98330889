"""The API while another process holds the database's write lock longer than
YARDMASTER_DATABASE_BUSY_TIMEOUT: requests that write answer 503 with Retry-After within about
that bound (never a 500, never a hang), /readyz stays ready and says the database is busy, a
refused upload leaves no file behind; once the lock is released the same requests succeed."""

from __future__ import annotations

import io
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from support import free_port
from yardmaster.api import create_app
from yardmaster.api.resources import Resources
from yardmaster.shared.db import make_engine
from yardmaster.shared.migrate import head_revision, upgrade_to_head
from yardmaster.shared.redis_client import make_redis
from yardmaster.shared.settings import Settings, load_settings

#: The API's bound on waiting for the database in these tests (seconds).
BOUND = 1.0
#: How much longer than the bound an answer may take (the request's other work, a slow CI).
SLACK = 2.0


@contextmanager
def write_lock_held(database_url: str) -> Iterator[None]:
    """Another process's write transaction, as an import's commit would hold it: SQLite's
    write lock (``BEGIN EXCLUSIVE``); on PostgreSQL, the tables the requests write locked
    against writers (readers go on, as with SQLite in WAL mode)."""
    if make_url(database_url).get_backend_name() == "sqlite":
        holder = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.rollback()
            holder.close()
        return
    engine = create_engine(database_url)
    with engine.connect() as connection:
        connection.exec_driver_sql("LOCK TABLE jobs, sites, customers IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            connection.rollback()
    engine.dispose()


@pytest.fixture
def settings(redis_url: str, database_url: str, engine: Engine, tmp_path: Path) -> Settings:
    upgrade_to_head(engine)
    return load_settings(
        {},
        redis_url=redis_url,
        database_url=database_url,
        data_dir=str(tmp_path),
        database_busy_timeout=str(BOUND),
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[FlaskClient]:
    """The API with the connections it makes for itself from its settings."""
    resources = Resources.from_settings(settings)
    yield create_app(settings, resources).test_client()
    resources.engine.dispose()
    resources.redis.close()


def timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def assert_busy_answer(response: Any, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    assert response.json["database"] == "busy"
    assert "the database is busy" in response.json["detail"]
    assert elapsed < BOUND + SLACK


WRITES = [
    ("/work", {"execution_time": 1}, 202),
    ("/exports", {"from": "2023-01-18", "till": "2023-01-25"}, 202),
    ("/sites", {"name": "Depot 7"}, 201),
]


@pytest.mark.parametrize(("path", "body", "created"), WRITES)
def test_a_write_answers_503_with_retry_after_within_the_bound_while_the_lock_is_held(
    client: FlaskClient, database_url: str, path: str, body: dict[str, Any], created: int
) -> None:
    with write_lock_held(database_url):
        response, elapsed = timed(lambda: client.post(path, json=body))

        assert_busy_answer(response, elapsed)

    assert client.post(path, json=body).status_code == created


def test_an_upload_refused_for_a_busy_database_leaves_no_file_behind(
    client: FlaskClient, database_url: str, settings: Settings
) -> None:
    uploads = settings.files / "uploads"

    def upload() -> Any:
        csv = io.BytesIO(b"store_id,status,timestamp_utc\n1,active,2023-01-22 12:09:39 UTC\n")
        form = {"table": "store_status", "mode": "append", "file": (csv, "polls.csv")}
        return client.post("/imports", data=form, content_type="multipart/form-data")

    with write_lock_held(database_url):
        response, elapsed = timed(upload)

        assert_busy_answer(response, elapsed)
        assert list(uploads.glob("*")) == []

    accepted = upload()
    assert accepted.status_code == 202, accepted.text
    assert [p.name for p in uploads.glob("*")] == [f"{accepted.json['id']}.csv"]


def test_readyz_stays_ready_and_reports_the_database_busy_while_the_lock_is_held(
    client: FlaskClient, database_url: str
) -> None:
    with write_lock_held(database_url):
        response, elapsed = timed(lambda: client.get("/readyz"))

        assert response.status_code == 200, response.text
        database = response.json["checks"]["database"]
        assert database["ok"] is True
        assert database["state"] == "busy"
        assert elapsed < 1.0

    after = client.get("/readyz").json["checks"]["database"]
    assert after == {"ok": True, "revision": head_revision()}


def test_readyz_is_503_while_the_database_refuses_connections(
    redis_url: str, tmp_path: Path
) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/yardmaster"
    settings = load_settings({}, redis_url=redis_url, database_url=unreachable)
    engine = make_engine(settings.database_url, 1.0, busy_timeout=BOUND)
    resources = Resources(make_redis(redis_url, 1.0), engine, head_revision())
    client = create_app(settings, resources).test_client()

    response = client.get("/readyz")
    write = client.post("/work", json={"execution_time": 1})
    resources.redis.close()
    engine.dispose()

    assert response.status_code == 503
    assert "database unreachable" in response.json["detail"]
    assert write.status_code == 503
    assert write.json["database"] == "unreachable"
