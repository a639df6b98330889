"""Open event streams and idle client connections do not hold up the API's shutdown: each
ends when its worker stops."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from e2e.stack import Start
from support import RedisServer, eventually, free_port

# Stream endpoints only: no database behaviour is involved.
pytestmark = pytest.mark.one_backend


def test_an_api_with_open_event_streams_stops_well_within_its_graceful_timeout(
    start: Start, redis_url: str, migrated_database_url: str
) -> None:
    port = free_port()
    api = start(
        "yardmaster.api", "--port", str(port), redis_url=redis_url,
        database_url=migrated_database_url,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    eventually(lambda: requests.get(f"{base}/healthz", timeout=2).ok, 30, "API up")
    ended: list[str] = []
    connected = threading.Semaphore(0)

    def watch(path: str) -> None:
        with requests.get(base + path, stream=True, timeout=30) as response:
            for _ in response.iter_content(chunk_size=None):
                connected.release()  # the stream's first lines arrived (and later ones)
        ended.append(path)  # the server ended the stream

    watchers = [
        threading.Thread(target=watch, args=(path,), daemon=True)
        for path in ("/jobs/events", "/queue/events", "/jobs/events")
    ]
    for watcher in watchers:
        watcher.start()
    for _ in watchers:
        assert connected.acquire(timeout=10), "a stream did not open"

    asked = time.monotonic()
    api.stop(timeout=30)
    took = time.monotonic() - asked

    assert took < 5, f"stopping took {took:.1f} s (gunicorn's graceful timeout is 10 s)"
    for watcher in watchers:
        watcher.join(timeout=5)
    assert sorted(ended) == ["/jobs/events", "/jobs/events", "/queue/events"]


def test_an_api_that_lived_through_a_redis_outage_stops_at_once_despite_idle_connections(
    own_redis: RedisServer, start: Start, migrated_database_url: str
) -> None:
    port = free_port()
    api = start(
        "yardmaster.api", "--port", str(port), redis_url=own_redis.url,
        database_url=migrated_database_url,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    # a readiness probe that keeps its connection open between checks, as load balancers do
    probe = requests.Session()
    ready = lambda: probe.get(f"{base}/readyz", timeout=5).status_code == 200  # noqa: E731
    eventually(ready, 30, "/readyz 200")
    own_redis.stop()
    assert probe.get(f"{base}/readyz", timeout=5).status_code == 503
    own_redis.start()
    eventually(ready, 30, "/readyz 200 again")
    # and a client that connected and has sent nothing yet
    silent = socket.create_connection(("127.0.0.1", port), timeout=10)

    asked = time.monotonic()
    exit_code = api.stop(timeout=30)
    took = time.monotonic() - asked

    assert exit_code == 0
    assert took < 5, f"stopping took {took:.1f} s (gunicorn's graceful timeout is 10 s)"
    silent.close()
    probe.close()
