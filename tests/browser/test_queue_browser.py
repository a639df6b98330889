"""The turn queue page in two browsers at once: served strictly in turn, watched live; and
in two tabs of one browser, which hold the same turn."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from browsing import screenshot, start_api
from playwright.sync_api import BrowserContext, Page, expect

from e2e.stack import Start


@pytest.fixture(scope="module")
def base(module_start: Start, module_redis_url: str, module_dir: Path) -> str:
    return start_api(module_start, redis_url=module_redis_url, data_dir=str(module_dir / "data"))


def queue_page(context: BrowserContext, base: str) -> Page:
    page = context.new_page()
    page.goto(base + "/queue/")
    return page


def fresh_queue_page(new_context: Callable[..., BrowserContext], base: str) -> Page:
    page = queue_page(new_context(), base)
    expect(page.locator("#me")).to_have_text("You have no token.")
    return page


def test_two_browsers_take_tokens_and_are_served_in_turn_while_the_second_sees_its_place_move(
    new_context: Callable[..., BrowserContext], base: str
) -> None:
    first, second = fresh_queue_page(new_context, base), fresh_queue_page(new_context, base)

    first.get_by_role("button", name="Get a token").click()
    expect(first.locator("#me")).to_contain_text("is at the head")
    second.get_by_role("button", name="Get a token").click()
    expect(second.locator("#me")).to_contain_text("is number 2 in the queue")
    expect(first.locator("#board .token")).to_have_count(2)  # each sees the other's token live
    screenshot(second, "queue-second-waiting")

    first.get_by_role("button", name="Redeem").click()
    expect(first.locator("#picture img")).to_be_visible()
    expect(second.locator("#me")).to_contain_text("is next")
    screenshot(first, "queue-first-served")

    first.get_by_role("button", name="Done looking").click()
    expect(second.locator("#me")).to_have_text(re.compile(r"is at the head: \d+ s left"))
    second.get_by_role("button", name="Redeem").click()
    expect(second.locator("#picture img")).to_be_visible()
    expect(first.locator("#board .token")).to_have_count(0)
    screenshot(second, "queue-second-served")
    second.get_by_role("button", name="Done looking").click()
    expect(second.locator("#me")).to_have_text("You have no token.")


def test_a_second_tab_of_the_same_browser_keeps_the_turn_and_another_browser_cannot_take_it(
    new_context: Callable[..., BrowserContext], base: str
) -> None:
    browser = new_context()
    first_tab = queue_page(browser, base)
    expect(first_tab.locator("#me")).to_have_text("You have no token.")
    first_tab.get_by_role("button", name="Get a token").click()
    expect(first_tab.locator("#me")).to_contain_text("is at the head")
    token = first_tab.locator("#board .token.mine").inner_text()

    second_tab = queue_page(browser, base)  # the same browser: the turn is kept
    expect(second_tab.locator("#me")).to_contain_text(f"Your token {token} is at the head")
    stranger = fresh_queue_page(new_context, base)  # another browser sees the token, no more
    expect(stranger.locator("#board .token")).to_have_text([token])
    expect(stranger.get_by_role("button", name="Redeem")).to_be_disabled()

    second_tab.get_by_role("button", name="Redeem").click()
    expect(second_tab.locator("#picture img")).to_be_visible()
    expect(first_tab.locator("#picture img")).to_be_visible()  # both tabs hold the window
    screenshot(second_tab, "queue-second-tab-served")
    first_tab.get_by_role("button", name="Done looking").click()
    expect(second_tab.locator("#picture img")).to_have_count(0)
    expect(second_tab.locator("#me")).to_have_text("You have no token.")
