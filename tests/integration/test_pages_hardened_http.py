"""Pages and answers a browser cannot be turned against: every page under a
Content-Security-Policy that runs only this server's files (or inline code by the hash of what
the page ships), never framed; every answer ``nosniff`` and without a Referer; and error
documents that never grow with the request that caused them."""

from __future__ import annotations

import base64
import hashlib
import json
from html.parser import HTMLParser
from importlib.resources import files as resources_files
from typing import Any

import pytest
from flask.testing import FlaskClient

PAGES = [("/", {"Accept": "text/html"}), ("/queue/", {}), ("/docs", {})]
HALF_A_MEGABYTE = 460_000
#: The largest problem document (problems.MAX_BYTES), with room for its headers.
SMALL = 17 * 1024


class InlineCode(HTMLParser):
    """The text of each inline script (of a script type) and style of a page, as a browser
    would run or apply it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.data_blocks: list[str] = []
        self._into: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "style":
            self._into = self.styles
        elif tag == "script" and "src" not in attributes:
            kind = (attributes.get("type") or "").lower()
            runs = kind in ("", "module", "text/javascript")
            self._into = self.scripts if runs else self.data_blocks
        if self._into is not None:
            self._into.append("")

    def handle_data(self, data: str) -> None:
        if self._into is not None:
            self._into[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._into = None


def sources(policy: str, directive: str) -> list[str]:
    for part in policy.split(";"):
        name, *values = part.split()
        if name == directive:
            return values
    raise AssertionError(f"no {directive} in {policy}")


def sha256(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


def assert_not_sniffed(response: Any) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(("path", "headers"), PAGES)
def test_every_page_runs_only_its_own_files_or_the_inline_code_it_ships_and_is_never_framed(
    client: FlaskClient, path: str, headers: dict[str, str]
) -> None:
    response = client.get(path, headers=headers)

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert_not_sniffed(response)
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert sources(policy, "object-src") == ["'none'"]
    assert sources(policy, "base-uri") == ["'none'"]
    page = InlineCode()
    page.feed(response.get_data(as_text=True))
    assert sources(policy, "script-src") == ["'self'", *map(sha256, page.scripts)]
    assert set(map(sha256, page.styles)) <= set(sources(policy, "style-src"))


def test_the_dashboard_runs_no_inline_script_its_contract_is_a_data_block(
    client: FlaskClient,
) -> None:
    response = client.get("/", headers={"Accept": "text/html"})
    page = InlineCode()
    page.feed(response.get_data(as_text=True))

    assert page.scripts == []
    assert page.styles == []
    assert "states" in json.loads(page.data_blocks[0])
    assert sources(response.headers["Content-Security-Policy"], "script-src") == ["'self'"]


def static_files() -> list[str]:
    root = resources_files("yardmaster.api").joinpath("static")
    found = [f"/static/{entry.name}" for entry in root.iterdir() if entry.is_file()]
    found += [f"/static/js/{entry.name}" for entry in root.joinpath("js").iterdir()]
    return sorted(found)


@pytest.mark.parametrize("path", static_files())
def test_every_static_file_is_served_with_its_type_and_never_sniffed(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 200
    expected = "text/css" if path.endswith(".css") else "text/javascript"
    assert response.mimetype == expected
    assert_not_sniffed(response)
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/jobs"),
        ("GET", "/no/such/thing"),
        ("DELETE", "/queue/bans/10.0.0.1"),
        ("GET", "/openapi.json"),
        ("GET", "/queue/images/A01.svg"),
    ],
)
def test_every_other_answer_forbids_sniffing_framing_and_loading_anything(
    client: FlaskClient, method: str, path: str
) -> None:
    response = client.open(path, method=method)

    assert_not_sniffed(response)
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; frame-ancestors 'none'; sandbox"
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/sites", [{"nam": 1}] * (HALF_A_MEGABYTE // 12)),  # an error per item
        ("POST", "/customers", [{"x": 1}] * (HALF_A_MEGABYTE // 10)),
        ("POST", "/work", [{"execution_time": "a"}] * (HALF_A_MEGABYTE // 24)),
        ("POST", "/sites", {"n" * HALF_A_MEGABYTE: 1}),  # an unknown field, named
        ("POST", "/exports", {"from": "x" * HALF_A_MEGABYTE, "till": "2023-01-01"}),  # quoted
        ("GET", "/jobs/" + "x" * HALF_A_MEGABYTE, None),
        ("GET", "/jobs?state=" + "x" * HALF_A_MEGABYTE, None),
        ("GET", "/get_report?report_id=" + "x" * HALF_A_MEGABYTE, None),
    ],
)
def test_an_error_document_stays_small_however_large_the_request(
    client: FlaskClient, method: str, path: str, body: Any
) -> None:
    sent = len(path) + (len(json.dumps(body)) if body is not None else 0)
    assert sent > HALF_A_MEGABYTE * 0.9

    response = client.open(path, method=method, json=body)

    assert response.status_code in (400, 404), response.status_code
    assert response.mimetype == "application/problem+json"
    assert len(response.data) < SMALL, len(response.data)
    problem = response.json
    assert problem["detail"]
    if isinstance(problem.get("errors"), list) and "errors_total" in problem:
        assert len(problem["errors"]) < problem["errors_total"]


def test_a_cut_error_list_says_how_long_it_was_and_a_cut_text_how_much_was_cut(
    client: FlaskClient,
) -> None:
    items = [{"execution_time": "a"}] * 1000

    problem = client.post("/work", json=items).json
    long_id = client.get("/jobs/" + "x" * 10_000).json

    assert problem["errors_total"] == 1000
    assert len(problem["errors"]) == 20
    assert long_id["detail"].endswith(f"… ({len('no job ') + 10_000 - 500} more characters)")
