"""The turn queue's rules, pure: tokens, the order of issue, deadlines, outcomes and events.

Values in, values out; ``now`` (epoch seconds) is always an argument, never read from a clock.
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
"""

from __future__ import annotations

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

    def __post_init__(self) -> None:
        for name in ("head_seconds", "view_seconds", "ban_seconds", "remember_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if self.event_history < 1:
            raise ValueError(f"event_history must be at least 1, not {self.event_history}")


class TakeOutcome(StrEnum):
    """What asking for a token gave (HTTP status the issue asks for in brackets)."""

    OK = "ok"  # issued (201)
    FULL = "full"  # all 2,600 strings are waiting: retry after (503)
    BANNED = "banned"  # the caller is banned (403)


class RedeemOutcome(StrEnum):
    """What presenting a token gave."""

    SUCCESS = "success"  # it was the head: served, its viewing window opens (200)
    WRONG_TURN = "wrong_turn"  # waiting, not its turn yet: position and retry-after (409)
    EXPIRED = "expired"  # issued, but no longer waiting under this ticket (410)
    CHEATER = "cheater"  # never issued (or long forgotten): the caller is banned (403)
    BANNED = "banned"  # the caller is banned (403)
    MALFORMED = "malformed"  # not a token at all (400)
    QUEUE_EMPTY = "queue_empty"  # nobody waits and the token is unknown; no ban (404)


class ReleaseOutcome(StrEnum):
    """What ending a viewing window gave."""

    RELEASED = "released"  # the window ended now; the next head's clock starts
    NOT_VIEWING = "not_viewing"  # no open window of this token (already ended): nothing to do
    BANNED = "banned"
    MALFORMED = "malformed"


class LeaveOutcome(StrEnum):
    """What giving up a waiting token gave."""

    LEFT = "left"
    NOT_WAITING = "not_waiting"  # the token (under this ticket) does not wait
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


@dataclass(frozen=True)
class TakeResult:
    """The answer to a take: the token, its ticket and position (1 = head), or why not."""

    outcome: TakeOutcome
    token: str | None = None
    ticket: int | None = None
    position: int | None = None
    retry_after: int | None = None
    ban: Ban | None = None


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
    """One issue of a token: the string and the unique ticket behind it."""

    token: str
    ticket: int


@dataclass(frozen=True)
class Viewer:
    """The holder served last, while its window is open."""

    token: str
    ticket: int
    until: float


@dataclass(frozen=True)
class QueueState:
    """Everything the rules look at; the store keeps the same in Redis."""

    waiting: tuple[Holder, ...] = ()
    head_since: float = 0.0  # when the head's clock starts (in the future while frozen)
    viewer: Viewer | None = None
    last_ticket: int = 0
    retired: Mapping[str, float] = field(default_factory=dict)  # left the queue at
    bans: Mapping[str, Ban] = field(default_factory=dict)  # by client IP

    def head_deadline(self, settings: Settings) -> float | None:
        """When the head expires unless redeemed; None when nobody waits."""
        return self.head_since + settings.head_seconds if self.waiting else None

    def holder(self, token: str) -> Holder | None:
        """The waiting issue of ``token``, if any."""
        return next((h for h in self.waiting if h.token == token), None)

    def position(self, token: str) -> int:
        """The 1-based place of a waiting ``token`` (1 = the head)."""
        return next(n for n, h in enumerate(self.waiting, 1) if h.token == token)

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
    end has come closes, and strings that left before ``now - remember_seconds`` are forgotten.
    """
    waiting, since, retired = state.waiting, state.head_since, dict(state.retired)
    events: list[Event] = []
    while waiting and now >= since + settings.head_seconds:
        since = since + settings.head_seconds
        head, waiting = waiting[0], waiting[1:]
        retired[head.token] = since
        deadline = since + settings.head_seconds if waiting else None
        events.append(Event(EventType.EXPIRE, head.token, since, head_deadline=deadline))
    viewer = state.viewer if state.viewer is not None and state.viewer.until > now else None
    horizon = now - settings.remember_seconds
    kept = {token: left for token, left in retired.items() if left >= horizon}
    advanced = replace(state, waiting=waiting, head_since=since, viewer=viewer, retired=kept)
    return Step(advanced, tuple(events), tuple(events))


def take(state: QueueState, ip: str, now: float, settings: Settings) -> Step[TakeResult]:
    """Issue the smallest free string to the tail under a new ticket, unless banned or full.

    A token joining an empty queue is the head at once: its clock starts now, or when the open
    viewing window ends.
    """
    ban = state.active_ban(ip, now)
    if ban is not None:
        return Step(state, TakeResult(TakeOutcome.BANNED, ban=ban))
    moved = advance(state, now, settings)
    state = moved.state
    token = smallest_free(h.token for h in state.waiting)
    if token is None:
        wait = state.head_since + settings.head_seconds - now
        result = TakeResult(TakeOutcome.FULL, retry_after=retry_after_seconds(wait))
        return Step(state, result, moved.events)
    holder = Holder(token, state.last_ticket + 1)
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
    result = TakeResult(TakeOutcome.OK, token, holder.ticket, position)
    return Step(state, result, (*moved.events, event))


def _window_end(state: QueueState, now: float) -> float:
    return state.viewer.until if state.viewer is not None else now


def redeem(
    state: QueueState, ip: str, text: str, ticket: int | None, now: float, settings: Settings
) -> Step[RedeemResult]:
    """Serve ``text`` if it is the head and no window is open; else say why not.

    ``ticket`` (from the take) tells a stale holder of a recycled string from its new holder;
    without it the string alone identifies the holder. A never-issued token bans the caller,
    unless nobody waits at all (the original's rule).
    """
    ban = state.active_ban(ip, now)
    if ban is not None:
        return Step(state, RedeemResult(RedeemOutcome.BANNED, ban=ban))
    try:
        token = parse_token(text)
    except MalformedTokenError:
        return Step(state, RedeemResult(RedeemOutcome.MALFORMED))
    moved = advance(state, now, settings)
    step = _redeem_token(moved.state, ip, token, ticket, now, settings)
    return replace(step, events=moved.events + step.events)


def _redeem_token(
    state: QueueState, ip: str, token: str, ticket: int | None, now: float, settings: Settings
) -> Step[RedeemResult]:
    holder = state.holder(token)
    if holder is not None and ticket in (None, holder.ticket):
        return _redeem_waiting(state, holder, now, settings)
    if holder is not None or token in state.retired:
        return Step(state, RedeemResult(RedeemOutcome.EXPIRED))
    if not state.waiting:
        return Step(state, RedeemResult(RedeemOutcome.QUEUE_EMPTY))
    ban = cheater_ban(token, now, settings)
    banned = replace(state, bans={**state.bans, ip: ban})
    return Step(banned, RedeemResult(RedeemOutcome.CHEATER, ban=ban))


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
        viewer=Viewer(holder.token, holder.ticket, until),
        retired={**state.retired, holder.token: now},
    )
    deadline = served.head_deadline(settings)
    event = Event(EventType.SERVE, holder.token, now, until=until, head_deadline=deadline)
    result = RedeemResult(RedeemOutcome.SUCCESS, holder.token, holder.ticket, view_until=until)
    return Step(served, result, (event,))


def release(
    state: QueueState, ip: str, text: str, ticket: int | None, now: float, settings: Settings
) -> Step[ReleaseResult]:
    """End the open window of ``text`` now; the next head's clock starts at once."""
    ban = state.active_ban(ip, now)
    if ban is not None:
        return Step(state, ReleaseResult(ReleaseOutcome.BANNED, ban))
    try:
        token = parse_token(text)
    except MalformedTokenError:
        return Step(state, ReleaseResult(ReleaseOutcome.MALFORMED))
    moved = advance(state, now, settings)
    state, viewer = moved.state, moved.state.viewer
    if viewer is None or viewer.token != token or ticket not in (None, viewer.ticket):
        return Step(state, ReleaseResult(ReleaseOutcome.NOT_VIEWING), moved.events)
    released = replace(state, viewer=None, head_since=min(state.head_since, now))
    deadline = released.head_deadline(settings)
    event = Event(EventType.RELEASE, token, now, head_deadline=deadline)
    return Step(released, ReleaseResult(ReleaseOutcome.RELEASED), (*moved.events, event))


def leave(
    state: QueueState, ip: str, text: str, ticket: int | None, now: float, settings: Settings
) -> Step[LeaveResult]:
    """Give up a waiting token; if it was the head, the next head's clock starts now."""
    ban = state.active_ban(ip, now)
    if ban is not None:
        return Step(state, LeaveResult(LeaveOutcome.BANNED, ban))
    try:
        token = parse_token(text)
    except MalformedTokenError:
        return Step(state, LeaveResult(LeaveOutcome.MALFORMED))
    moved = advance(state, now, settings)
    state = moved.state
    holder = state.holder(token)
    if holder is None or ticket not in (None, holder.ticket):
        return Step(state, LeaveResult(LeaveOutcome.NOT_WAITING), moved.events)
    position = state.position(token)
    left = replace(
        state,
        waiting=tuple(h for h in state.waiting if h is not holder),
        head_since=max(state.head_since, now) if position == 1 else state.head_since,
        retired={**state.retired, token: now},
    )
    deadline = left.head_deadline(settings)
    event = Event(EventType.REMOVE, token, now, position, head_deadline=deadline)
    return Step(left, LeaveResult(LeaveOutcome.LEFT), (*moved.events, event))


def lift_ban(state: QueueState, ip: str) -> Step[bool]:
    """Forget the ban of ``ip``; the result says whether there was a ban record."""
    bans = {other: ban for other, ban in state.bans.items() if other != ip}
    return Step(replace(state, bans=bans), ip in state.bans)
