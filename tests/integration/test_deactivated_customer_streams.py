"""A deactivated customer's live streams: each one it opened before (job events, the file
pipeline), in every API process, ends promptly with an ``ended`` event saying why, also when
Redis was away at the moment of the deactivation; its reconnection is refused (403); other
customers' streams and the admin's go on."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from integration.test_live_views import Reader, open_stream
from sqlalchemy import Engine
from werkzeug.test import TestResponse

from support import RedisServer, bearer
from yardmaster.api import create_app
from yardmaster.api.live.registry import EXTENSION
from yardmaster.api.resources import Resources
from yardmaster.shared.jobbus import publish_job
from yardmaster.shared.jobs import JobKind
from yardmaster.shared.jobstore import JobStore
from yardmaster.shared.migrate import head_revision, upgrade_to_head
from yardmaster.shared.redis_client import make_redis
from yardmaster.shared.settings import load_settings

ADMIN, C1, C2 = "ym-admin-secret", "ym-c1-secret", "ym-c2-secret"
TOKENS = f"admin={ADMIN},customer-1={C1},customer-2={C2}"
STREAMS = ["/jobs/events", "/files/events"]
#: How soon a stream ends after the deactivation (promptly: well within this).
PROMPTLY = 2.0

#: An API process (its own app, hub and Redis subscription) on a Redis of the test's choosing.
MakeApi = Callable[..., FlaskClient]


@pytest.fixture
def make_api(
    redis_url: str, database_url: str, engine: Engine, tmp_path: Path
) -> Iterator[MakeApi]:
    """API processes behind tokens on one database with customers 1 and 2 (made by the
    first); every stream they open and every relay ends with the test."""
    upgrade_to_head(engine)
    clients: list[FlaskClient] = []
    opened: list[TestResponse] = []

    def make(redis_url: str = redis_url) -> FlaskClient:
        settings = load_settings(
            {},
            redis_url=redis_url,
            database_url=database_url,
            data_dir=str(tmp_path),
            api_tokens=TOKENS,
            stream_keepalive="0.2",
        )
        resources = Resources(make_redis(redis_url, 1.0), engine, head_revision())
        client = create_app(settings, resources).test_client()
        client.opened = opened  # type: ignore[attr-defined]
        if not clients:
            add_customers(client)
        clients.append(client)
        return client

    yield make
    for stream in opened:
        stream.close()
    for client in clients:
        if (hub := client.application.extensions.get(EXTENSION)) is not None:
            hub.close()


def add_customers(client: FlaskClient) -> None:
    site = client.post("/sites", json={"name": "Acme"}, headers=bearer(ADMIN)).get_json()
    for name in ("Ada", "Bob"):
        created = client.post(
            "/customers", json={"site_id": site["id"], "name": name}, headers=bearer(ADMIN)
        )
        assert created.status_code == 201, created.get_json()


def follow(client: FlaskClient, path: str, token: str, address: str = "10.0.0.1") -> Reader:
    reader = Reader(open_stream(client, path, address, **bearer(token)))
    reader.until(lambda text: ": connected" in text)
    return reader


def deactivate(client: FlaskClient, customer_id: int) -> None:
    response = client.patch(
        f"/customers/{customer_id}", json={"is_active": False}, headers=bearer(ADMIN)
    )
    assert response.status_code == 200, response.get_json()


def ends_with_reason(reader: Reader, customer_id: int, timeout: float = PROMPTLY) -> None:
    """The stream sends ``ended`` (saying why) and then ends, within ``timeout`` seconds."""
    reader.until(lambda text: "event: ended" in text, timeout=timeout)
    ended = [data for name, data, _ in reader.events() if name == "ended"]
    assert ended == [{"reason": f"customer {customer_id} is deactivated"}]
    assert list(reader.chunks) == []  # nothing after it: the stream is over


def announce_a_job(redis_url: str, engine: Engine, owner: str) -> str:
    """A new job of ``owner``, announced as workers and API processes do."""
    job = JobStore(engine).create(
        JobKind.WORK, {"execution_time": 1.0}, "yardmaster-default", owner=owner
    )
    with redis.Redis.from_url(redis_url) as client:
        publish_job(client, job)
    return job.id


@pytest.mark.parametrize("path", STREAMS)
def test_a_customers_open_stream_ends_saying_why_once_it_is_deactivated(
    make_api: MakeApi, path: str
) -> None:
    api = make_api()
    reader = follow(api, path, C1)

    began = time.monotonic()
    deactivate(api, 1)

    ends_with_reason(reader, 1)
    assert time.monotonic() - began < PROMPTLY


@pytest.mark.parametrize("path", STREAMS)
def test_its_reconnection_is_refused_with_403(make_api: MakeApi, path: str) -> None:
    api = make_api()
    ends = follow(api, path, C1)
    deactivate(api, 1)
    ends_with_reason(ends, 1)

    again = open_stream(api, path, **bearer(C1))

    assert again.status_code == 403
    assert again.get_json()["deactivated"] is True


def test_the_customers_streams_end_in_every_api_process(make_api: MakeApi) -> None:
    first, second = make_api(), make_api()
    readers = [follow(api, path, C1) for api in (first, second) for path in STREAMS]

    deactivate(first, 1)

    for reader in readers:
        ends_with_reason(reader, 1)


def test_other_customers_and_the_admins_streams_go_on(
    make_api: MakeApi, engine: Engine, redis_url: str
) -> None:
    api = make_api()
    ending = follow(api, "/jobs/events", C1)
    others = {
        token: follow(api, "/jobs/events", token, f"10.0.0.{n}")
        for n, token in enumerate((C2, ADMIN), start=2)
    }
    admin_files = follow(api, "/files/events", ADMIN, "10.0.0.4")

    deactivate(api, 1)
    ends_with_reason(ending, 1)
    job_id = announce_a_job(redis_url, engine, owner="2")

    for reader in others.values():
        reader.until(lambda text: job_id in text)
        assert "event: ended" not in reader.text
    admin_files.until(lambda text: text.count(": keep-alive") >= 2)
    assert "event: ended" not in admin_files.text


@pytest.mark.parametrize("path", STREAMS)
def test_a_stream_ends_when_redis_comes_back_from_an_outage_during_the_deactivation(
    make_api: MakeApi, engine: Engine, tmp_path: Path, path: str
) -> None:
    server = RedisServer(tmp_path / "r").start()
    try:
        api = make_api(redis_url=server.url)
        reader = follow(api, path, C1)
        other = follow(api, path, C2, "10.0.0.2")
        server.stop()
        reader.until(lambda text: "Redis unreachable" in text)

        deactivate(api, 1)  # its message cannot be published
        missed = JobStore(engine).create(JobKind.WORK, {}, "yardmaster-default", owner="2")
        outage_at = len(reader.text)
        reader.until(lambda text: ": keep-alive" in text[outage_at:])  # no end yet
        server.start()

        ends_with_reason(reader, 1, timeout=20)
        # the other customer's stream goes on, with what changed meanwhile
        fresh = missed.id if path == "/jobs/events" else "event: resync"
        other.until(lambda text: fresh in text)
        assert "event: ended" not in other.text
    finally:
        server.stop()
