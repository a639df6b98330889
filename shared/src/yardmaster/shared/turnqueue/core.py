"""The turn queue's rules, pure: tokens, the order of issue, deadlines, outcomes and events.

Values in, values out; ``now`` (epoch seconds) is always an argument, never read from a clock,
and a claim is always an argument, never drawn here (the store draws it).
:class:`QueueState` with :func:`take`, :func:`redeem`, :func:`release`, :func:`leave` and
:func:`advance` is the complete reference model of the queue. :mod:`.store` enforces the same
rules atomically in Redis, one Lua script per operation; the integration tests drive both with
the same operations and require the same answers and the same events.

Deadlines need no timers. The head's clock starts at ``head_since`` and the head expires at
``head_since + head_seconds``; the next head's clock starts at that very instant, so any
elapsed time is applied lazily, expiring several heads at once if need be (:func:`advance`).
A successful redeem opens the viewer's window and moves ``head_since`` to the window's end,
which freezes the next head's clock; a release moves it back to the release instant, and a
window nobody releases simply passes (a vanished viewer holds nobody up).

Turns are owned. Each issue of a token comes with a secret *claim* (at least 128 random bits)
shown only to its taker; the state keeps only its SHA-256 (:func:`claim_hash`). Redeem, release
and leave need the token *and* its claim: a missing claim is refused; a claim of an earlier
issue of the same string (still remembered) is the caller's own, so it is told its turn passed;
any other claim is a guess and a strike against the caller's address, and
``Settings.strikes_to_ban`` strikes ban it (:func:`claimed`, :func:`strike`). The public token
string and ticket grant nothing.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Generic, TypeVar

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PER_LETTER = 100
#: Distinct token strings, A00 to Z99.
CAPACITY = len(LETTERS) * PER_LETTER
_TOKEN = re.compile(r"[A-Z][0-9]{2}")
R = TypeVar("R")


class MalformedTokenError(ValueError):
    """The text is not a token (one capital letter A-Z, then two digits)."""


def parse_token(text: str) -> str:
    """The token written in ``text`` (surrounding whitespace ignored), else MalformedTokenError."""
    token = text.strip()
    if not _TOKEN.fullmatch(token):
        raise MalformedTokenError(f"not a token (A00 to Z99): {text[:20]!r}")
    return token


def token_index(token: str) -> int:
    """The place of ``token`` in the order of issue: A00 is 0, A99 99, B00 100, Z99 2599."""
    return LETTERS.index(token[0]) * PER_LETTER + int(token[1:])


def token_at(index: int) -> str:
    """The token at ``index`` in the order of issue (the inverse of :func:`token_index`)."""
    if not 0 <= index < CAPACITY:
        raise ValueError(f"token index out of range 0..{CAPACITY - 1}: {index}")
    letter, number = divmod(index, PER_LETTER)
    return f"{LETTERS[letter]}{number:02d}"


def smallest_free(live: Iterable[str]) -> str | None:
    """The string to issue next: the smallest one not waiting, or None when all 2,600 are.

    This is the original's order: A00, A01, ..., A99, B00, ..., and a string that left the
    queue comes back before any string never issued yet, smallest first.
    """
    taken = set(live)
    return next((token for token in ALL_TOKENS if token not in taken), None)


#: Every token, in the order of issue.
ALL_TOKENS = tuple(token_at(i) for i in range(CAPACITY))


def claim_hash(claim: str) -> str:
    """What the server keeps of a claim: its SHA-256, in hex (a claim is never stored)."""
    return hashlib.sha256(claim.encode()).hexdigest()


def presented_claim(text: object) -> str | None:
    """The claim a caller sent (surrounding whitespace ignored), or None when it sent none."""
    if not isinstance(text, str):
        return None
    claim = text.strip()
    return claim or None


def retry_after_seconds(wait: float) -> int:
    """A wait as a Retry-After value: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait))


@dataclass(frozen=True)
class Settings:
    """Durations (seconds) and limits of the queue; every process of one queue uses the same."""

    head_seconds: float = 60.0  # the head's time to redeem
    view_seconds: float = 60.0  # the viewer's window, during which the next head's clock waits
    ban_seconds: float = 3600.0  # how long a cheater stays banned
    remember_seconds: float = 86400.0  # how long a string that left is known as issued
    event_history: int = 1000  # events the stream keeps (approximately: MAXLEN ~)
    tokens_per_address: int = 5  # waiting tokens one client address may hold at once
    strikes_to_ban: int = 5  # wrong claims (within ban_seconds of each other) that ban

    def __post_init__(self) -> None:
        for name in ("head_seconds", "view_seconds", "ban_seconds", "remember_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        for name in ("event_history", "tokens_per_address", "strikes_to_ban"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")


class TakeOutcome(StrEnum):
    """What asking for a token gave (HTTP status the issue asks for in brackets)."""

    OK = "ok"  # issued (201)
    FULL = "full"  # all 2,600 strings are waiting: retry after (503)
    TOO_MANY = "too_many"  # the caller's address holds tokens_per_address waiting: retry (429)
    BANNED = "banned"  # the caller is banned (403)


class RedeemOutcome(StrEnum):
    """What presenting a token gave."""

    SUCCESS = "success"  # it was the head: served, its viewing window opens (200)
    WRONG_TURN = "wrong_turn"  # waiting, not its turn yet: position and retry-after (409)
    EXPIRED = "expired"  # the caller's own claim, of an issue no longer waiting (410)
    CLAIM_REQUIRED = "claim_required"  # no claim sent: refused, no strike (403)
    WRONG_CLAIM = "wrong_claim"  # not a claim of this token the caller was given: a strike (403)
    CHEATER = "cheater"  # never issued (or long forgotten): the caller is banned (403)
    BANNED = "banned"  # the caller is banned (403)
    MALFORMED = "malformed"  # not a token at all (400)
    QUEUE_EMPTY = "queue_empty"  # nobody waits and the token is unknown; no ban (404)


class ReleaseOutcome(StrEnum):
    """What ending a viewing window gave."""

    RELEASED = "released"  # the window ended now; the next head's clock starts
    NOT_VIEWING = "not_viewing"  # the caller's own claim, but no open window: nothing to do
    CLAIM_REQUIRED = "claim_required"
    WRONG_CLAIM = "wrong_claim"
    BANNED = "banned"
    MALFORMED = "malformed"


class LeaveOutcome(StrEnum):
    """What giving up a waiting token gave."""

    LEFT = "left"
    NOT_WAITING = "not_waiting"  # the caller's own claim, of an issue no longer waiting
    CLAIM_REQUIRED = "claim_required"
    WRONG_CLAIM = "wrong_claim"
    BANNED = "banned"
    MALFORMED = "malformed"


class EventType(StrEnum):
    """What changed in the queue (the SSE event names)."""

    APPEND = "append"  # a token joined the tail (position)
    REMOVE = "remove"  # its holder gave up a waiting token (position it had)
    EXPIRE = "expire"  # the head's time ran out (``at`` is the instant it did)
    SERVE = "serve"  # the head was redeemed: it left the queue, its window is open (until)
    RELEASE = "release"  # the viewer ended the window early


@dataclass(frozen=True)
class Ban:
    """A client IP refused every queue operation from ``since`` until ``until``."""

    reason: str
    since: float
    until: float

    def active(self, now: float) -> bool:
        """True while the ban holds."""
        return now < self.until


def cheater_ban(token: str, now: float, settings: Settings) -> Ban:
    """The ban earned by presenting ``token``, which was never issued."""
    return Ban(f"cheater: presented {token}, never issued", now, now + settings.ban_seconds)


def guessing_reason(settings: Settings) -> str:
    """Why an address that made ``strikes_to_ban`` wrong claims is banned."""
    return f"guessing: {settings.strikes_to_ban} wrong claims for tokens it was not given"


@dataclass(frozen=True)
class Strikes:
    """Wrong claims from one address; forgotten at ``until`` (``ban_seconds`` after the last)."""

    count: int
    until: float


@dataclass(frozen=True)
class TakeResult:
    """The answer to a take: the token, its ticket and position (1 = head), or why not."""

    outcome: TakeOutcome
    token: str | None = None
    ticket: int | None = None
    position: int | None = None
    retry_after: int | None = None
    ban: Ban | None = None
    claim: str | None = field(default=None, repr=False)  # the secret, for the taker only


@dataclass(frozen=True)
class RedeemResult:
    """The answer to a redeem; ``view_until`` ends the window of a success."""

    outcome: RedeemOutcome
    token: str | None = None
    ticket: int | None = None
    position: int | None = None
    retry_after: int | None = None
    view_until: float | None = None
    ban: Ban | None = None


@dataclass(frozen=True)
class ReleaseResult:
    """The answer to a release."""

    outcome: ReleaseOutcome
    ban: Ban | None = None


@dataclass(frozen=True)
class LeaveResult:
    """The answer to a leave."""

    outcome: LeaveOutcome
    ban: Ban | None = None


@dataclass(frozen=True)
class Event:
    """One change of the queue, as streamed and published (tickets are never published)."""

    type: EventType
    token: str
    at: float
    position: int | None = None
    until: float | None = None
    head_deadline: float | None = None  # of the queue after the change; None when empty
    id: int = 0  # increasing, assigned by the store; 0 in the pure model


@dataclass(frozen=True)
class Snapshot:
    """The queue as a viewer sees it (no tickets)."""

    waiting: tuple[str, ...]
    head_deadline: float | None
    viewer: str | None
    view_until: float | None
    last_event_id: int = 0  # events up to this id are reflected here


@dataclass(frozen=True)
class Holder:
    """One waiting issue of a token: the string, its ticket (a public sequence number), the
    SHA-256 of its claim and the address that took it (for the per-address cap)."""

    token: str
    ticket: int
    claim: str
    ip: str


@dataclass(frozen=True)
class Viewer:
    """The holder served last, while its window is open (``claim``: its SHA-256)."""

    token: str
    ticket: int
    claim: str
    until: float


@dataclass(frozen=True)
class Issue:
    """An issue that left the queue, remembered by its claim's hash until ``remember_seconds``
    after ``left``: its holder presenting it again is told its turn passed, not punished."""

    token: str
    left: float


class Claimed(StrEnum):
    """Whose claim a caller presented with a token."""

    HOLDER = "holder"  # the waiting issue's
    VIEWER = "viewer"  # the open window's
    STALE = "stale"  # an issue of this string that left, still remembered: the caller's own
    MISSING = "missing"  # none
    WRONG = "wrong"  # anything else: a guess, or a claim of another token


@dataclass(frozen=True)
class QueueState:
    """Everything the rules look at; the store keeps the same in Redis."""

    waiting: tuple[Holder, ...] = ()
    head_since: float = 0.0  # when the head's clock starts (in the future while frozen)
    viewer: Viewer | None = None
    last_ticket: int = 0
    retired: Mapping[str, float] = field(default_factory=dict)  # left the queue at
    bans: Mapping[str, Ban] = field(default_factory=dict)  # by client IP
    claims: Mapping[str, Issue] = field(default_factory=dict)  # issues that left, by claim hash
    strikes: Mapping[str, Strikes] = field(default_factory=dict)  # by client IP

    def head_deadline(self, settings: Settings) -> float | None:
        """When the head expires unless redeemed; None when nobody waits."""
        return self.head_since + settings.head_seconds if self.waiting else None

    def holder(self, token: str) -> Holder | None:
        """The waiting issue of ``token``, if any."""
        return next((h for h in self.waiting if h.token == token), None)

    def position(self, token: str) -> int:
        """The 1-based place of a waiting ``token`` (1 = the head)."""
        return next(n for n, h in enumerate(self.waiting, 1) if h.token == token)

    def held_by(self, ip: str) -> int:
        """How many waiting tokens ``ip`` took."""
        return sum(1 for h in self.waiting if h.ip == ip)

    def active_ban(self, ip: str, now: float) -> Ban | None:
        """The ban holding ``ip`` at ``now``, if any."""
        ban = self.bans.get(ip)
        return ban if ban is not None and ban.active(now) else None

    def snapshot(self, settings: Settings) -> Snapshot:
        """What a viewer sees of this state (apply :func:`advance` first)."""
        viewer = self.viewer
        return Snapshot(
            tuple(h.token for h in self.waiting),
            self.head_deadline(settings),
            viewer.token if viewer else None,
            viewer.until if viewer else None,
        )


@dataclass(frozen=True)
class Step(Generic[R]):
    """An operation's new state, its answer and the events it caused, oldest first."""

    state: QueueState
    result: R
    events: tuple[Event, ...] = ()


def advance(state: QueueState, now: float, settings: Settings) -> Step[tuple[Event, ...]]:
    """Apply every deadline passed by ``now``; the result is the expiry events.

    Heads expire in a chain: each one at ``head_since + head_seconds``, which becomes the next
    head's ``head_since``, for as long as those instants are not after ``now``. A window whose
    end has come closes, and strings and claims that left before ``now - remember_seconds``
    are forgotten.
    """
    waiting, since = state.waiting, state.head_since
    retired, claims = dict(state.retired), dict(state.claims)
    events: list[Event] = []
    while waiting and now >= since + settings.head_seconds:
        since = since + settings.head_seconds
        head, waiting = waiting[0], waiting[1:]
        retired[head.token] = since
        claims[head.claim] = Issue(head.token, since)
        deadline = since + settings.head_seconds if waiting else None
        events.append(Event(EventType.EXPIRE, head.token, since, head_deadline=deadline))
    viewer = state.viewer if state.viewer is not None and state.viewer.until > now else None
    horizon = now - settings.remember_seconds
    advanced = replace(
        state,
        waiting=waiting,
        head_since=since,
        viewer=viewer,
        retired={token: left for token, left in retired.items() if left >= horizon},
        claims={hashed: issue for hashed, issue in claims.items() if issue.left >= horizon},
    )
    return Step(advanced, tuple(events), tuple(events))


def claimed(state: QueueState, token: str, claim: str | None) -> Claimed:
    """Whose claim ``claim`` (as presented, not hashed) is for ``token`` in ``state``."""
    if claim is None:
        return Claimed.MISSING
    hashed = claim_hash(claim)
    holder, viewer = state.holder(token), state.viewer
    if holder is not None and holder.claim == hashed:
        return Claimed.HOLDER
    if viewer is not None and viewer.token == token and viewer.claim == hashed:
        return Claimed.VIEWER
    issue = state.claims.get(hashed)
    return Claimed.STALE if issue is not None and issue.token == token else Claimed.WRONG


def strike(state: QueueState, ip: str, now: float, settings: Settings) -> Step[Ban | None]:
    """Count one wrong claim against ``ip``; the result is the ban it earned, if it did.

    Strikes are forgotten ``ban_seconds`` after the last one; the ``strikes_to_ban``-th bans
    the address for ``ban_seconds`` and starts its count afresh.
    """
    old = state.strikes.get(ip)
    count = old.count + 1 if old is not None and old.until > now else 1
    strikes = {other: s for other, s in state.strikes.items() if other != ip}
    if count < settings.strikes_to_ban:
        strikes[ip] = Strikes(count, now + settings.ban_seconds)
        return Step(replace(state, strikes=strikes), None)
    ban = Ban(guessing_reason(settings), now, now + settings.ban_seconds)
    return Step(replace(state, strikes=strikes, bans={**state.bans, ip: ban}), ban)


def take(
    state: QueueState, ip: str, claim: str, now: float, settings: Settings
) -> Step[TakeResult]:
    """Issue the smallest free string to the tail under a new ticket and ``claim`` (drawn by
    the caller of this function), unless banned, the address holds its share, or full.

    A token joining an empty queue is the head at once: its clock starts now, or when the open
    viewing window ends.
    """
    ban = state.active_ban(ip, now)
    if ban is not None:
        return Step(state, TakeResult(TakeOutcome.BANNED, ban=ban))
    moved = advance(state, now, settings)
    state = moved.state
    wait = retry_after_seconds(state.head_since + settings.head_seconds - now)
    if state.held_by(ip) >= settings.tokens_per_address:
        return Step(state, TakeResult(TakeOutcome.TOO_MANY, retry_after=wait), moved.events)
    token = smallest_free(h.token for h in state.waiting)
    if token is None:
        return Step(state, TakeResult(TakeOutcome.FULL, retry_after=wait), moved.events)
    holder = Holder(token, state.last_ticket + 1, claim_hash(claim), ip)
    since = state.head_since if state.waiting else max(now, _window_end(state, now))
    retired = {t: left for t, left in state.retired.items() if t != token}
    waiting = (*state.waiting, holder)
    state = replace(
        state, waiting=waiting, head_since=since, last_ticket=holder.ticket, retired=retired
    )
    position = len(waiting)
    event = Event(
        EventType.APPEND, token, now, position, head_deadline=state.head_deadline(settings)
    )
    result = TakeResult(TakeOutcome.OK, token, holder.ticket, position, claim=claim)
    return Step(state, result, (*moved.events, event))


def _window_end(state: QueueState, now: float) -> float:
    return state.viewer.until if state.viewer is not None else now


def redeem(
    state: QueueState, ip: str, text: str, claim: str | None, now: float, settings: Settings
) -> Step[RedeemResult]:
    """Serve ``text`` if ``claim`` is its waiting issue's, it is the head and no window is open;
    else say why not.

    A never-issued token bans the caller, unless nobody waits at all (the original's rule);
    a claim the caller was never given for an issued token is a strike (:func:`strike`).
    """
    ban = state.active_ban(ip, now)
    if ban is not None:
        return Step(state, RedeemResult(RedeemOutcome.BANNED, ban=ban))
    try:
        token = parse_token(text)
    except MalformedTokenError:
        return Step(state, RedeemResult(RedeemOutcome.MALFORMED))
    moved = advance(state, now, settings)
    step = _redeem_token(moved.state, ip, token, claim, now, settings)
    return replace(step, events=moved.events + step.events)


def _redeem_token(
    state: QueueState, ip: str, token: str, claim: str | None, now: float, settings: Settings
) -> Step[RedeemResult]:
    holder = state.holder(token)
    if holder is None and token not in state.retired:
        if not state.waiting:
            return Step(state, RedeemResult(RedeemOutcome.QUEUE_EMPTY))
        ban = cheater_ban(token, now, settings)
        banned = replace(state, bans={**state.bans, ip: ban})
        return Step(banned, RedeemResult(RedeemOutcome.CHEATER, ban=ban))
    whose = claimed(state, token, claim)
    if whose is Claimed.HOLDER and holder is not None:
        return _redeem_waiting(state, holder, now, settings)
    if whose is Claimed.MISSING:
        return Step(state, RedeemResult(RedeemOutcome.CLAIM_REQUIRED))
    if whose is Claimed.WRONG:
        struck = strike(state, ip, now, settings)
        return Step(struck.state, RedeemResult(RedeemOutcome.WRONG_CLAIM, ban=struck.result))
    return Step(state, RedeemResult(RedeemOutcome.EXPIRED))


def _redeem_waiting(
    state: QueueState, holder: Holder, now: float, settings: Settings
) -> Step[RedeemResult]:
    """Serve the head; anyone else (or the head during a window) learns when to come back.

    Retry-after is when the queue next moves for sure: the end of the window for the head,
    the head's deadline for the others.
    """
    position = state.position(holder.token)
    if position == 1 and state.viewer is None:
        return _serve(state, holder, now, settings)
    wait = (
        state.head_since - now if position == 1 else state.head_since + settings.head_seconds - now
    )
    result = RedeemResult(
        RedeemOutcome.WRONG_TURN,
        holder.token,
        position=position,
        retry_after=retry_after_seconds(wait),
    )
    return Step(state, result)


def _serve(state: QueueState, holder: Holder, now: float, settings: Settings) -> Step[RedeemResult]:
    until = now + settings.view_seconds
    served = replace(
        state,
        waiting=state.waiting[1:],
        head_since=until,
        viewer=Viewer(holder.token, holder.ticket, holder.claim, until),
        retired={**state.retired, holder.token: now},
        claims={**state.claims, holder.claim: Issue(holder.token, now)},
    )
    deadline = served.head_deadline(settings)
    event = Event(EventType.SERVE, holder.token, now, until=until, head_deadline=deadline)
    result = RedeemResult(RedeemOutcome.SUCCESS, holder.token, holder.ticket, view_until=until)
    return Step(served, result, (event,))


def release(
    state: QueueState, ip: str, text: str, claim: str | None, now: float, settings: Settings
) -> Step[ReleaseResult]:
    """End the open window of ``text`` now, if ``claim`` is the viewer's; the next head's clock
    starts at once. The caller's own claim of no open window changes nothing."""
    ban = state.active_ban(ip, now)
    if ban is not None:
        return Step(state, ReleaseResult(ReleaseOutcome.BANNED, ban))
    try:
        token = parse_token(text)
    except MalformedTokenError:
        return Step(state, ReleaseResult(ReleaseOutcome.MALFORMED))
    moved = advance(state, now, settings)
    state = moved.state
    whose = claimed(state, token, claim)
    if whose is not Claimed.VIEWER:
        step = _refuse(state, ip, whose, now, settings, ReleaseOutcome.NOT_VIEWING)
        return Step(step.state, ReleaseResult(*step.result), moved.events)
    released = replace(state, viewer=None, head_since=min(state.head_since, now))
    deadline = released.head_deadline(settings)
    event = Event(EventType.RELEASE, token, now, head_deadline=deadline)
    return Step(released, ReleaseResult(ReleaseOutcome.RELEASED), (*moved.events, event))


E = TypeVar("E", ReleaseOutcome, LeaveOutcome)


def _refuse(
    state: QueueState, ip: str, whose: Claimed, now: float, settings: Settings, own: E
) -> Step[tuple[E, Ban | None]]:
    """The answer to a release or leave that does not apply: ``own`` for the caller's own
    claim; else claim required, or a strike for a wrong claim."""
    outcomes = type(own)
    if whose is Claimed.MISSING:
        return Step(state, (outcomes("claim_required"), None))
    if whose is Claimed.WRONG:
        struck = strike(state, ip, now, settings)
        return Step(struck.state, (outcomes("wrong_claim"), struck.result))
    return Step(state, (own, None))


def leave(
    state: QueueState, ip: str, text: str, claim: str | None, now: float, settings: Settings
) -> Step[LeaveResult]:
    """Give up a waiting token (``claim`` is its issue's); if it was the head, the next head's
    clock starts now."""
    ban = state.active_ban(ip, now)
    if ban is not None:
        return Step(state, LeaveResult(LeaveOutcome.BANNED, ban))
    try:
        token = parse_token(text)
    except MalformedTokenError:
        return Step(state, LeaveResult(LeaveOutcome.MALFORMED))
    moved = advance(state, now, settings)
    state = moved.state
    whose, holder = claimed(state, token, claim), state.holder(token)
    if whose is not Claimed.HOLDER or holder is None:
        step = _refuse(state, ip, whose, now, settings, LeaveOutcome.NOT_WAITING)
        return Step(step.state, LeaveResult(*step.result), moved.events)
    position = state.position(token)
    left = replace(
        state,
        waiting=tuple(h for h in state.waiting if h is not holder),
        head_since=max(state.head_since, now) if position == 1 else state.head_since,
        retired={**state.retired, token: now},
        claims={**state.claims, holder.claim: Issue(token, now)},
    )
    deadline = left.head_deadline(settings)
    event = Event(EventType.REMOVE, token, now, position, head_deadline=deadline)
    return Step(left, LeaveResult(LeaveOutcome.LEFT), (*moved.events, event))


def lift_ban(state: QueueState, ip: str) -> Step[bool]:
    """Forget the ban of ``ip`` and its strikes; the result says whether there was a ban."""
    bans = {other: ban for other, ban in state.bans.items() if other != ip}
    strikes = {other: s for other, s in state.strikes.items() if other != ip}
    return Step(replace(state, bans=bans, strikes=strikes), ip in state.bans)
