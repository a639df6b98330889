"""/healthz, /readyz and /status against real Redis and real databases."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import Engine

from support import RedisServer, eventually
from yardmaster.api import create_app
from yardmaster.api.resources import Resources
from yardmaster.shared.heartbeat import Heartbeat
from yardmaster.shared.migrate import head_revision, upgrade_to_head
from yardmaster.shared.redis_client import make_redis
from yardmaster.shared.settings import load_settings


def client_for(redis_url: str, database_url: str, engine: Engine) -> FlaskClient:
    settings = load_settings({}, redis_url=redis_url, database_url=database_url)
    resources = Resources(make_redis(redis_url, 1.0), engine, head_revision())
    app = create_app(settings, resources)
    app.testing = True
    return app.test_client()


@pytest.fixture
def client(redis_url: str, database_url: str, engine: Engine) -> FlaskClient:
    upgrade_to_head(engine)
    return client_for(redis_url, database_url, engine)


def test_healthz_answers_while_the_process_is_up(client: FlaskClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_is_200_when_redis_and_the_migrated_database_answer(client: FlaskClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json is not None
    assert response.json["status"] == "ready"
    assert response.json["checks"]["database"] == {"ok": True, "revision": head_revision()}
    assert response.json["checks"]["redis"] == {"ok": True}


@pytest.mark.empty_database
def test_readyz_is_503_naming_the_migration_to_run_on_an_unmigrated_database(
    redis_url: str, database_url: str, engine: Engine
) -> None:
    response = client_for(redis_url, database_url, engine).get("/readyz")

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert "python -m yardmaster.shared.migrate" in response.json["detail"]
    assert response.json["checks"]["redis"] == {"ok": True}


def test_readyz_is_503_while_redis_is_down_and_recovers_by_itself(
    own_redis: RedisServer, database_url: str, engine: Engine
) -> None:
    upgrade_to_head(engine)
    client = client_for(own_redis.url, database_url, engine)
    assert client.get("/readyz").status_code == 200

    own_redis.stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["detail"].startswith("not ready: redis: Redis unreachable")
    assert response.json["checks"]["database"]["ok"] is True

    own_redis.start()
    eventually(lambda: client.get("/readyz").status_code == 200, what="readyz back to 200")


def test_readyz_is_503_when_the_database_is_unreachable(redis_url: str, tmp_path: Path) -> None:
    from yardmaster.shared.db import make_engine

    unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    client = client_for(redis_url, unreachable, make_engine(unreachable, connect_timeout=1))

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json is not None
    assert response.json["checks"]["database"]["error"].startswith("database unreachable")


def test_status_lists_the_processes_with_a_current_heartbeat(
    client: FlaskClient, redis_url: str, tmp_path: Path
) -> None:
    for instance in ["fw-1", "fw-2"]:
        Heartbeat(redis.Redis.from_url(redis_url), "file-worker", instance, tmp_path).beat()

    response = client.get("/status")

    assert response.status_code == 200
    assert response.json is not None
    instances = [p["instance"] for p in response.json["services"]["file-worker"]]
    assert instances == ["fw-1", "fw-2"]


def test_an_unknown_path_is_a_json_problem_document(client: FlaskClient) -> None:
    response = client.get("/no/such/thing")

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert response.json["status"] == 404
    assert response.json["title"] == "Not Found"


def test_a_wrong_method_is_a_problem_document_with_allow(client: FlaskClient) -> None:
    response = client.post("/healthz")

    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"]
