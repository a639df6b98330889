"""The Files view follows /files/events: files and worker statistics show as they change.

The events are published on the Redis channels the file workers use, so each test says
exactly what the page is told; the page reads no REST list once it is live.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from browsing import screenshot, start_api
from playwright.sync_api import Page, Request, Route, expect

from e2e.stack import Start
from support import eventually
from yardmaster.shared import keys

FILE = "2023_01_25_12_05.txt"
STARTED = dt.datetime(2023, 1, 25, 12, 6, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def base(
    module_start: Start, module_redis_url: str, module_database_url: str, module_dir: Path
) -> str:
    return start_api(
        module_start,
        redis_url=module_redis_url,
        database_url=module_database_url,
        bucket_dir=str(module_dir / "bucket"),
    )


@pytest.fixture
def bus(module_redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(module_redis_url)
    yield client
    client.close()


def beat(bus: redis.Redis, instance: str, **details: Any) -> None:
    """Publish a file worker's heartbeat record, as its Heartbeat does."""
    record: dict[str, Any] = {
        "service": "file-worker",
        "instance": instance,
        "host": "test",
        "pid": 1,
    }
    record |= {"started_at": time.time() - 60, "beat_at": time.time(), "state": "working"}
    bus.publish(keys.PROCESS_EVENTS, json.dumps(record | details))


def ledger(bus: redis.Redis, state: str, **values: Any) -> None:
    """Publish a change of the ledger row of FILE, as the file worker does."""
    row: dict[str, Any] = {
        "bucket": "b1",
        "name": FILE,
        "state": state,
        "worker": "fw-live",
        "minutes": None,
    }
    row |= {"rows": 0, "error": None, "started_at": STARTED.isoformat(), "finished_at": None}
    bus.publish(keys.FILE_EVENTS, json.dumps(row | values))


def api_subscribed(bus: redis.Redis) -> bool:
    """Whether the API's relay listens to both channels (it subscribes once a stream opens)."""
    counts = bus.pubsub_numsub(keys.FILE_EVENTS, keys.PROCESS_EVENTS)
    return all(count >= 1 for _, count in counts)


def test_the_files_view_shows_a_new_file_and_a_workers_statistics_as_events_arrive(
    base: str, page: Page, bus: redis.Redis
) -> None:
    page.goto(base + "/#files")
    expect(page.locator("#files-updated")).to_have_text(re.compile("^live"))
    expect(page.locator("#files-counts")).to_contain_text("0 file(s) in the ledger")
    eventually(lambda: api_subscribed(bus), 10, "the API relaying file events")
    workers = page.locator("#workers-table tbody tr")

    beat(bus, "fw-silent", beat_at=time.time() - 60)  # its heartbeat would have expired
    beat(bus, "fw-live", current_file=None, files=0, total_time=0, sum_of_squares=0)
    expect(workers.filter(has_text="fw-live")).to_contain_text("no file done yet")
    expect(workers).to_have_count(1)
    # from here on, everything shown comes from the stream: no reload, no REST list
    page.evaluate("window.sameDocument = true")
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(_rest_list(request)))

    ledger(bus, "loaded")
    beat(bus, "fw-live", current_file=FILE, files=0, total_time=0, sum_of_squares=0)
    row = page.locator(f'#files-table tr[data-file="{FILE}"]')
    expect(row.locator(".state")).to_have_text("processing")
    expect(page.locator("#files-counts")).to_contain_text("1 being processed")

    finished = (STARTED + dt.timedelta(seconds=3)).isoformat()
    ledger(bus, "done", minutes=12.5, rows=40, finished_at=finished)
    beat(bus, "fw-live", current_file=None, files=1, total_time=12.5, sum_of_squares=156.25)
    expect(workers.filter(has_text="fw-live").locator(".stats")).to_have_text(
        "Files processed: 1, Total Time: 12.5, Sum of Squares: 156.25"
    )
    expect(row.locator(".state")).to_have_text("done")
    expect(page.locator("#files-counts")).to_have_text(
        "1 file(s) in the ledger: 1 done, 0 quarantined, 0 being processed."
    )
    expect(page.locator("#timeline svg rect.file.done")).to_have_count(1)
    screenshot(page, "files-live")

    gone = {"service": "file-worker", "instance": "fw-live", "gone": True}
    bus.publish(keys.PROCESS_EVENTS, json.dumps(gone))
    expect(workers).to_have_text(["No file worker is running."])
    assert page.evaluate("window.sameDocument") is True
    assert not [url for url in fetched if url], fetched
    assert not page.errors  # type: ignore[attr-defined]


def _rest_list(request: Request) -> str:
    """The URL of a request for a list the Files view could poll, else ""."""
    path = request.url.split("//", 1)[-1].partition("/")[2]
    return request.url if path.startswith(("files", "workers")) and "events" not in path else ""


def test_the_stream_parser_reads_events_however_the_bytes_are_split(base: str, page: Page) -> None:
    # a page of the API, whose policy lets it import the API's scripts (a JSON answer's
    # policy lets nothing load)
    page.goto(base + "/queue/")
    chunks = [
        "retry: 3000\n: connected\n\n",
        "id: 7\nevent: app",
        'end\ndata: {"token"',
        ': "a"}\r',
        "\n\r\n",
        "data: one\ndata:two\n\n",
        "event: x\nretry: soon\ndata\n\n",
        ": keep-alive\n\n",
        "data: cut off",
    ]

    parsed = page.evaluate(
        """async (chunks) => {
          const { eventParser } = await import("/static/js/sse.js");
          const seen = [];
          let retry = null;
          const feed = eventParser((...event) => seen.push(event), (ms) => { retry = ms; });
          for (const chunk of chunks) feed(chunk);
          return { seen, retry };
        }""",
        chunks,
    )

    assert parsed == {
        "seen": [
            ["append", '{"token": "a"}', "7"],
            ["message", "one\ntwo", "7"],  # data lines joined; the id outlives its event
            ["x", "", "7"],  # a "data" line without a value still makes an event
        ],
        "retry": 3000,  # "retry: soon" is not a number: ignored
    }


def test_a_stream_the_server_ends_saying_why_shows_that_reason_and_is_not_asked_again_soon(
    base: str, page: Page
) -> None:
    page.goto(base + "/queue/")
    ended = 'event: ended\ndata: {"reason": "customer 7 is deactivated"}\n\n'
    asked: list[str] = []

    def answer(route: Route) -> None:
        asked.append(route.request.url)
        route.fulfill(status=200, content_type="text/event-stream", body=ended)

    page.route("**/jobs/events", answer)

    shown = page.evaluate(
        """async () => {
          const { openStream, describe } = await import("/static/js/sse.js");
          const statuses = [];
          const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
          const onStatus = (status) => statuses.push(status);
          const stream = openStream("/jobs/events", { onEvent: () => {}, onStatus });
          for (let i = 0; i < 100 && statuses.length < 2; i++) await pause(50);
          await pause(2500);  // a plain drop would be followed again after 2 s
          stream.close();
          return { states: statuses.map((s) => s.state), last: describe(statuses.at(-1)) };
        }"""
    )

    assert shown == {
        "states": ["live", "refused"],
        "last": "Live view ended: customer 7 is deactivated; asking again in 10 s",
    }
    assert len(asked) == 1
