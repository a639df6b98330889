"""Helpers of the browser tests: start the API, save screenshots."""

from __future__ import annotations

import re
from pathlib import Path

import requests
from playwright.sync_api import Page

from e2e.stack import Start
from support import REPO, eventually, free_port

SCREENSHOTS = REPO / "test-output" / "screenshots"


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page under test-output/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def start_api(start: Start, **settings: str) -> str:
    """Start the API on a free port; its base URL once it answers."""
    port = free_port()
    start("yardmaster.api", "--port", str(port), **settings)
    base = f"http://127.0.0.1:{port}"
    eventually(lambda: requests.get(f"{base}/healthz", timeout=2).ok, 30, "API up")
    return base
