"""The dashboard over HTTP: HTML to browsers, JSON to API clients, every asset in the package."""

from __future__ import annotations

import json
import re
from importlib.resources import files

import pytest
from flask.testing import FlaskClient

from yardmaster.shared import scheduling
from yardmaster.shared.jobs import JobKind, JobState

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (BROWSER_ACCEPT, "text/html"),
        ("text/html", "text/html"),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        (None, "application/json"),
    ],
)
def test_the_root_answers_browsers_with_the_page_and_api_clients_with_the_index(
    client: FlaskClient, accept: str | None, media_type: str
) -> None:
    response = client.get("/", headers={"Accept": accept} if accept else {})

    assert response.status_code == 200
    assert response.mimetype == media_type
    assert "Accept" in response.headers["Vary"]


def test_the_page_carries_the_job_contract_written_once_in_shared(client: FlaskClient) -> None:
    page = client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)

    found = re.search(r'<script type="application/json" id="contract">(.*?)</script>', page)
    assert found is not None
    contract = json.loads(found.group(1))
    assert contract["states"] == [s.value for s in JobState]
    assert contract["kinds"] == [k.value for k in JobKind]
    assert contract["scheduling"] == {
        "class_limits": list(scheduling.CLASS_LIMITS),
        "max_execution_time": scheduling.MAX_EXECUTION_SECONDS,
    }


def test_every_script_and_style_the_page_loads_is_served_from_the_package(
    client: FlaskClient,
) -> None:
    page = client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
    scripts = files("yardmaster.api").joinpath("static/js")
    imported = {
        f"/static/js/{name}"
        for script in scripts.iterdir()
        for name in re.findall(r'from "\./([\w.]+)"', script.read_text())
    }
    linked = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', page))

    assert "/static/js/main.js" in linked
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page), "nothing from another host"
    for path in sorted(linked | imported):
        response = client.get(path)
        assert response.status_code == 200, path
        expected = "text/css" if path.endswith(".css") else "text/javascript"
        assert response.mimetype == expected, path
        response.close()
