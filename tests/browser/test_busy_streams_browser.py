"""A stream the server refuses (503, its cap of streams reached) is said on the page, and the
page connects by itself once a slot frees.

The API (one process) takes one stream per client address, and the test holds it from
127.0.0.1, the browser's address too. The server notices a closed stream at its next
keep-alive (every 1 s here); the page tries again after the 503's Retry-After (5 s).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from browsing import screenshot, start_api
from playwright.sync_api import Page, expect

from e2e.stack import Start
from support import eventually


@pytest.fixture(scope="module")
def base(module_start: Start, module_redis_url: str, module_dir: Path) -> str:
    return start_api(
        module_start,
        redis_url=module_redis_url,
        data_dir=str(module_dir / "data"),
        api_workers="1",  # the caps are per process: one process, so one stream in all
        streams_per_address="1",
        stream_keepalive="1",
    )


def _opened(url: str) -> requests.Response | None:
    response = requests.get(url, stream=True, timeout=10)
    if response.status_code == 200:
        return response
    response.close()
    return None


@contextmanager
def the_only_stream(url: str) -> Iterator[requests.Response]:
    """Hold the one stream this address may have (once an earlier test's is noticed gone)."""
    response = eventually(lambda: _opened(url), 15, "a free stream slot")
    try:
        yield response
    finally:
        response.close()


def test_the_dashboard_says_its_live_view_is_busy_and_goes_live_once_a_slot_frees(
    base: str, page: Page
) -> None:
    banner, badge = page.locator("#live-banner"), page.locator("#jobs-live")
    with the_only_stream(base + "/jobs/events"):
        refused = requests.get(base + "/jobs/events", timeout=5)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert "127.0.0.1 already has 1 live streams open" in refused.json()["detail"]

        page.goto(base + "/")

        expect(banner).to_contain_text("Job updates: Live view busy: no live stream now: 127.0.0.1")
        expect(banner).to_contain_text("retrying in 5 s")
        expect(badge).to_have_text("busy")
        screenshot(page, "live-busy")

    expect(badge).to_have_text("live")
    expect(banner).to_be_hidden()
    assert not page.errors  # type: ignore[attr-defined]


def test_the_queue_page_says_its_live_view_is_busy_and_follows_the_queue_once_a_slot_frees(
    base: str, page: Page
) -> None:
    live = page.locator("#live")
    with the_only_stream(base + "/queue/events"):
        page.goto(base + "/queue/")

        expect(live).to_contain_text("Live view busy: no live stream now")
        expect(live).to_contain_text("retrying in 5 s")
        expect(page.locator("#me")).to_have_text("You have no token.")
        screenshot(page, "queue-busy")

    expect(live).to_be_empty()
    page.get_by_role("button", name="Get a token").click()
    expect(page.locator("#me")).to_contain_text("is at the head")  # told by the stream
    expect(page.locator("#board .token")).to_have_count(1)
    assert not page.errors  # type: ignore[attr-defined]
