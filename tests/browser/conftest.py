"""Browser fixtures: headless Debian chromium driven by Playwright, against real processes.

One stack (API and what the module needs) is started per test module; every test gets a fresh
browser context. Chromium is the system's (``/usr/bin/chromium``, ``make system-deps``), never
a downloaded one: without it the tests skip, unless ``YARDMASTER_REQUIRE_BROWSER=1`` (CI).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from e2e.stack import Start
from support import RedisServer, Starter
from yardmaster.shared.db import make_engine
from yardmaster.shared.migrate import upgrade_to_head

CHROMIUM = Path("/usr/bin/chromium")
#: How long Playwright's expect() waits for the page to show something.
EXPECT_TIMEOUT_MS = 30_000


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real browser (chromium) against the API")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless chromium for the session (skipped, or failed in CI, when it is missing)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: run `make system-deps` (Debian's chromium package)"
        if os.environ.get("YARDMASTER_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Make browser contexts (separate cookies and storage); all are closed after the test."""
    made: list[BrowserContext] = []

    def make(**options: object) -> BrowserContext:
        context = browser.new_context(accept_downloads=True, **options)  # type: ignore[arg-type]
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    """A page in a fresh context, its console errors failing the test."""
    page = new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    return page


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def module_redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this module."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="module")
def module_database_url(module_dir: Path) -> str:
    """A SQLite database of the module's own, at the current schema."""
    url = f"sqlite:///{module_dir / 'yardmaster.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def module_start(module_dir: Path) -> Iterator[Start]:
    """Start ``python -m MODULE ARGS`` with settings; all are stopped when the module ends."""
    starter = Starter(module_dir)
    yield starter
    starter.close_all()
