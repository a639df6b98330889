"""The turn queue over HTTP: take a token, redeem it in turn for a picture, watch the queue.

State lives in Redis (:mod:`yardmaster.shared.turnqueue`), so every API process agrees; this
module maps each outcome to its HTTP status and reads the caller's address (behind
``YARDMASTER_TRUSTED_PROXIES`` proxies) for bans and the per-address cap. A take answers the
token's secret claim, to its taker only (``Cache-Control: no-store``); redeem and release need
it back in the body, never in a URL, and it is never logged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from redis.exceptions import RedisError
from werkzeug.http import HTTP_STATUS_CODES

from yardmaster.api import schemas
from yardmaster.api.contentpolicy import html_answer, packaged_page
from yardmaster.api.kitty import kitty_svg
from yardmaster.api.live.channel import Outage, Restored
from yardmaster.api.live.hub import FullError, Hub
from yardmaster.api.live.registry import LiveChannel, add_channel, hub
from yardmaster.api.live.sse import LAGGED, Feed, Stream, frame, refused
from yardmaster.api.openapi import EVENT_STREAM, HTML, SVG, document
from yardmaster.api.problems import problem
from yardmaster.api.resources import resources
from yardmaster.api.shutdown import stopping
from yardmaster.shared.settings import Settings
from yardmaster.shared.turnqueue import keys as queue_keys
from yardmaster.shared.turnqueue.core import (
    Ban,
    Event,
    RedeemOutcome,
    ReleaseOutcome,
    Snapshot,
    TakeOutcome,
    presented_claim,
)
from yardmaster.shared.turnqueue.core import (
    Settings as QueueSettings,
)
from yardmaster.shared.turnqueue.store import TurnQueue, decode_event

blueprint = Blueprint("queue", __name__)

#: HTTP status of each redeem outcome.
REDEEM_STATUS = {
    RedeemOutcome.SUCCESS: 200,
    RedeemOutcome.WRONG_TURN: 409,
    RedeemOutcome.EXPIRED: 410,
    RedeemOutcome.CLAIM_REQUIRED: 403,
    RedeemOutcome.WRONG_CLAIM: 403,
    RedeemOutcome.CHEATER: 403,
    RedeemOutcome.BANNED: 403,
    RedeemOutcome.MALFORMED: 400,
    RedeemOutcome.QUEUE_EMPTY: 404,
}


def _settings() -> Settings:
    value = current_app.config["SETTINGS"]
    assert isinstance(value, Settings)
    return value


def turn_queue() -> TurnQueue:
    """The queue of this API process, over its Redis connection (made once per app: its
    scripts are hashed when they are registered)."""
    queue = current_app.extensions.get("yardmaster.turn_queue")
    if queue is None:
        settings = _settings()
        queue = TurnQueue(
            resources().redis,
            QueueSettings(
                head_seconds=settings.queue_head_seconds,
                view_seconds=settings.queue_view_seconds,
                ban_seconds=settings.queue_ban_seconds,
                tokens_per_address=settings.queue_tokens_per_address,
            ),
        )
        current_app.extensions["yardmaster.turn_queue"] = queue
    assert isinstance(queue, TurnQueue)
    return queue


def client_ip() -> str:
    """The caller's address (the app trusts X-Forwarded-For only from configured proxies)."""
    return request.remote_addr or "unknown"


def _body() -> dict[str, Any]:
    """The form or JSON body of a queue request ({} when neither)."""
    if request.is_json:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}
    return dict(request.form)


def _turn(body: dict[str, Any]) -> tuple[str, str | None]:
    """The token and the claim a redeem or release presents (a ``ticket`` grants nothing)."""
    return str(body.get("token", "")), presented_claim(body.get("claim"))


#: What a caller is told when the claim it presented is not the one needed.
CLAIM_REFUSALS = {
    "claim_required": "send the claim that came with your token",
    "wrong_claim": "this is not the claim of this token",
}


def _refused_claim(outcome: str, ban: Ban | None) -> Response:
    """403 for a missing claim, or for a wrong one (a strike: ``ban`` when it earned one)."""
    if ban is not None:
        return _banned(ban, outcome)
    return problem(403, "Forbidden", CLAIM_REFUSALS[outcome], outcome=outcome)


def _banned(ban: Ban | None, outcome: str = "banned") -> Response:
    response = problem(403, "Forbidden", "you are banned from the queue", outcome=outcome)
    if ban is not None:
        response = problem(
            403,
            "Forbidden",
            f"you are banned from the queue: {ban.reason}",
            outcome=outcome,
            until=ban.until,
        )
        response.headers["Retry-After"] = str(max(1, int(ban.until - time.time())))
    return response


def _queue_down(exc: RedisError) -> Response:
    response = problem(503, "Service Unavailable", f"the queue is unavailable ({exc})")
    response.headers["Retry-After"] = "2"
    return response


@blueprint.before_request
def refuse_banned_callers() -> Response | None:
    """Every queue endpoint answers a banned caller 403. The changes (POST) check the ban
    inside their own atomic script; lifting a ban (DELETE) is the operator's."""
    if request.method != "GET":
        return None
    try:
        ban = turn_queue().ban_of(client_ip(), time.time())
    except RedisError as exc:
        return _queue_down(exc)
    return _banned(ban) if ban is not None else None


@blueprint.post("/queue/tokens")
@document(ok={201: schemas.QueueToken}, errors=[403, 429, 503], tags=["queue"])
def take_token() -> Response:
    """Join the tail: 201 ``{"token", "claim", "ticket", "position", "status": "ok"}``; keep
    the secret ``claim``, redeem and release need it. 429 with ``Retry-After`` while the
    caller's address holds its share of waiting tokens."""
    try:
        result = turn_queue().take(client_ip(), time.time())
    except RedisError as exc:
        return _queue_down(exc)
    if result.outcome is TakeOutcome.BANNED:
        return _banned(result.ban)
    if result.outcome in (TakeOutcome.FULL, TakeOutcome.TOO_MANY):
        return _take_later(result.outcome, result.retry_after or 1)
    response = jsonify(
        token=result.token,
        claim=result.claim,
        ticket=result.ticket,
        position=result.position,
        status="ok",
    )
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"  # the claim is the taker's secret
    return response


def _take_later(outcome: TakeOutcome, retry_after: int) -> Response:
    if outcome is TakeOutcome.FULL:
        response = problem(503, "Service Unavailable", "all 2,600 tokens are in use")
    else:
        share = turn_queue().settings.tokens_per_address
        detail = f"your address already holds {share} waiting tokens"
        response = problem(429, "Too Many Requests", detail, outcome=outcome.value)
    response.headers["Retry-After"] = str(retry_after)
    return response


@blueprint.post("/queue/redeem")
@document(
    json=schemas.TurnBody,
    form=schemas.TurnBody,
    ok={200: schemas.Redeemed},
    errors=[400, 403, 404, 409, 410, 503],
    tags=["queue"],
)
def redeem_token() -> Response:
    """Exchange the head's token for a picture (form fields or JSON ``token`` and ``claim``);
    every other outcome has its own status and an ``outcome`` member. A missing claim is
    403; a wrong one is 403 and a strike against the caller's address (the fifth bans)."""
    token, claim = _turn(_body())
    name = f"{token.strip() or 'none'}-{time.time_ns()}"
    try:  # the picture first: a turn is never consumed for a picture that cannot be made
        kitty_svg(name)
    except Exception as exc:  # any failure of the picture provider
        return problem(503, "Service Unavailable", f"no picture can be made now ({exc})")
    picture = f"/queue/images/{name}.svg"
    try:
        result = turn_queue().redeem(token, client_ip(), time.time(), claim)
    except RedisError as exc:
        return _queue_down(exc)
    outcome = result.outcome
    if outcome is RedeemOutcome.SUCCESS:
        return jsonify(status="success", image_url=picture, view_until=result.view_until)
    if outcome is RedeemOutcome.BANNED:
        return _banned(result.ban)
    if outcome in (RedeemOutcome.CLAIM_REQUIRED, RedeemOutcome.WRONG_CLAIM):
        return _refused_claim(outcome.value, result.ban)
    detail = {
        RedeemOutcome.WRONG_TURN: f"not your turn yet: you are number {result.position}",
        RedeemOutcome.EXPIRED: "your turn with this token has passed: take a new one",
        RedeemOutcome.CHEATER: "this token was never issued: you are banned",
        RedeemOutcome.MALFORMED: "a token is a letter and two digits, like A07",
        RedeemOutcome.QUEUE_EMPTY: "nobody is waiting",
    }[outcome]
    extra: dict[str, Any] = {"outcome": outcome.value}
    if result.position is not None:
        extra["position"] = result.position
    status = REDEEM_STATUS[outcome]
    response = problem(status, HTTP_STATUS_CODES[status], detail, **extra)
    if result.retry_after is not None:
        response.headers["Retry-After"] = str(result.retry_after)
    return response


@blueprint.post("/queue/release")
@document(
    json=schemas.TurnBody,
    form=schemas.TurnBody,
    ok={200: schemas.Released},
    errors=[400, 403, 503],
    tags=["queue"],
)
def release_view() -> Response:
    """The viewer is done with the picture (``token`` and ``claim``): the next head's 60 s
    start now. Claims are checked as by redeem; ``not_viewing`` when the window is over."""
    token, claim = _turn(_body())
    try:
        result = turn_queue().release(token, client_ip(), time.time(), claim)
    except RedisError as exc:
        return _queue_down(exc)
    if result.outcome is ReleaseOutcome.BANNED:
        return _banned(result.ban)
    if result.outcome in (ReleaseOutcome.CLAIM_REQUIRED, ReleaseOutcome.WRONG_CLAIM):
        return _refused_claim(result.outcome.value, result.ban)
    if result.outcome is ReleaseOutcome.MALFORMED:
        return problem(400, "Bad Request", "a token is a letter and two digits, like A07")
    return jsonify(status=result.outcome.value)


@blueprint.get("/queue")
@document(ok={200: schemas.QueueSnapshot}, errors=[403, 503], tags=["queue"])
def queue_snapshot() -> Response:
    """The queue now: waiting tokens head first, the head's deadline, the viewer's window."""
    try:
        snapshot = turn_queue().snapshot(time.time())
    except RedisError as exc:
        return _queue_down(exc)
    return jsonify(asdict(snapshot))


@blueprint.get("/queue/")
@document(ok={200: None}, media={200: HTML}, errors=[403, 503], tags=["queue"])
def queue_page() -> Response:
    """The live queue page (plain HTML and a little JavaScript, shipped in the package)."""
    return html_answer(*packaged_page("queue.html"))  # its inline style allowed by hash


@blueprint.get("/queue/images/<string:name>.svg")
@document(ok={200: None}, media={200: SVG}, errors=[403, 503], tags=["queue"])
def picture(name: str) -> Response:
    """A kitty drawn on the fly (no network needed), different for every name."""
    return Response(kitty_svg(name), mimetype="image/svg+xml")


@blueprint.delete("/queue/bans/<string:ip>")
@document(ok={204: None}, errors=[404, 503], tags=["queue"])
def lift_ban(ip: str) -> Response:
    """Lift a ban (``Authorization: Bearer <admin token>``, checked by ``auth``): 204, or 404."""
    try:
        lifted = turn_queue().lift_ban(ip)
    except RedisError as exc:
        return _queue_down(exc)
    if not lifted:
        return problem(404, "Not Found", f"{ip} is not banned")
    return Response(status=204)


@blueprint.get("/queue/events")
@document(ok={200: None}, media={200: EVENT_STREAM}, errors=[403, 503], tags=["queue"])
def queue_events() -> Response:
    """Server-Sent Events: ``snapshot`` on connect, then every change with its id.

    With ``Last-Event-ID``, the changes since that id instead of the snapshot (while the
    queue still keeps them). ``503`` with ``Retry-After`` when this server holds all the
    streams it may, or as many from the caller's address."""
    queue, live = turn_queue(), hub()
    try:
        release = live.admit(queue_keys.EVENTS_CHANNEL, client_ip())
    except FullError as exc:
        return refused(exc)
    channel = live.channels[queue_keys.EVENTS_CHANNEL]
    position = channel.position  # before the opening picture: no change falls in between
    try:
        opening, last_id = _opening(queue, request.headers.get("Last-Event-ID"))
    except RedisError as exc:
        release()
        return _queue_down(exc)
    except BaseException:
        release()  # never leave the slot counted
        raise
    keepalive = _settings().stream_keepalive
    view = _QueueView(queue, last_id)
    feed = Feed(channel, position, opening, view.render, keepalive, stopping)
    return Stream(feed, release).response()


@dataclass(frozen=True)
class QueueEvent:
    """One change of the queue as every stream of the process sends it."""

    id: int
    text: str


def decode_queue_event(raw: bytes | str) -> QueueEvent:
    """A message of the queue's channel, framed once for all its streams."""
    return _framed(decode_event(raw))


def _framed(event: Event) -> QueueEvent:
    data = json.dumps({k: v for k, v in asdict(event).items() if k != "id"})
    return QueueEvent(event.id, frame(event.type.value, data, event_id=event.id))


def _snapshot_frame(snapshot: Snapshot) -> str:
    return frame("snapshot", json.dumps(asdict(snapshot)), event_id=snapshot.last_event_id)


def _opening(queue: TurnQueue, last_event_id: str | None) -> tuple[list[str], int]:
    """What a new stream sends first, and the id of the last change it reflects: the changes
    after ``last_event_id`` if the queue still has all of them, else a snapshot."""
    if last_event_id and last_event_id.strip().isdigit():
        after = int(last_event_id)
        missed = queue.events_after(after)
        if missed and missed[0].id == after + 1:
            return [_framed(event).text for event in missed], missed[-1].id
        snapshot = queue.snapshot(time.time())
        if not missed and snapshot.last_event_id == after:
            return [], after  # nothing happened meanwhile
    else:
        snapshot = queue.snapshot(time.time())
    return [_snapshot_frame(snapshot)], snapshot.last_event_id


@dataclass
class _QueueView:
    """One stream's place in the queue's changes: the id of the last change it sent."""

    queue: TurnQueue
    last_id: int

    def render(self, item: Any) -> Iterable[str]:
        if isinstance(item, QueueEvent):
            if item.id <= self.last_id:
                return ()  # already in the opening picture
            self.last_id = item.id
            return (item.text,)
        if isinstance(item, Restored):
            snapshot = item.once("queue", lambda: self.queue.snapshot(time.time()))
            return self._fresh(snapshot)
        if item == LAGGED:
            return self._fresh(self.queue.snapshot(time.time()))
        if isinstance(item, Outage):
            return (": Redis unreachable; changes resume when it is back\n\n",)
        return ()

    def _fresh(self, snapshot: Snapshot) -> Iterable[str]:
        self.last_id = snapshot.last_event_id
        return (_snapshot_frame(snapshot),)


def register(app: Flask) -> None:
    """The queue's endpoints, and its changes relayed to live views (whose process also
    expires overdue heads once a second, so that expiries reach watchers while nobody acts)."""
    app.register_blueprint(blueprint)

    def expire_overdue_heads(_hub: Hub) -> Callable[[], object]:
        queue = turn_queue()
        return lambda: queue.apply_expiry(time.time())

    name = queue_keys.EVENTS_CHANNEL
    channel = LiveChannel(name, {name: decode_queue_event}, periodic=expire_overdue_heads)
    add_channel(app, channel)
