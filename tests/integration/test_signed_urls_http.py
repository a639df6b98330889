"""Signed URLs over HTTP: a caller with a token asks ``POST /signed-urls`` for a short-lived
URL that GETs one path as it, with no header (download links, streams); nothing else is
authorised by it, and a token in the query string is refused on every path."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, update

from support import bearer, eventually
from yardmaster.api import create_app
from yardmaster.api.auth import SIGNING_KEY
from yardmaster.api.live.registry import EXTENSION
from yardmaster.api.resources import Resources
from yardmaster.api.signing import sign
from yardmaster.shared import outputs
from yardmaster.shared.migrate import head_revision, upgrade_to_head
from yardmaster.shared.models import Job
from yardmaster.shared.redis_client import make_redis
from yardmaster.shared.settings import load_settings

ADMIN, C1, C2 = "ym-admin-secret", "ym-c1-secret", "ym-c2-secret"
TOKENS = f"admin={ADMIN},customer-1={C1},customer-2={C2}"
PROBLEM = "application/problem+json"
WERKZEUG_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@dataclass
class Api:
    """The API behind tokens, with customers 1 and 2 and one work job each."""

    app: Flask
    client: FlaskClient
    engine: Engine
    jobs: dict[str, str]  # "1", "2": each customer's job id

    def signed(self, path: str, token: str) -> dict[str, Any]:
        response = self.client.post("/signed-urls", json={"path": path}, headers=bearer(token))
        assert response.status_code == 200, response.text
        return dict(response.json)


@pytest.fixture
def make_api(redis_url: str, database_url: str, engine: Engine, tmp_path: Path) -> Iterator[Any]:
    apps: list[Flask] = []

    def make(**settings: Any) -> Flask:
        upgrade_to_head(engine)
        config = load_settings(
            {}, redis_url=redis_url, database_url=database_url, data_dir=str(tmp_path), **settings
        )
        resources = Resources(make_redis(redis_url, 1.0), engine, head_revision())
        apps.append(create_app(config, resources))
        return apps[-1]

    yield make
    for app in apps:
        if (hub := app.extensions.get(EXTENSION)) is not None:
            hub.close()


@pytest.fixture
def api(make_api: Any, engine: Engine) -> Api:
    app = make_api(api_tokens=TOKENS)
    client = app.test_client()
    site = client.post("/sites", json={"name": "Acme"}, headers=bearer(ADMIN)).json
    for name in ("Ada", "Bob"):
        created = client.post(
            "/customers", json={"site_id": site["id"], "name": name}, headers=bearer(ADMIN)
        )
        assert created.status_code == 201, created.json
    jobs = {}
    for owner, token in (("1", C1), ("2", C2)):
        response = client.post("/work", json={"execution_time": 1}, headers=bearer(token))
        assert response.status_code == 202, response.json
        jobs[owner] = response.json["id"]
    return Api(app, client, engine, jobs)


def refused(response: Any, status: int, why: str = "") -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    assert why in response.json["detail"]
    return dict(response.json)


# --- issuing and using ----------------------------------------------------------------------


def test_a_signed_url_reads_one_path_as_its_signer_without_any_header(api: Api) -> None:
    job = api.jobs["1"]
    answer = api.signed(f"/jobs/{job}", C1)

    assert answer["url"].startswith(f"/jobs/{job}?signature=customer-1.")
    assert 295 <= answer["expires_in"] <= 301  # YARDMASTER_SIGNED_URL_SECONDS: 300
    assert answer["expires_at"].endswith("Z")
    assert api.client.get(answer["url"]).json["id"] == job
    assert api.client.head(answer["url"]).status_code == 200
    whoami = api.signed("/whoami", C1)["url"]
    assert api.client.get(whoami).json == {"access": "tokens", "principal": "customer-1"}


def test_a_result_is_downloaded_with_a_signed_url(api: Api, tmp_path: Path) -> None:
    job = api.jobs["1"]
    folder = outputs.result_dir(tmp_path / "files", job)
    folder.mkdir(parents=True)
    (folder / "result.csv").write_bytes(b"a,b\n1,2\n")
    with api.engine.begin() as connection:
        connection.execute(
            update(Job)
            .where(Job.id == job)
            .values(state="finished", result_path="result.csv", result_name="result.csv")
        )

    response = api.client.get(api.signed(f"/jobs/{job}/result", C1)["url"])

    assert response.status_code == 200, response.text
    assert response.data == b"a,b\n1,2\n"


def test_a_signed_url_authorises_nothing_but_its_own_path_query_and_method(api: Api) -> None:
    url = api.signed(f"/jobs/{api.jobs['1']}", C1)["url"]
    other = api.client.post("/work", json={"execution_time": 1}, headers=bearer(C1)).json["id"]

    refused(api.client.get(url.replace(api.jobs["1"], other)), 401, "does not match")
    refused(api.client.get(url.replace("?", "?include=all&")), 401, "does not match")
    refused(api.client.post(url), 401, "GET requests only")
    listing = api.signed("/jobs?state=queued", C1)["url"]
    assert api.client.get(listing).status_code == 200
    refused(api.client.get(listing.replace("state=queued", "state=running")), 401)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: url.replace("customer-1.", "admin."),
        lambda url: url.replace("customer-1.", "customer-2."),
        lambda url: re.sub(r"\.(\d+)\.", lambda m: f".{int(m.group(1)) + 3600}.", url),
        lambda url: url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB"),
        lambda url: url.split("signature=")[0] + "signature=admin.9999999999.forged",
    ],
)
def test_a_tampered_signature_is_refused_401(api: Api, tamper: Any) -> None:
    url = api.signed(f"/jobs/{api.jobs['1']}", C1)["url"]

    response = refused(api.client.get(tamper(url)), 401)

    assert response["title"] == "Unauthorized"
    assert api.client.get(tamper(url)).headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_an_expired_signed_url_is_refused_and_a_new_one_may_be_asked_for(api: Api) -> None:
    key = api.app.extensions[SIGNING_KEY]
    expired = sign(key, f"/jobs/{api.jobs['1']}", "customer-1", int(time.time()) - 1)

    refused(api.client.get(expired), 401, "expired: ask POST /signed-urls for a new one")
    assert api.client.get(api.signed(f"/jobs/{api.jobs['1']}", C1)["url"]).status_code == 200


def test_a_signed_url_grants_its_signers_rights_and_no_more(api: Api) -> None:
    others = api.signed(f"/jobs/{api.jobs['1']}", C2)["url"]  # customer 2 may GET /jobs/<id>

    refused(api.client.get(others), 404)  # ...but not customer 1's job, signed or not
    refused(api.client.post("/signed-urls", json={"path": "/customers"}, headers=bearer(C2)), 403)
    assert api.client.get(api.signed("/customers", ADMIN)["url"]).status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"path": "/no/such/thing"}, 404),
        ({"path": "/work"}, 404),  # POST only: nothing to GET
        ({"path": "https://evil.example/jobs"}, 400),
        ({"path": "//evil.example/jobs"}, 400),
        ({"path": "/jobs?signature=x"}, 400),
        ({"path": "/jobs#x"}, 400),
        ({"path": 7}, 400),
        ({}, 400),
        (None, 400),
    ],
)
def test_only_paths_to_get_on_this_server_are_signed(api: Api, body: Any, status: int) -> None:
    refused(api.client.post("/signed-urls", json=body, headers=bearer(ADMIN)), status)


def test_a_signed_url_is_asked_for_with_a_bearer_token_never_with_a_signature(
    api: Api,
) -> None:
    signature = api.signed("/jobs", ADMIN)["url"].split("?")[1]

    refused(api.client.post("/signed-urls", json={"path": "/jobs"}), 401)
    refused(api.client.post(f"/signed-urls?{signature}", json={"path": "/jobs"}), 401, "GET")


def test_api_replicas_with_the_same_tokens_accept_each_others_signed_urls(
    api: Api, make_api: Any
) -> None:
    url = api.signed(f"/jobs/{api.jobs['1']}", C1)["url"]
    replica = make_api(api_tokens=TOKENS).test_client()
    rotated = make_api(api_tokens=TOKENS.replace(C2, "ym-c2-next")).test_client()

    assert replica.get(url).json["id"] == api.jobs["1"]
    refused(rotated.get(url), 401, "does not match")  # the tokens changed: so did the key


def test_with_an_explicit_key_a_signed_url_ends_with_its_principals_last_token(
    make_api: Any,
) -> None:
    key = "a-shared-secret-of-every-replica"
    issuer = make_api(api_tokens=TOKENS, url_signing_key=key).test_client()
    url = issuer.post("/signed-urls", json={"path": "/whoami"}, headers=bearer(C1)).json["url"]
    without_c1 = make_api(api_tokens=f"admin={ADMIN}", url_signing_key=key).test_client()

    assert issuer.get(url).json["principal"] == "customer-1"
    refused(without_c1.get(url), 401, "customer-1 holds no token any more")


def test_an_open_api_answers_the_path_itself(make_api: Any) -> None:
    client = make_api().test_client()

    answer = client.post("/signed-urls", json={"path": "/jobs?state=queued"})

    assert answer.json == {"url": "/jobs?state=queued", "expires_at": None, "expires_in": None}


# --- streams --------------------------------------------------------------------------------


def test_a_stream_is_authorised_when_it_connects_and_outlives_its_signed_urls_expiry(
    make_api: Any,
) -> None:
    app = make_api(api_tokens=TOKENS, signed_url_seconds="1")
    client = app.test_client()
    url = client.post("/signed-urls", json={"path": "/jobs/events"}, headers=bearer(ADMIN))
    url = url.json["url"]
    stream = client.get(url, buffered=False)
    assert stream.status_code == 200
    frames = iter(stream.response)
    assert b"connected" in next(frames)

    eventually(lambda: client.get(url).status_code == 401, 10, "the signed URL expired")
    created = client.post("/trigger_report", headers=bearer(ADMIN)).json

    frame = next(frames).decode()
    stream.close()
    assert created["report_id"] in frame


# --- no token in a query string -------------------------------------------------------------


def every_route(app: Flask) -> list[tuple[str, str]]:
    """(method, path) of every rule of ``app``, its variables filled with a sample."""
    routes = []
    for rule in app.url_map.iter_rules():
        path = WERKZEUG_VARIABLE.sub("1", rule.rule).replace("<", "").replace(">", "")
        if rule.endpoint == "static":
            path = "/static/js/api.js"
        for method in sorted((rule.methods or set()) - {"OPTIONS"}):
            routes.append((method, path))
    return routes


@pytest.mark.parametrize("tokens", [TOKENS, ""], ids=["tokens", "open"])
def test_a_token_in_the_query_string_is_refused_on_every_path_and_method(
    make_api: Any, tokens: str
) -> None:
    app = make_api(api_tokens=tokens)
    client = app.test_client()
    routes = [*every_route(app), ("GET", "/no/such/path"), ("OPTIONS", "/jobs")]
    assert len(routes) > 30

    for method, path in routes:
        response = client.open(f"{path}?access_token={ADMIN}", method=method, headers=bearer(ADMIN))
        assert response.status_code == 400, (method, path, response.status_code)
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'
        if method != "HEAD":
            assert response.mimetype == PROBLEM
            assert "not accepted in the query string" in response.json["detail"]
            assert ADMIN not in response.get_data(as_text=True)
