"""The turn queue in real Redis: the original's cases with real outcomes, an injected clock,
owned turns (claims, strikes, the per-address cap), the same answers as the pure reference
model, and 200 clients at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yardmaster.shared.turnqueue import core, keys
from yardmaster.shared.turnqueue.core import (
    CAPACITY,
    Ban,
    Event,
    EventType,
    LeaveOutcome,
    QueueState,
    RedeemOutcome,
    ReleaseOutcome,
    Settings,
    Snapshot,
    TakeOutcome,
    claim_hash,
    token_at,
)
from yardmaster.shared.turnqueue.store import TurnQueue, decode_event

T0 = 1_700_000_000.0
IP = "203.0.113.7"
OTHER_IP = "198.51.100.9"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def queue(client: redis.Redis) -> TurnQueue:
    return TurnQueue(client)


def take_tokens(queue: TurnQueue, count: int, now: float = T0) -> dict[str, str]:
    """Take ``count`` tokens, each from its own address; token -> claim, in the order taken."""
    taken = {}
    for n in range(count):
        result = queue.take(f"10.1.{n // 256}.{n % 256}", now)
        assert result.outcome is TakeOutcome.OK, result
        assert result.token is not None
        assert result.claim is not None
        taken[result.token] = result.claim
    return taken


def event_kinds(queue: TurnQueue) -> list[tuple[str, str]]:
    return [(event.type.value, event.token) for event in queue.events_after()]


# The original's behavioural cases


def test_tokens_are_issued_a00_a01_through_b00_at_the_tail(queue: TurnQueue) -> None:
    results = [queue.take(f"10.2.0.{n}", T0) for n in range(101)]

    assert [r.token for r in results[:3]] == ["A00", "A01", "A02"]
    assert results[10].token == "A10"
    assert results[100].token == "B00"
    assert [r.position for r in results] == list(range(1, 102))
    assert [r.ticket for r in results] == list(range(1, 102))


def test_a_redeemed_string_is_issued_again_before_new_ones(queue: TurnQueue) -> None:
    mine = take_tokens(queue, 6)
    assert queue.redeem("A00", IP, T0, mine["A00"]).outcome is RedeemOutcome.SUCCESS

    assert list(take_tokens(queue, 2)) == ["A00", "A06"]


def test_the_head_is_served_and_its_window_opens(queue: TurnQueue) -> None:
    mine = take_tokens(queue, 2)

    result = queue.redeem("A00", IP, T0 + 5, mine["A00"])

    assert result.outcome is RedeemOutcome.SUCCESS
    assert (result.token, result.ticket, result.view_until) == ("A00", 1, T0 + 65)
    assert queue.snapshot(T0 + 6) == Snapshot(("A01",), T0 + 125, "A00", T0 + 65, 3)


def test_two_consecutive_heads_are_served_in_a_row(queue: TurnQueue) -> None:
    mine = take_tokens(queue, 2)

    first = queue.redeem("A00", IP, T0, mine["A00"])
    released = queue.release("A00", IP, T0 + 1, mine["A00"])
    second = queue.redeem("A01", IP, T0 + 2, mine["A01"])

    assert (first.outcome, released.outcome, second.outcome) == (
        RedeemOutcome.SUCCESS,
        ReleaseOutcome.RELEASED,
        RedeemOutcome.SUCCESS,
    )
    assert event_kinds(queue) == [
        ("append", "A00"),
        ("append", "A01"),
        ("serve", "A00"),
        ("release", "A00"),
        ("serve", "A01"),
    ]


def test_a_token_behind_the_head_gets_wrong_turn_with_its_position(queue: TurnQueue) -> None:
    mine = take_tokens(queue, 3)

    result = queue.redeem("A02", IP, T0 + 15, mine["A02"])

    assert result.outcome is RedeemOutcome.WRONG_TURN
    assert (result.token, result.position, result.retry_after) == ("A02", 3, 45)
    assert queue.snapshot(T0 + 15).waiting == ("A00", "A01", "A02")


def test_a_cheater_is_banned_and_then_refused_everything(
    queue: TurnQueue, client: redis.Redis
) -> None:
    take_tokens(queue, 1)

    cheat = queue.redeem("Q42", IP, T0)

    ban = Ban("cheater: presented Q42, never issued", T0, T0 + 3600)
    assert cheat.outcome is RedeemOutcome.CHEATER
    assert cheat.ban == ban
    assert queue.take(IP, T0 + 1).outcome is TakeOutcome.BANNED
    assert queue.redeem("A00", IP, T0 + 1, "any").outcome is RedeemOutcome.BANNED
    assert queue.redeem("not a token", IP, T0 + 1).outcome is RedeemOutcome.BANNED
    assert queue.release("A00", IP, T0 + 1, "any").outcome is ReleaseOutcome.BANNED
    assert queue.leave("A00", IP, T0 + 1, "any").outcome is LeaveOutcome.BANNED
    assert queue.take(OTHER_IP, T0 + 1).outcome is TakeOutcome.OK
    assert queue.ban_of(IP, T0 + 1) == ban
    assert 3590 < client.ttl(keys.ban_key(IP)) <= 3600


def test_a_ban_ends_after_its_duration_or_when_lifted(client: redis.Redis) -> None:
    queue = TurnQueue(client, Settings(ban_seconds=300))
    take_tokens(queue, 1)
    assert queue.redeem("Q42", IP, T0).outcome is RedeemOutcome.CHEATER

    assert queue.take(IP, T0 + 299).outcome is TakeOutcome.BANNED
    assert queue.take(IP, T0 + 300).outcome is TakeOutcome.OK
    assert queue.lift_ban(IP)
    assert queue.take(IP, T0 + 1).outcome is TakeOutcome.OK
    assert not queue.lift_ban(IP)


def test_an_unknown_token_on_an_empty_queue_is_queue_empty_without_a_ban(
    queue: TurnQueue,
) -> None:
    assert queue.redeem("A00", IP, T0).outcome is RedeemOutcome.QUEUE_EMPTY
    assert queue.ban_of(IP, T0) is None


def test_a_malformed_token_is_refused_without_touching_the_queue(queue: TurnQueue) -> None:
    take_tokens(queue, 1)

    assert queue.redeem("a00", IP, T0).outcome is RedeemOutcome.MALFORMED
    assert queue.release("A0", IP, T0).outcome is ReleaseOutcome.MALFORMED
    assert queue.leave("A000", IP, T0).outcome is LeaveOutcome.MALFORMED
    assert queue.ban_of(IP, T0) is None
    assert event_kinds(queue) == [("append", "A00")]


# Owned turns: claims, strikes, the per-address cap


def test_a_turn_is_redeemed_only_with_its_own_claim(queue: TurnQueue) -> None:
    mine = take_tokens(queue, 2)

    assert queue.redeem("A00", OTHER_IP, T0).outcome is RedeemOutcome.CLAIM_REQUIRED
    assert queue.redeem("A00", OTHER_IP, T0, "guess").outcome is RedeemOutcome.WRONG_CLAIM
    other = queue.redeem("A00", OTHER_IP, T0, mine["A01"])  # a valid claim, of another token
    assert other.outcome is RedeemOutcome.WRONG_CLAIM
    assert queue.snapshot(T0).waiting == ("A00", "A01")
    assert queue.redeem("A00", IP, T0, mine["A00"]).outcome is RedeemOutcome.SUCCESS


def test_claims_are_256_random_bits_kept_only_as_a_sha256(
    queue: TurnQueue, client: redis.Redis
) -> None:
    first, second = queue.take(IP, T0), queue.take(IP, T0)
    assert first.claim is not None
    assert second.claim is not None
    assert first.claim != second.claim
    assert len(first.claim) == 43  # URL-safe base64 of 32 random bytes

    stored = dump(client)
    assert first.claim not in stored
    assert claim_hash(first.claim) in stored
    assert first.claim not in repr(first)  # never in a log line made from the result


def dump(client: redis.Redis) -> str:
    """Every key and value of the queue's Redis, as one text."""
    parts = []
    for key in client.scan_iter(keys.PREFIX + "*"):
        kind = client.type(key)
        value: Any = {
            b"string": client.get,
            b"hash": client.hgetall,
            b"zset": lambda k: client.zrange(k, 0, -1, withscores=True),
            b"stream": client.xrange,
        }[kind](key)
        parts.append(f"{key!r} {value!r}")
    return "\n".join(parts)


def test_the_fifth_wrong_claim_bans_the_address_and_missing_claims_never_count(
    queue: TurnQueue,
) -> None:
    take_tokens(queue, 1)
    for _ in range(10):
        assert queue.redeem("A00", IP, T0).outcome is RedeemOutcome.CLAIM_REQUIRED
    for n in range(4):
        wrong = queue.redeem("A00", IP, T0 + n, f"guess-{n}")
        assert (wrong.outcome, wrong.ban) == (RedeemOutcome.WRONG_CLAIM, None)

    fifth = queue.release("A00", IP, T0 + 4, "guess-4")  # every operation's guesses count

    ban = Ban("guessing: 5 wrong claims for tokens it was not given", T0 + 4, T0 + 3604)
    assert (fifth.outcome, fifth.ban) == (ReleaseOutcome.WRONG_CLAIM, ban)
    assert queue.ban_of(IP, T0 + 5) == ban
    assert queue.take(IP, T0 + 5).outcome is TakeOutcome.BANNED
    assert queue.take(OTHER_IP, T0 + 5).outcome is TakeOutcome.OK


def test_strikes_are_forgotten_ban_seconds_after_the_last_and_when_a_ban_is_lifted(
    client: redis.Redis,
) -> None:
    queue = TurnQueue(client, Settings(ban_seconds=300, strikes_to_ban=2))
    take_tokens(queue, 1)

    assert queue.leave("A00", IP, T0, "guess").ban is None
    assert queue.leave("A00", IP, T0 + 300, "guess").ban is None  # the first was forgotten
    assert queue.leave("A00", IP, T0 + 301, "guess").ban is not None
    assert queue.lift_ban(IP)
    assert queue.leave("A00", IP, T0 + 302, "guess").ban is None  # counting starts afresh


def test_a_stranger_cannot_end_the_viewers_window(queue: TurnQueue) -> None:
    mine = take_tokens(queue, 2)
    queue.redeem("A00", IP, T0, mine["A00"])

    assert queue.release("A00", OTHER_IP, T0 + 1).outcome is ReleaseOutcome.CLAIM_REQUIRED
    assert queue.release("A00", OTHER_IP, T0 + 1, mine["A01"]).outcome is (
        ReleaseOutcome.WRONG_CLAIM
    )
    assert queue.snapshot(T0 + 1).viewer == "A00"
    assert queue.release("A00", IP, T0 + 2, mine["A00"]).outcome is ReleaseOutcome.RELEASED


def test_an_address_holds_at_most_its_share_of_waiting_tokens(client: redis.Redis) -> None:
    queue = TurnQueue(client, Settings(tokens_per_address=2))
    first, _ = queue.take(IP, T0), queue.take(IP, T0)

    refused = queue.take(IP, T0 + 15)

    assert (refused.outcome, refused.retry_after) == (TakeOutcome.TOO_MANY, 45)
    assert queue.take(OTHER_IP, T0 + 15).outcome is TakeOutcome.OK  # others are not held up
    assert queue.redeem("A00", IP, T0 + 16, first.claim).outcome is RedeemOutcome.SUCCESS
    assert queue.take(IP, T0 + 17).outcome is TakeOutcome.OK  # a served token frees its place
    assert queue.take(IP, T0 + 17).outcome is TakeOutcome.TOO_MANY
    assert queue.snapshot(T0 + 16 + 60 + 60 + 60).waiting == ("A00",)  # two expired...
    assert queue.take(IP, T0 + 196).outcome is TakeOutcome.OK  # ...and freed their places


# Deadlines with an injected clock


def test_abandoned_heads_expire_in_a_chain_each_at_its_own_instant(queue: TurnQueue) -> None:
    mine = take_tokens(queue, 3)

    expired = queue.apply_expiry(T0 + 150)

    assert [(e.type, e.token, e.at, e.head_deadline) for e in expired] == [
        (EventType.EXPIRE, "A00", T0 + 60, T0 + 120),
        (EventType.EXPIRE, "A01", T0 + 120, T0 + 180),
    ]
    assert queue.snapshot(T0 + 150).waiting == ("A02",)
    assert queue.redeem("A00", IP, T0 + 151, mine["A00"]).outcome is RedeemOutcome.EXPIRED
    assert queue.redeem("A02", IP, T0 + 179.9, mine["A02"]).outcome is RedeemOutcome.SUCCESS
    assert queue.ban_of(IP, T0 + 180) is None


def test_a_long_idle_queue_empties_at_once_when_next_touched(queue: TurnQueue) -> None:
    take_tokens(queue, 3)

    assert queue.snapshot(T0 + 86400).waiting == ()
    assert [e.at for e in queue.events_after() if e.type is EventType.EXPIRE] == [
        T0 + 60,
        T0 + 120,
        T0 + 180,
    ]


def test_the_next_head_clock_is_frozen_while_the_viewer_looks(queue: TurnQueue) -> None:
    mine = take_tokens(queue, 2)
    queue.redeem("A00", IP, T0 + 10, mine["A00"])  # window until T0 + 70

    waiting_head = queue.redeem("A01", IP, T0 + 69.5, mine["A01"])

    assert waiting_head.outcome is RedeemOutcome.WRONG_TURN
    assert (waiting_head.position, waiting_head.retry_after) == (1, 1)
    assert queue.snapshot(T0 + 129.9).waiting == ("A01",)
    assert queue.snapshot(T0 + 130).waiting == ()


def test_a_release_ends_the_window_and_starts_the_next_head_clock(queue: TurnQueue) -> None:
    mine = take_tokens(queue, 2)
    queue.redeem("A00", IP, T0 + 10, mine["A00"])

    assert queue.release("A00", IP, T0 + 25, mine["A00"]).outcome is ReleaseOutcome.RELEASED
    assert queue.release("A00", IP, T0 + 26, mine["A00"]).outcome is ReleaseOutcome.NOT_VIEWING
    assert queue.snapshot(T0 + 26) == Snapshot(("A01",), T0 + 85, None, None, 4)
    assert queue.snapshot(T0 + 85).waiting == ()


def test_a_vanished_viewer_holds_nobody_up(queue: TurnQueue) -> None:
    mine = take_tokens(queue, 2)
    queue.redeem("A00", IP, T0, mine["A00"])  # the browser closes: no release ever comes

    assert queue.snapshot(T0 + 60) == Snapshot(("A01",), T0 + 120, None, None, 3)
    assert queue.redeem("A01", IP, T0 + 60, mine["A01"]).outcome is RedeemOutcome.SUCCESS


def test_when_the_head_leaves_the_next_head_clock_starts_then(queue: TurnQueue) -> None:
    mine = take_tokens(queue, 2)

    assert queue.leave("A00", IP, T0 + 45, mine["A00"]).outcome is LeaveOutcome.LEFT
    assert queue.leave("A00", IP, T0 + 46, mine["A00"]).outcome is LeaveOutcome.NOT_WAITING
    assert queue.snapshot(T0 + 46) == Snapshot(("A01",), T0 + 105, None, None, 3)


def test_a_token_that_left_is_remembered_for_remember_seconds_then_a_cheat(
    client: redis.Redis,
) -> None:
    queue = TurnQueue(client, Settings(head_seconds=3600, remember_seconds=600))
    mine = take_tokens(queue, 2)
    queue.leave("A01", IP, T0, mine["A01"])

    assert queue.redeem("A01", IP, T0 + 600, mine["A01"]).outcome is RedeemOutcome.EXPIRED
    assert queue.redeem("A01", IP, T0 + 600.5, mine["A01"]).outcome is RedeemOutcome.CHEATER


def test_a_stale_holder_of_a_recycled_string_is_expired_and_not_punished(
    queue: TurnQueue,
) -> None:
    stale = queue.take(IP, T0)
    queue.apply_expiry(T0 + 60)
    fresh = queue.take(OTHER_IP, T0 + 61)
    assert (stale.token, fresh.token) == ("A00", "A00")

    for _ in range(10):  # never a strike: the claim is the caller's own, of an earlier issue
        assert queue.redeem("A00", IP, T0 + 62, stale.claim).outcome is RedeemOutcome.EXPIRED
        assert queue.release("A00", IP, T0 + 62, stale.claim).outcome is (
            ReleaseOutcome.NOT_VIEWING
        )
        assert queue.leave("A00", IP, T0 + 62, stale.claim).outcome is LeaveOutcome.NOT_WAITING
    assert queue.redeem("A00", OTHER_IP, T0 + 62, fresh.claim).outcome is (RedeemOutcome.SUCCESS)
    assert queue.ban_of(IP, T0 + 62) is None


def test_all_2600_live_tokens_make_take_full_until_the_head_expires(
    client: redis.Redis,
) -> None:
    queue = TurnQueue(client, Settings(tokens_per_address=CAPACITY))
    tokens = [queue.take(IP, T0).token for _ in range(CAPACITY)]
    assert tokens == [token_at(i) for i in range(CAPACITY)]

    full = queue.take(OTHER_IP, T0 + 20)
    after_expiry = queue.take(OTHER_IP, T0 + 60)

    assert full.outcome is TakeOutcome.FULL
    assert full.retry_after == 40
    assert (after_expiry.token, after_expiry.position) == ("A00", CAPACITY)


# Events


def test_every_change_is_streamed_and_published_with_increasing_ids(
    queue: TurnQueue, client: redis.Redis
) -> None:
    pubsub = client.pubsub()
    pubsub.subscribe(keys.EVENTS_CHANNEL)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"

    mine = take_tokens(queue, 2)
    queue.redeem("A00", IP, T0 + 1, mine["A00"])
    queue.release("A00", IP, T0 + 2, mine["A00"])
    queue.leave("A01", IP, T0 + 3, mine["A01"])

    published = [decode_event(m["data"]) for m in messages(pubsub, 5)]
    streamed = queue.events_after()
    pubsub.close()
    assert published == streamed
    assert [e.id for e in streamed] == [1, 2, 3, 4, 5]
    assert streamed == [
        Event(EventType.APPEND, "A00", T0, 1, head_deadline=T0 + 60, id=1),
        Event(EventType.APPEND, "A01", T0, 2, head_deadline=T0 + 60, id=2),
        Event(EventType.SERVE, "A00", T0 + 1, until=T0 + 61, head_deadline=T0 + 121, id=3),
        Event(EventType.RELEASE, "A00", T0 + 2, head_deadline=T0 + 62, id=4),
        Event(EventType.REMOVE, "A01", T0 + 3, 1, id=5),
    ]
    assert queue.events_after(3) == streamed[3:]


def messages(pubsub: Any, count: int) -> list[dict[str, Any]]:
    """The next ``count`` published messages, waiting at most 5 s in all."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5
    while len(found) < count and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if message is not None and message["type"] == "message":
            found.append(message)
    assert len(found) == count, found
    return found


def test_the_event_stream_is_capped(client: redis.Redis) -> None:
    queue = TurnQueue(client, Settings(event_history=10))

    take_tokens(queue, 500)

    assert 10 <= client.xlen(keys.EVENTS) < 250
    assert queue.events_after()[-1].id == 500


def test_two_processes_share_one_queue(redis_url: str) -> None:
    one = TurnQueue(redis.Redis.from_url(redis_url))
    two = TurnQueue(redis.Redis.from_url(redis_url))

    first = one.take(IP, T0)
    second = two.take(OTHER_IP, T0)

    assert (first.token, second.token) == ("A00", "A01")
    assert two.redeem("A00", IP, T0 + 1, first.claim).outcome is RedeemOutcome.SUCCESS
    assert one.snapshot(T0 + 2) == two.snapshot(T0 + 2)
    one.client.close()
    two.client.close()


# The store answers exactly as the pure reference model


@dataclass(frozen=True)
class Op:
    """One step of a random session: ``wait`` moves the clock; ``serve_head``,
    ``leave_waiting`` and ``release_viewer`` present a token and claim the model knows to be
    live (so successes happen often); the others use ``token`` as drawn and ``claim``: None
    (no claim), -1 (a guess), else the claim of the ``claim``-th take so far (modulo)."""

    kind: str
    ip: str
    token: str
    claim: int | None
    seconds: float


KINDS = ["take"] * 4 + ["serve_head"] * 2 + ["redeem"] * 2 + ["wait"] * 3
KINDS += ["release_viewer", "release", "leave_waiting", "leave", "expire", "lift", "snapshot"]
OPS = st.builds(
    Op,
    kind=st.sampled_from(KINDS),
    ip=st.sampled_from([IP, OTHER_IP]),
    token=st.sampled_from(["A00", "A01", "A02", "A03", "A04", "A05", "B00", "Z99", "a1"]),
    claim=st.none() | st.just(-1) | st.integers(0, 12),
    seconds=st.sampled_from([0.0, 0.5, 10.0, 29.5, 59.99, 60.0, 61.0, 120.0, 1000.0]),
)
MODEL_SETTINGS = Settings(
    ban_seconds=900, remember_seconds=1500, tokens_per_address=3, strikes_to_ban=3
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(OPS, min_size=5, max_size=60))
def test_the_store_answers_every_sequence_like_the_reference_model(
    client: redis.Redis, ops: list[Op]
) -> None:
    client.flushall()
    store = TurnQueue(client, MODEL_SETTINGS)
    state, now = QueueState(), T0
    claims: list[str] = []  # of every take, in order
    expected: list[Event] = []
    for op in ops:
        if op.kind == "wait":
            now += op.seconds
            continue
        step, answer = apply_to_both(op, state, store, now, claims)
        assert answer == step.result, op
        state = step.state
        expected.extend(step.events)

    final = core.advance(state, now, MODEL_SETTINGS)
    assert replace(store.snapshot(now), last_event_id=0) == final.state.snapshot(MODEL_SETTINGS)
    expected.extend(final.events)
    assert [replace(e, id=0) for e in store.events_after()] == expected
    assert [e.id for e in store.events_after()] == list(range(1, len(expected) + 1))


def presented(op: Op, state: QueueState, claims: list[str]) -> tuple[str, str | None]:
    """The token and claim ``op`` presents."""
    by_hash = {claim_hash(claim): claim for claim in claims}
    if op.kind == "serve_head" and state.waiting:
        return state.waiting[0].token, by_hash[state.waiting[0].claim]
    if op.kind == "leave_waiting" and state.waiting:
        holder = state.waiting[(op.claim or 0) % len(state.waiting)]
        return holder.token, by_hash[holder.claim]
    if op.kind == "release_viewer" and state.viewer is not None:
        return state.viewer.token, by_hash[state.viewer.claim]
    if op.claim is None:
        return op.token, None
    if op.claim < 0 or not claims:
        return op.token, "a guess"
    return op.token, claims[op.claim % len(claims)]


def apply_to_both(
    op: Op, state: QueueState, store: TurnQueue, now: float, claims: list[str]
) -> tuple[core.Step[Any], Any]:
    """Run ``op`` on the model and on the store; the model's step and the store's answer."""
    s = MODEL_SETTINGS
    token, claim = presented(op, state, claims)
    if op.kind == "take":
        claims.append(f"claim-{len(claims)}")
        return core.take(state, op.ip, claims[-1], now, s), store.take(op.ip, now, claims[-1])
    if op.kind in ("redeem", "serve_head"):
        return core.redeem(state, op.ip, token, claim, now, s), store.redeem(
            token, op.ip, now, claim
        )
    if op.kind in ("release", "release_viewer"):
        return core.release(state, op.ip, token, claim, now, s), store.release(
            token, op.ip, now, claim
        )
    if op.kind in ("leave", "leave_waiting"):
        return core.leave(state, op.ip, token, claim, now, s), store.leave(token, op.ip, now, claim)
    if op.kind == "lift":
        return core.lift_ban(state, op.ip), store.lift_ban(op.ip)
    moved = core.advance(state, now, s)
    if op.kind == "expire":
        return moved, tuple(replace(e, id=0) for e in store.apply_expiry(now))
    return core.Step(moved.state, moved.state.snapshot(s), moved.events), replace(
        store.snapshot(now), last_event_id=0
    )


# 200 clients at once


CLIENTS = 200
#: After the first round, where everyone asks at once, a client asks again once its take
#: position says it may be among the first few; so several still race in every round.
CONTENDERS = 6


def test_200_clients_get_distinct_tokens_and_are_served_strictly_in_turn(
    redis_url: str,
) -> None:
    queue = TurnQueue(redis.Redis.from_url(redis_url, max_connections=CLIENTS))
    barrier = threading.Barrier(CLIENTS, timeout=60)
    viewing, most_viewing, lock = [0], [0], threading.Lock()

    def redeem(mine: core.TakeResult, ip: str) -> bool:
        """Present the token; True when served (the viewers are counted until released)."""
        assert mine.token is not None
        answer = queue.redeem(mine.token, ip, T0, mine.claim)
        if answer.outcome is not RedeemOutcome.SUCCESS:
            assert answer.outcome is RedeemOutcome.WRONG_TURN, answer
            return False
        with lock:
            viewing[0] += 1
            most_viewing[0] = max(most_viewing[0], viewing[0])
        return True

    def release(mine: core.TakeResult, ip: str) -> None:
        with lock:
            viewing[0] -= 1
        assert mine.token is not None
        assert queue.release(mine.token, ip, T0, mine.claim).outcome is ReleaseOutcome.RELEASED

    def client(number: int) -> tuple[core.TakeResult, int]:
        """Take a token with everyone at once, then redeem round by round, racing the others,
        until served; give the window back once the round is over. Returns the take and the
        round in which it was served."""
        ip = f"10.0.{number // 256}.{number % 256}"
        try:
            barrier.wait()
            mine = queue.take(ip, T0)
            served_in = -1
            for round_ in range(CLIENTS):
                barrier.wait()
                may_be_near = round_ == 0 or (mine.position or 0) - round_ <= CONTENDERS
                if served_in < 0 and may_be_near and redeem(mine, ip):
                    served_in = round_
                barrier.wait()
                if served_in == round_:
                    release(mine, ip)
            return mine, served_in
        except BaseException:
            barrier.abort()
            raise

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(client, n) for n in range(CLIENTS)]
    raise_first_failure(futures)
    outcomes = sorted((f.result() for f in futures), key=lambda o: o[0].ticket or 0)
    assert sorted(t.token or "" for t, _ in outcomes) == [token_at(i) for i in range(CLIENTS)]
    assert [t.position for t, _ in outcomes] == list(range(1, CLIENTS + 1))
    assert [served_in for _, served_in in outcomes] == list(range(CLIENTS))
    assert most_viewing[0] == 1
    assert_served_one_at_a_time_in_order_of_issue(queue)
    queue.client.close()


def raise_first_failure(futures: list[Future[Any]]) -> None:
    """Re-raise what went wrong first in a client (the others then saw a broken barrier)."""
    errors = [f.exception() for f in futures if f.exception() is not None]
    for error in errors:
        if not isinstance(error, threading.BrokenBarrierError):
            raise error  # type: ignore[misc]
    if errors:
        raise errors[0]  # type: ignore[misc]


def assert_served_one_at_a_time_in_order_of_issue(queue: TurnQueue) -> None:
    events = queue.events_after()
    appended = [e.token for e in events if e.type is EventType.APPEND]
    after_appends = [(e.type, e.token) for e in events[CLIENTS:]]
    assert len(appended) == CLIENTS
    assert after_appends == [
        (kind, token) for token in appended for kind in (EventType.SERVE, EventType.RELEASE)
    ]
