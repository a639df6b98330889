"""Heartbeats: a live process is listed through Redis and visible to its container healthcheck."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis

from support import RedisServer
from yardmaster.shared import keys
from yardmaster.shared.heartbeat import Heartbeat, live_processes, liveness_file
from yardmaster.shared.liveness import main as liveness_check


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def heartbeat(url: str, run_dir: Path, clock: FakeClock | None = None) -> Heartbeat:
    return Heartbeat(
        redis.Redis.from_url(url), "file-worker", "fw-1", run_dir, 5.0, clock or FakeClock()
    )


def test_a_beat_lists_the_process_until_three_beats_are_missed(
    redis_url: str, tmp_path: Path
) -> None:
    assert heartbeat(redis_url, tmp_path).beat(state="watching")

    client = redis.Redis.from_url(redis_url)
    [record] = live_processes(client)
    assert record["service"] == "file-worker"
    assert record["instance"] == "fw-1"
    assert record["state"] == "watching"
    assert 14_000 < client.pttl(keys.heartbeat_key("file-worker", "fw-1")) <= 15_000


def test_beats_closer_than_the_interval_are_skipped(redis_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    beat = heartbeat(redis_url, tmp_path, clock)
    beat.beat(n=1)
    clock.now += 1
    beat.beat(n=2)
    clock.now += 5
    beat.beat(n=3)

    [record] = live_processes(redis.Redis.from_url(redis_url))
    assert record["n"] == 3


def test_without_redis_a_beat_still_reaches_the_liveness_file(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    beat = heartbeat(own_redis.url, tmp_path)
    own_redis.stop()

    assert beat.beat() is False
    assert liveness_file(tmp_path, "file-worker", "fw-1").exists()


def test_retiring_removes_the_process_from_the_list(redis_url: str, tmp_path: Path) -> None:
    beat = heartbeat(redis_url, tmp_path)
    beat.beat()
    beat.retire()

    assert live_processes(redis.Redis.from_url(redis_url)) == []
    assert not liveness_file(tmp_path, "file-worker", "fw-1").exists()


def test_the_container_healthcheck_passes_only_on_a_fresh_liveness_file(
    redis_url: str, tmp_path: Path, monkeypatch: object
) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("YARDMASTER_DATA_DIR", str(tmp_path))
    run_dir = tmp_path / "run"
    assert liveness_check(["file-worker"]) == 1

    heartbeat(redis_url, run_dir).beat()

    assert liveness_check(["file-worker"]) == 0
    assert liveness_check(["report-worker"]) == 1
    assert liveness_check(["file-worker", "--max-age", "-1"]) == 1


def test_every_beat_and_the_end_of_a_process_are_published_for_live_views(
    redis_url: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_url)
    listener = client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(keys.PROCESS_EVENTS)
    beat = heartbeat(redis_url, tmp_path)

    beat.beat(state="working")
    beat.retire()

    records: list[dict[str, object]] = []
    deadline = time.monotonic() + 5
    while len(records) < 2 and time.monotonic() < deadline:
        if message := listener.get_message(timeout=0.5):
            records.append(json.loads(message["data"]))
    assert records[0]["state"] == "working"
    assert records[1] == {"service": "file-worker", "instance": "fw-1", "gone": True}


def test_a_beat_with_new_details_is_written_at_once_when_changes_are_announced(
    redis_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    client = redis.Redis.from_url(redis_url)
    beat = Heartbeat(client, "file-worker", "fw-1", tmp_path, 5.0, clock, announce_changes=True)
    beat.beat(current_file="a.txt")

    clock.now += 0.1
    beat.beat(current_file="a.txt")  # unchanged: waits for the interval
    [unchanged] = live_processes(client)
    beat.beat(current_file="b.txt")  # changed: written now

    [changed] = live_processes(client)
    assert unchanged["beat_at"] == 1_000.0
    assert changed["current_file"] == "b.txt"
    assert changed["beat_at"] == 1_000.1
