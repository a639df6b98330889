"""The turn queue over HTTP: real status codes for every outcome, owned turns (claims,
strikes, the per-address cap), bans by client address, the picture, and the live stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from support import eventually
from yardmaster.api.app import create_app
from yardmaster.api.resources import Resources
from yardmaster.shared.db import make_engine
from yardmaster.shared.migrate import head_revision
from yardmaster.shared.redis_client import make_redis
from yardmaster.shared.settings import load_settings

ADMIN = "let-me-in"


def make_client(redis_url: str, tmp_path: Path, **settings: Any) -> FlaskClient:
    chosen = {"admin_token": ADMIN, **settings}
    config = load_settings({}, redis_url=redis_url, data_dir=str(tmp_path), **chosen)
    engine = make_engine(f"sqlite:///{tmp_path / 'unused.db'}")
    app = create_app(config, Resources(make_redis(redis_url, 1.0), engine, head_revision()))
    return app.test_client()


@pytest.fixture
def client(redis_url: str, tmp_path: Path) -> FlaskClient:
    return make_client(redis_url, tmp_path)


def take(client: FlaskClient, ip: str = "10.0.0.1") -> dict[str, Any]:
    response = client.post("/queue/tokens", environ_base={"REMOTE_ADDR": ip})
    assert response.status_code == 201, response.json
    assert response.json is not None
    return response.json


def redeem(client: FlaskClient, token: str, ip: str = "10.0.0.1", **extra: Any) -> Any:
    return client.post(
        "/queue/redeem", data={"token": token, **extra}, environ_base={"REMOTE_ADDR": ip}
    )


def release(client: FlaskClient, mine: dict[str, Any], ip: str = "10.0.0.1", **extra: Any) -> Any:
    body = {"token": mine["token"], "claim": mine["claim"], **extra}
    return client.post("/queue/release", json=body, environ_base={"REMOTE_ADDR": ip})


def test_tokens_are_issued_in_sequence_with_their_position_and_a_secret_claim(
    client: FlaskClient,
) -> None:
    answer = client.post("/queue/tokens", environ_base={"REMOTE_ADDR": "10.0.0.1"})
    first, second = answer.json, take(client)

    assert answer.status_code == 201
    assert (first["token"], first["position"], first["status"]) == ("A00", 1, "ok")
    assert (second["token"], second["position"]) == ("A01", 2)
    assert second["ticket"] != first["ticket"]
    assert len(first["claim"]) >= 22  # at least 128 random bits, URL-safe base64
    assert first["claim"] != second["claim"]
    assert answer.headers["Cache-Control"] == "no-store"
    assert first["claim"] not in client.get("/queue").get_data(as_text=True)


def test_the_head_gets_a_picture_and_the_next_waits_for_the_window(client: FlaskClient) -> None:
    first, second = take(client), take(client)

    served = redeem(client, "A00", claim=first["claim"])
    assert served.status_code == 200
    assert served.json["status"] == "success"
    picture = client.get(served.json["image_url"])
    assert picture.status_code == 200
    assert picture.mimetype == "image/svg+xml"

    waiting = redeem(client, "A01", claim=second["claim"])
    assert waiting.status_code == 409  # the viewer's window freezes the next head
    assert (waiting.json["outcome"], waiting.json["position"]) == ("wrong_turn", 1)
    assert int(waiting.headers["Retry-After"]) >= 1

    assert release(client, first).json == {"status": "released"}  # JSON works as well as forms
    assert release(client, first).json == {"status": "not_viewing"}
    assert redeem(client, "A01", claim=f"  {second['claim']}\n").status_code == 200


def test_a_token_not_at_the_head_is_told_its_position(client: FlaskClient) -> None:
    take(client)
    mine = take(client)

    response = client.post("/queue/redeem", json={"token": "A01", "claim": mine["claim"]})

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.json["position"] == 2


def test_a_forged_token_bans_its_caller_until_an_admin_lifts_it(client: FlaskClient) -> None:
    take(client)

    forged = redeem(client, "Z99", ip="10.6.6.6")
    assert (forged.status_code, forged.json["outcome"]) == (403, "cheater")
    again = client.post("/queue/tokens", environ_base={"REMOTE_ADDR": "10.6.6.6"})
    assert (again.status_code, again.json["outcome"]) == (403, "banned")
    take(client, ip="10.0.0.2")  # others are not affected
    for path in ("/queue", "/queue/", "/queue/events"):  # banned on every queue endpoint
        assert client.get(path, environ_base={"REMOTE_ADDR": "10.6.6.6"}).status_code == 403

    assert client.delete("/queue/bans/10.6.6.6").status_code == 401
    wrong = {"Authorization": "Bearer guess"}
    assert client.delete("/queue/bans/10.6.6.6", headers=wrong).status_code == 401
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert client.delete("/queue/bans/10.6.6.6", headers=admin).status_code == 204
    assert client.delete("/queue/bans/10.6.6.6", headers=admin).status_code == 404
    take(client, ip="10.6.6.6")


@pytest.mark.parametrize(("token", "status"), [("A0", 400), ("hello", 400), ("A00", 404)])
def test_malformed_tokens_are_400_and_an_empty_queue_is_404(
    client: FlaskClient, token: str, status: int
) -> None:
    assert redeem(client, token, claim="anything").status_code == status


@pytest.mark.parametrize("path", ["/queue/redeem", "/queue/release"])
def test_a_missing_claim_is_403_and_never_counts_toward_a_ban(
    client: FlaskClient, path: str
) -> None:
    mine = take(client)

    for claim in (None, "", "   "):
        body = {"token": "A00", "ticket": mine["ticket"]}  # the public ticket grants nothing
        body |= {} if claim is None else {"claim": claim}
        answer = client.post(path, json=body, environ_base={"REMOTE_ADDR": "10.0.0.66"})
        assert (answer.status_code, answer.json["outcome"]) == (403, "claim_required")
    assert take(client, ip="10.0.0.66")["token"] == "A01"  # not banned


@pytest.mark.parametrize("path", ["/queue/redeem", "/queue/release"])
def test_wrong_claims_are_403_and_the_fifth_bans_the_address(
    client: FlaskClient, path: str
) -> None:
    take(client)
    theirs = take(client, ip="10.0.0.77")  # a valid claim, of another token
    guesses = [theirs["claim"], "guess", "A00", theirs["claim"][::-1]]
    stranger = {"REMOTE_ADDR": "10.0.0.77"}

    for claim in guesses:
        answer = client.post(path, json={"token": "A00", "claim": claim}, environ_base=stranger)
        assert (answer.status_code, answer.json["outcome"]) == (403, "wrong_claim")
    fifth = client.post(path, json={"token": "A00", "claim": "x"}, environ_base=stranger)

    assert (fifth.status_code, fifth.json["outcome"]) == (403, "wrong_claim")
    assert "banned" in fifth.json["detail"]
    assert int(fifth.headers["Retry-After"]) > 3000
    after = client.post("/queue/tokens", environ_base=stranger)
    assert (after.status_code, after.json["outcome"]) == (403, "banned")
    assert client.get("/queue").json["waiting"] == ["A00", "A01"]  # nothing was taken


def test_a_stale_claim_of_a_recycled_token_is_410_and_never_counts(
    redis_url: str, tmp_path: Path
) -> None:
    client = make_client(redis_url, tmp_path, queue_head_seconds=0.5)
    stale = take(client)
    eventually(lambda: client.get("/queue").json["waiting"] == [], 5, "the head expired")
    fresh = take(client, ip="10.0.0.2")
    assert fresh["token"] == stale["token"] == "A00"

    for _ in range(8):
        answer = redeem(client, "A00", claim=stale["claim"])
        assert (answer.status_code, answer.json["outcome"]) == (410, "expired")
    assert take(client)["token"] == "A01"  # not banned


def test_a_stranger_cannot_end_the_viewers_window(client: FlaskClient) -> None:
    mine = take(client)
    assert redeem(client, "A00", claim=mine["claim"]).status_code == 200

    for body in ({"token": "A00"}, {"token": "A00", "claim": "guess"}):
        refused = client.post("/queue/release", data=body, environ_base={"REMOTE_ADDR": "10.0.0.9"})
        assert refused.status_code == 403

    assert client.get("/queue").json["viewer"] == "A00"
    assert release(client, mine).json == {"status": "released"}


def test_an_address_past_its_share_of_waiting_tokens_is_429_with_retry_after(
    redis_url: str, tmp_path: Path
) -> None:
    client = make_client(redis_url, tmp_path, queue_tokens_per_address=3)
    mine = [take(client) for _ in range(3)]

    refused = client.post("/queue/tokens", environ_base={"REMOTE_ADDR": "10.0.0.1"})

    assert (refused.status_code, refused.json["outcome"]) == (429, "too_many")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    take(client, ip="10.0.0.2")  # another address is not held up
    assert redeem(client, "A00", claim=mine[0]["claim"]).status_code == 200
    take(client)  # a served token frees its place


def test_bans_follow_the_client_address_given_by_a_trusted_proxy(
    redis_url: str, tmp_path: Path
) -> None:
    client = make_client(redis_url, tmp_path, trusted_proxies=1)
    client.post("/queue/tokens", headers={"X-Forwarded-For": "203.0.113.1"})
    behind = {"X-Forwarded-For": "203.0.113.7"}

    assert client.post("/queue/redeem", data={"token": "Q42"}, headers=behind).status_code == 403

    assert client.post("/queue/tokens", headers=behind).status_code == 403
    other = {"X-Forwarded-For": "203.0.113.8"}  # same proxy, another client
    assert client.post("/queue/tokens", headers=other).status_code == 201


def test_admin_requests_are_refused_when_no_admin_token_is_configured(
    redis_url: str, tmp_path: Path
) -> None:
    client = make_client(redis_url, tmp_path, admin_token="")

    response = client.delete("/queue/bans/10.0.0.1", headers={"Authorization": "Bearer "})

    assert response.status_code == 403


def test_the_live_view_starts_with_a_snapshot_then_streams_each_change(
    client: FlaskClient,
) -> None:
    take(client)
    stream = client.get("/queue/events", buffered=False)
    assert stream.mimetype == "text/event-stream"
    frames = iter(stream.response)

    snapshot = next(frames).decode()
    take(client)
    change = next(frames).decode()

    assert "event: snapshot" in snapshot
    assert '"waiting": ["A00"]' in snapshot
    assert "event: append" in change
    assert '"token": "A01"' in change
    stream.close()


def test_the_snapshot_lists_the_waiting_tokens_head_first(client: FlaskClient) -> None:
    take(client)
    take(client)

    body = client.get("/queue").json

    assert body["waiting"] == ["A00", "A01"]
    assert body["head_deadline"] is not None


def test_the_queue_page_is_served_with_its_live_view_and_buttons(client: FlaskClient) -> None:
    page = client.get("/queue/")

    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<script type="module" src="/static/js/queue-page.js"></script>' in html
    for script, follows in [("queue-page", "followQueue(queue, {"), ("queue", '"/queue/events"')]:
        served = client.get(f"/static/js/{script}.js")  # the page's script follows the stream
        assert follows in served.get_data(as_text=True)
        served.close()
    assert 'id="take"' in html
    assert "http" not in html.replace("http-equiv", "")  # nothing from the internet


def test_when_all_2600_tokens_are_in_use_the_next_caller_is_told_when_to_retry(
    client: FlaskClient,
) -> None:
    for n in range(2600):
        take(client, ip=f"10.1.{n // 256}.{n % 256}")

    response = client.post("/queue/tokens")

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
