"""Open event streams do not hold up the API's shutdown: each ends when its worker stops."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from e2e.stack import Start
from support import eventually, free_port

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
