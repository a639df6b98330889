"""Heartbeats: a live process is listed through Redis and visible to its container healthcheck."""

from __future__ import annotations

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
