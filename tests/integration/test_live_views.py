"""Live views: one Redis subscription per API process, caps answered 503, streams that resume,
outlive Redis outages and end when the process stops."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, update
from werkzeug.test import TestResponse

from support import RedisServer, eventually
from yardmaster.api import create_app
from yardmaster.api.live.registry import EXTENSION
from yardmaster.api.resources import Resources
from yardmaster.api.shutdown import STOPPING
from yardmaster.shared.heartbeat import Heartbeat
from yardmaster.shared.jobbus import publish_job
from yardmaster.shared.jobs import JobKind
from yardmaster.shared.jobstore import JobStore
from yardmaster.shared.ledger import publish_ledger_change
from yardmaster.shared.migrate import head_revision, upgrade_to_head
from yardmaster.shared.models import Job
from yardmaster.shared.redis_client import make_redis
from yardmaster.shared.settings import load_settings
from yardmaster.shared.turnqueue import keys as queue_keys

MakeClient = Callable[..., FlaskClient]


@pytest.fixture
def make_client(
    redis_url: str, database_url: str, engine: Engine, tmp_path: Path
) -> Iterator[MakeClient]:
    """API test clients with settings of the test's choosing (fast keep-alives by default);
    every stream they open is closed after the test."""
    upgrade_to_head(engine)
    opened: list[TestResponse] = []
    apps: list[Flask] = []

    def make(redis_url: str = redis_url, **settings: Any) -> FlaskClient:
        settings.setdefault("stream_keepalive", "0.2")
        values = load_settings(
            {}, redis_url=redis_url, database_url=database_url, data_dir=str(tmp_path), **settings
        )
        resources = Resources(make_redis(redis_url, 1.0), engine, head_revision())
        app = create_app(values, resources)
        apps.append(app)
        client = app.test_client()
        client.opened = opened  # type: ignore[attr-defined]
        return client

    yield make
    for stream in opened:
        stream.close()
    for app in apps:
        if (hub := app.extensions.get(EXTENSION)) is not None:
            hub.close()


def open_stream(
    client: FlaskClient, path: str, address: str = "10.0.0.1", **headers: str
) -> TestResponse:
    response = client.get(
        path, buffered=False, environ_base={"REMOTE_ADDR": address}, headers=headers
    )
    client.opened.append(response)  # type: ignore[attr-defined]
    return response


class Reader:
    """Reads SSE messages (event, data, id) from a test client's streaming response."""

    def __init__(self, response: TestResponse) -> None:
        assert response.status_code == 200, response.get_data(as_text=True)
        self.chunks = iter(response.response)
        self.text = ""

    def next_chunk(self) -> str:
        chunk = next(self.chunks)
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        self.text += text
        return text

    def until(self, wanted: Callable[[str], bool], timeout: float = 10.0) -> str:
        """Read until ``wanted(all text so far)``; fail at the deadline."""
        deadline = time.monotonic() + timeout
        while not wanted(self.text):
            assert time.monotonic() < deadline, f"not seen within {timeout} s:\n{self.text}"
            self.next_chunk()
        return self.text

    def events(self) -> list[tuple[str, dict[str, Any], str | None]]:
        found = []
        for block in self.text.split("\n\n"):
            fields = dict(
                line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
            )
            if "event" in fields:
                found.append((fields["event"], json.loads(fields["data"]), fields.get("id")))
        return found


def take(client: FlaskClient, address: str = "10.9.9.9") -> dict[str, Any]:
    response = client.post("/queue/tokens", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 201
    return dict(response.json or {})


def subscribers(redis_url: str, channel: str) -> int:
    with redis.Redis.from_url(redis_url) as client:
        [(_, count)] = client.pubsub_numsub(channel)
    return int(count)


def test_every_stream_of_a_process_shares_one_redis_subscription(
    make_client: MakeClient, redis_url: str
) -> None:
    client = make_client()
    readers = [Reader(open_stream(client, "/queue/events", f"10.0.0.{n}")) for n in range(8)]
    for reader in readers:
        reader.until(lambda text: "event: snapshot" in text)

    take(client)

    for reader in readers:
        reader.until(lambda text: "event: append" in text)
    with_them = subscribers(redis_url, queue_keys.EVENTS_CHANNEL)  # other tests' relays too
    client.application.extensions[EXTENSION].close()  # this process's relay ends
    eventually(lambda: subscribers(redis_url, queue_keys.EVENTS_CHANNEL) == with_them - 1, 5)


def test_past_the_per_address_cap_a_stream_is_refused_503_with_retry_after(
    make_client: MakeClient,
) -> None:
    client = make_client(streams_per_address="2")
    held = [open_stream(client, "/jobs/events", "10.0.0.7") for _ in range(2)]

    refused = open_stream(client, "/queue/events", "10.0.0.7")

    assert [r.status_code for r in held] == [200, 200]
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) >= 1
    assert "10.0.0.7 already has 2 live streams" in refused.json["detail"]
    assert open_stream(client, "/jobs/events", "10.0.0.8").status_code == 200  # others may
    held[0].close()
    assert open_stream(client, "/queue/events", "10.0.0.7").status_code == 200  # a slot freed


def test_past_the_per_process_cap_every_address_is_refused_until_a_stream_ends(
    make_client: MakeClient,
) -> None:
    client = make_client(streams_per_process="3")
    held = [open_stream(client, "/files/events", f"10.0.1.{n}") for n in range(3)]

    refused = open_stream(client, "/jobs/events", "10.0.1.99")

    assert refused.status_code == 503
    assert "Retry-After" in refused.headers
    held[1].close()
    assert open_stream(client, "/jobs/events", "10.0.1.99").status_code == 200


def test_a_queue_stream_resumed_with_last_event_id_gets_only_what_it_missed(
    make_client: MakeClient,
) -> None:
    client = make_client()
    first = Reader(open_stream(client, "/queue/events"))
    first.until(lambda text: "event: snapshot" in text)
    take(client)
    first.until(lambda text: "event: append" in text)
    [_, (_, _, seen_id)] = first.events()
    take(client)
    take(client)

    resumed = Reader(open_stream(client, "/queue/events", **{"Last-Event-ID": str(seen_id)}))
    resumed.until(lambda text: text.count("event: append") == 2)

    assert "event: snapshot" not in resumed.text
    assert [(kind, data["token"]) for kind, data, _ in resumed.events()] == [
        ("append", "A01"),
        ("append", "A02"),
    ]


def test_a_queue_stream_that_cannot_resume_from_its_id_gets_a_snapshot(
    make_client: MakeClient,
) -> None:
    client = make_client()
    take(client)

    resumed = Reader(open_stream(client, "/queue/events", **{"Last-Event-ID": "999"}))
    resumed.until(lambda text: "event: snapshot" in text)

    [(kind, data, _)] = resumed.events()
    assert kind == "snapshot"
    assert data["waiting"] == ["A00"]


def make_job(engine: Engine, redis_url: str, owner: str | None = None) -> Job:
    store = JobStore(engine)
    job = store.create(JobKind.WORK, {"execution_time": 1.0}, "yardmaster-default", owner=owner)
    publish_job(redis.Redis.from_url(redis_url), job)
    return job


def test_job_events_carry_the_jobs_updated_at_as_their_id(
    make_client: MakeClient, engine: Engine, redis_url: str
) -> None:
    reader = Reader(open_stream(make_client(), "/jobs/events"))
    reader.until(lambda text: ": connected" in text)

    job = make_job(engine, redis_url)
    reader.until(lambda text: "event: job" in text)

    [(_, data, event_id)] = reader.events()
    assert data["id"] == job.id
    assert event_id == data["updated_at"]


def test_a_job_stream_resumed_with_last_event_id_first_gets_the_jobs_changed_since(
    make_client: MakeClient, engine: Engine, redis_url: str
) -> None:
    old = make_job(engine, redis_url)
    with engine.begin() as connection:  # changed an hour ago: before the client's last event
        an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        connection.execute(update(Job).where(Job.id == old.id).values(updated_at=an_hour_ago))
    last_seen = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    missed = make_job(engine, redis_url)

    reader = Reader(open_stream(make_client(), "/jobs/events", **{"Last-Event-ID": last_seen}))
    reader.until(lambda text: "event: job" in text)

    assert [data["id"] for _, data, _ in reader.events()] == [missed.id]


def test_the_files_stream_shows_workers_ledger_changes_and_arriving_files(
    make_client: MakeClient, redis_url: str, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    (bucket / "2024_01_01_00_00.txt").write_text("")
    reader = Reader(open_stream(make_client(bucket_dir=str(bucket)), "/files/events"))
    reader.until(lambda text: "event: snapshot" in text)
    client = redis.Redis.from_url(redis_url)
    beat = Heartbeat(client, "file-worker", "fw-1", tmp_path / "run", announce_changes=True)

    beat.beat(current_file="2024_01_01_00_00.txt", files=0)
    publish_ledger_change(client, {"bucket": "b", "name": "2024_01_01_00_00.txt", "state": "done"})
    beat.retire()
    reader.until(lambda text: "event: worker-gone" in text)

    events = {kind: data for kind, data, _ in reader.events()}
    assert events["snapshot"]["arriving"]["items"] == [{"name": "2024_01_01_00_00.txt"}]
    assert events["worker"]["current_file"] == "2024_01_01_00_00.txt"
    assert events["file"]["state"] == "done"
    assert events["worker-gone"] == {"instance": "fw-1"}


def test_a_quiet_stream_sends_keep_alives(make_client: MakeClient) -> None:
    reader = Reader(open_stream(make_client(stream_keepalive="0.1"), "/jobs/events"))

    reader.until(lambda text: text.count(": keep-alive") >= 3, timeout=5)


def test_streams_outlive_a_redis_outage_and_get_a_fresh_snapshot_when_it_returns(
    make_client: MakeClient, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "r", persistent=True).start()
    try:
        client = make_client(redis_url=server.url)
        reader = Reader(open_stream(client, "/queue/events"))
        reader.until(lambda text: "event: snapshot" in text)
        take(client)
        reader.until(lambda text: "event: append" in text)

        server.stop()
        reader.until(lambda text: "Redis unreachable" in text)
        outage_at = len(reader.text)
        reader.until(lambda text: ": keep-alive" in text[outage_at:])  # still connected
        server.start()

        reader.until(lambda text: "event: snapshot" in text[outage_at:], timeout=20)
        fresh = reader.text[outage_at:]
        assert '"waiting": ["A00"]' in fresh
    finally:
        server.stop()


def test_every_stream_ends_when_the_process_is_asked_to_stop(make_client: MakeClient) -> None:
    reader = Reader(open_stream(make_client(), "/jobs/events"))
    reader.until(lambda text: ": connected" in text)

    STOPPING.set()
    try:
        began = time.monotonic()
        remaining = list(reader.chunks)  # ends: the stream is over
        assert time.monotonic() - began < 5
        assert len(remaining) <= 1
    finally:
        STOPPING.clear()


def test_a_stream_refused_for_a_cap_does_not_count_against_it(make_client: MakeClient) -> None:
    client = make_client(streams_per_address="1")
    held = open_stream(client, "/jobs/events", "10.0.2.1")
    for _ in range(5):
        assert open_stream(client, "/jobs/events", "10.0.2.1").status_code == 503

    held.close()

    eventually(lambda: open_stream(client, "/jobs/events", "10.0.2.1").status_code == 200, 5)
