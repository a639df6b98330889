"""Helpers of the browser tests: start the API, save screenshots, watch the pages' CSP."""

from __future__ import annotations

import re
from pathlib import Path

import requests
from playwright.sync_api import ConsoleMessage, Page

from e2e.stack import Start
from support import REPO, eventually, free_port

SCREENSHOTS = REPO / "test-output" / "screenshots"
#: Run in every document of a page before its own scripts: each Content-Security-Policy
#: violation is said on the console (Chromium also says most of them by itself).
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => console.error(
  `CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline code"}`));
"""


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page under test-output/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def csp_violations(page: Page) -> list[str]:
    """The Content-Security-Policy violations of ``page`` from now on, as a list that fills
    as they happen (call it before the page loads)."""
    found: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)

    def note(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or message.text.startswith("CSP violation"):
            found.append(message.text)

    page.on("console", note)
    return found


def start_api(start: Start, **settings: str) -> str:
    """Start the API on a free port; its base URL once it answers."""
    port = free_port()
    start("yardmaster.api", "--port", str(port), **settings)
    base = f"http://127.0.0.1:{port}"
    eventually(lambda: requests.get(f"{base}/healthz", timeout=2).ok, 30, "API up")
    return base
