"""The turn queue in Redis: every operation is one Lua script, so every API process agrees.

Each script follows the reference model in :mod:`.core` step by step: it checks the caller's
ban, applies the deadlines passed by ``now`` (the lazy expiry chain), acts, and appends each
change to a capped stream *and* publishes it on a channel, all inside the one atomic call, so
no process can see half a change or miss its event. ``now`` is an argument of every call (epoch
seconds; tests pass their own clock), and floats travel as ``%.17g`` text, so the scripts
compute with exactly the numbers the model would. See :mod:`.keys` for what each key holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from redis.commands.core import Script

from yardmaster.shared.redis_client import run_script_once
from yardmaster.shared.turnqueue import keys
from yardmaster.shared.turnqueue.core import (
    Ban,
    Event,
    EventType,
    LeaveOutcome,
    LeaveResult,
    MalformedTokenError,
    RedeemOutcome,
    RedeemResult,
    ReleaseOutcome,
    ReleaseResult,
    Settings,
    Snapshot,
    TakeOutcome,
    TakeResult,
    cheater_ban,
    parse_token,
    retry_after_seconds,
)

# Shared by every script: KEYS are keys.STATE_KEYS (+ the caller's ban key as KEYS[9]);
# ARGV[1..6] the channel, now and the settings; an operation's own arguments follow.
_PRELUDE = """
local QUEUE, RECYCLED, CURSOR, TICKETS, CLOCK, RETIRED, EVENTS, EVENT_IDS = unpack(KEYS, 1, 8)
local CHANNEL, NOW = ARGV[1], tonumber(ARGV[2])
local HEAD_SECONDS, VIEW_SECONDS = tonumber(ARGV[3]), tonumber(ARGV[4])
local REMEMBER_SECONDS, HISTORY = tonumber(ARGV[5]), ARGV[6]

local function exact(x) return string.format('%.17g', x) end
local function reply(t) return cjson.encode(t) end

local function clock(field)
  local value = redis.call('hget', CLOCK, field)
  if value then return tonumber(value) end
  return nil
end

local function head_deadline()
  if redis.call('zcard', QUEUE) == 0 then return nil end
  return clock('head_since') + HEAD_SECONDS
end

-- Events are JSON built here rather than by cjson, whose numbers keep only 14 digits.
local function emit(kind, token, at, position, ends)
  local id = redis.call('incr', EVENT_IDS)
  local deadline = head_deadline()
  local text = string.format('{"id":%d,"type":"%s","token":"%s","at":%s',
    id, kind, token, exact(at))
  if position then text = text .. string.format(',"position":%d', position) end
  if ends then text = text .. ',"until":' .. exact(ends) end
  text = text .. ',"head_deadline":' .. (deadline and exact(deadline) or 'null') .. '}'
  redis.call('xadd', EVENTS, 'MAXLEN', '~', HISTORY, id .. '-0', 'event', text)
  redis.call('publish', CHANNEL, text)
  return text
end

local function retire(token, at)
  redis.call('zadd', RETIRED, exact(at), token)
  local index = (string.byte(token, 1) - 65) * 100 + tonumber(string.sub(token, 2))
  redis.call('zadd', RECYCLED, index, token)
end

local function open_viewer()
  local ends = clock('viewer_until')
  if not ends then return nil end
  return redis.call('hget', CLOCK, 'viewer_token'), clock('viewer_ticket'), ends
end

local function advance()
  local expired = {}
  local since = clock('head_since')
  while redis.call('zcard', QUEUE) > 0 and NOW >= since + HEAD_SECONDS do
    since = since + HEAD_SECONDS
    local token = redis.call('zpopmin', QUEUE)[1]
    redis.call('hset', CLOCK, 'head_since', exact(since))
    retire(token, since)
    expired[#expired + 1] = emit('expire', token, since)
  end
  local ends = clock('viewer_until')
  if ends and ends <= NOW then
    redis.call('hdel', CLOCK, 'viewer_token', 'viewer_ticket', 'viewer_until')
  end
  redis.call('zremrangebyscore', RETIRED, '-inf', '(' .. exact(NOW - REMEMBER_SECONDS))
  return expired
end

local function refuse_banned()
  local ban = redis.call('hmget', KEYS[9], 'reason', 'since', 'until')
  if ban[3] and tonumber(ban[3]) > NOW then
    return reply({outcome = 'banned', reason = ban[1], since = ban[2], ['until'] = ban[3]})
  end
  return nil
end

local function waiting_ticket(token, ticket)
  local live = redis.call('zscore', QUEUE, token)
  if not live then return nil end
  live = tonumber(live)
  if ticket and ticket ~= live then return nil, true end
  return live, false
end
"""

_TAKE = """
local banned = refuse_banned()
if banned then return banned end
advance()
local count = redis.call('zcard', QUEUE)
if count >= 2600 then
  return reply({outcome = 'full', wait = exact(clock('head_since') + HEAD_SECONDS - NOW)})
end
local token = redis.call('zpopmin', RECYCLED)[1]
if not token then
  local index = redis.call('incr', CURSOR) - 1
  token = string.char(65 + math.floor(index / 100)) .. string.format('%02d', index % 100)
end
local ticket = redis.call('incr', TICKETS)
if count == 0 then
  local _, _, ends = open_viewer()
  redis.call('hset', CLOCK, 'head_since', exact(math.max(NOW, ends or NOW)))
end
redis.call('zadd', QUEUE, ticket, token)
redis.call('zrem', RETIRED, token)
emit('append', token, NOW, count + 1)
return reply({outcome = 'ok', token = token, ticket = ticket, position = count + 1})
"""

# ARGV[7] token, ARGV[8] ticket or '', ARGV[9] ban reason, ARGV[10] ban end, ARGV[11] ban TTL
_REDEEM = """
local banned = refuse_banned()
if banned then return banned end
advance()
local token, ticket = ARGV[7], tonumber(ARGV[8])
local live, stale = waiting_ticket(token, ticket)
if live then
  local rank = redis.call('zrank', QUEUE, token)
  local _, _, ends = open_viewer()
  if rank == 0 and not ends then
    redis.call('zpopmin', QUEUE)
    retire(token, NOW)
    local view_until = NOW + VIEW_SECONDS
    redis.call('hset', CLOCK, 'head_since', exact(view_until), 'viewer_token', token,
      'viewer_ticket', live, 'viewer_until', exact(view_until))
    emit('serve', token, NOW, nil, view_until)
    return reply({outcome = 'success', token = token, ticket = live,
      view_until = exact(view_until)})
  end
  local since = clock('head_since')
  local wait = since + HEAD_SECONDS - NOW
  if rank == 0 then wait = since - NOW end
  return reply({outcome = 'wrong_turn', token = token, position = rank + 1, wait = exact(wait)})
end
if stale or redis.call('zscore', RETIRED, token) then return reply({outcome = 'expired'}) end
if redis.call('zcard', QUEUE) == 0 then return reply({outcome = 'queue_empty'}) end
redis.call('hset', KEYS[9], 'reason', ARGV[9], 'since', exact(NOW), 'until', ARGV[10])
redis.call('expire', KEYS[9], ARGV[11])
return reply({outcome = 'cheater', reason = ARGV[9], since = exact(NOW), ['until'] = ARGV[10]})
"""

# ARGV[7] token, ARGV[8] ticket or ''
_RELEASE = """
local banned = refuse_banned()
if banned then return banned end
advance()
local token, ticket = ARGV[7], tonumber(ARGV[8])
local viewer, viewer_ticket = open_viewer()
if viewer ~= token or (ticket and ticket ~= viewer_ticket) then
  return reply({outcome = 'not_viewing'})
end
redis.call('hdel', CLOCK, 'viewer_token', 'viewer_ticket', 'viewer_until')
if clock('head_since') > NOW then redis.call('hset', CLOCK, 'head_since', exact(NOW)) end
emit('release', token, NOW)
return reply({outcome = 'released'})
"""

# ARGV[7] token, ARGV[8] ticket or ''
_LEAVE = """
local banned = refuse_banned()
if banned then return banned end
advance()
local token, ticket = ARGV[7], tonumber(ARGV[8])
if not waiting_ticket(token, ticket) then return reply({outcome = 'not_waiting'}) end
local rank = redis.call('zrank', QUEUE, token)
redis.call('zrem', QUEUE, token)
if rank == 0 and clock('head_since') < NOW then
  redis.call('hset', CLOCK, 'head_since', exact(NOW))
end
retire(token, NOW)
emit('remove', token, NOW, rank + 1)
return reply({outcome = 'left'})
"""

_EXPIRE = """
local expired = advance()
return '[' .. table.concat(expired, ',') .. ']'
"""

_SNAPSHOT = """
advance()
local viewer, _, ends = open_viewer()
local deadline = head_deadline()
return reply({
  waiting = redis.call('zrange', QUEUE, 0, -1),
  head_deadline = deadline and exact(deadline) or cjson.null,
  viewer = viewer or cjson.null,
  view_until = ends and exact(ends) or cjson.null,
  last_event_id = tonumber(redis.call('get', EVENT_IDS) or '0'),
})
"""


def decode_event(raw: bytes | str) -> Event:
    """An event from its JSON text, as found in the stream and on the channel."""
    return _event(json.loads(raw))


def _event(data: Mapping[str, Any]) -> Event:
    return Event(
        type=EventType(data["type"]),
        token=data["token"],
        at=float(data["at"]),
        position=data.get("position"),
        until=_number(data.get("until")),
        head_deadline=_number(data.get("head_deadline")),
        id=int(data["id"]),
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _ban(data: Mapping[str, Any]) -> Ban:
    return Ban(str(data["reason"]), float(data["since"]), float(data["until"]))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _field(fields: Mapping[Any, Any], name: str) -> bytes | str:
    """A stream entry's field, whether the client decodes responses or not."""
    value = fields.get(name.encode(), fields.get(name))
    if value is None:
        raise KeyError(name)
    return value  # type: ignore[no-any-return]


def _ticket_arg(ticket: int | None) -> int | str:
    return "" if ticket is None else ticket


class TurnQueue:
    """The turn queue's operations (one instance per process; thread-safe like its client).

    Every method that changes the queue takes ``now`` (epoch seconds) and ``ip`` (the caller's
    address, used for bans). Tickets come from :meth:`take`; passing one back to the other
    operations keeps a stale holder of a recycled string out.
    """

    def __init__(self, client: redis.Redis, settings: Settings | None = None) -> None:
        self.client = client
        self.settings = settings or Settings()
        self._take = client.register_script(_PRELUDE + _TAKE)
        self._redeem = client.register_script(_PRELUDE + _REDEEM)
        self._release = client.register_script(_PRELUDE + _RELEASE)
        self._leave = client.register_script(_PRELUDE + _LEAVE)
        self._expire = client.register_script(_PRELUDE + _EXPIRE)
        self._snapshot = client.register_script(_PRELUDE + _SNAPSHOT)

    def _run(
        self, script: Script, now: float, ip: str | None = None, args: Sequence[Any] = ()
    ) -> Any:
        settings = self.settings
        script_keys = [*keys.STATE_KEYS, *([keys.ban_key(ip)] if ip is not None else [])]
        script_args = [
            keys.EVENTS_CHANNEL,
            float(now),
            float(settings.head_seconds),
            float(settings.view_seconds),
            float(settings.remember_seconds),
            settings.event_history,
            *args,
        ]
        return json.loads(run_script_once(self.client, script, script_keys, script_args))

    def take(self, ip: str, now: float) -> TakeResult:
        """Issue the smallest free token to the tail, with a new ticket; or FULL, or BANNED."""
        data = self._run(self._take, now, ip)
        outcome = TakeOutcome(data["outcome"])
        if outcome is TakeOutcome.BANNED:
            return TakeResult(outcome, ban=_ban(data))
        if outcome is TakeOutcome.FULL:
            return TakeResult(outcome, retry_after=retry_after_seconds(float(data["wait"])))
        return TakeResult(outcome, data["token"], int(data["ticket"]), int(data["position"]))

    def redeem(self, text: str, ip: str, now: float, ticket: int | None = None) -> RedeemResult:
        """Serve the token in ``text`` if it is the head and no window is open; else say why not.

        A token never issued (and not remembered as having left) bans ``ip`` for
        ``ban_seconds``, unless nobody waits. A success opens the viewing window until
        ``view_until``, during which the next head's clock is frozen.
        """
        try:
            token = parse_token(text)
        except MalformedTokenError:
            ban = self.ban_of(ip, now)
            if ban is not None:
                return RedeemResult(RedeemOutcome.BANNED, ban=ban)
            return RedeemResult(RedeemOutcome.MALFORMED)
        ban = cheater_ban(token, now, self.settings)
        args = [token, _ticket_arg(ticket), ban.reason, repr(ban.until), self._ban_ttl()]
        return _redeem_result(self._run(self._redeem, now, ip, args))

    def release(self, text: str, ip: str, now: float, ticket: int | None = None) -> ReleaseResult:
        """End the open viewing window of ``text`` now, so the next head's clock starts."""
        try:
            token = parse_token(text)
        except MalformedTokenError:
            ban = self.ban_of(ip, now)
            if ban is not None:
                return ReleaseResult(ReleaseOutcome.BANNED, ban)
            return ReleaseResult(ReleaseOutcome.MALFORMED)
        data = self._run(self._release, now, ip, [token, _ticket_arg(ticket)])
        outcome = ReleaseOutcome(data["outcome"])
        return ReleaseResult(outcome, _ban(data) if outcome is ReleaseOutcome.BANNED else None)

    def leave(self, text: str, ip: str, now: float, ticket: int | None = None) -> LeaveResult:
        """Give up a waiting token; if it was the head, the next head's clock starts now."""
        try:
            token = parse_token(text)
        except MalformedTokenError:
            ban = self.ban_of(ip, now)
            if ban is not None:
                return LeaveResult(LeaveOutcome.BANNED, ban)
            return LeaveResult(LeaveOutcome.MALFORMED)
        data = self._run(self._leave, now, ip, [token, _ticket_arg(ticket)])
        outcome = LeaveOutcome(data["outcome"])
        return LeaveResult(outcome, _ban(data) if outcome is LeaveOutcome.BANNED else None)

    def apply_expiry(self, now: float) -> list[Event]:
        """Expire every head whose time ran out by ``now``; the expiry events, oldest first.

        Every operation does this first anyway; call it periodically (e.g. once a second per
        SSE relay) so that expiry events reach watchers while nobody else acts.
        """
        return [_event(data) for data in self._run(self._expire, now)]

    def snapshot(self, now: float) -> Snapshot:
        """The queue at ``now`` (deadlines applied), with the id of the last event it reflects.

        Subscribe to :data:`keys.EVENTS_CHANNEL` *before* taking the snapshot, then skip events
        whose id is not above ``last_event_id``: nothing is missed and nothing counted twice.
        """
        data = self._run(self._snapshot, now)
        return Snapshot(
            waiting=tuple(data["waiting"] or ()),
            head_deadline=_number(data["head_deadline"]),
            viewer=data["viewer"],
            view_until=_number(data["view_until"]),
            last_event_id=int(data["last_event_id"]),
        )

    def events_after(self, last_id: int = 0, count: int | None = None) -> list[Event]:
        """Events with an id above ``last_id`` still in the stream (an SSE ``Last-Event-ID``)."""
        entries = self.client.xrange(keys.EVENTS, min=f"{last_id + 1}-0", count=count) or []
        return [decode_event(_field(fields, "event")) for _, fields in entries if fields]

    def ban_of(self, ip: str, now: float) -> Ban | None:
        """The ban holding ``ip`` at ``now``, if any (for endpoints that only read)."""
        fields = self.client.hgetall(keys.ban_key(ip))
        if not fields:
            return None
        ban = _ban({_text(k): _text(v) for k, v in fields.items()})
        return ban if ban.active(now) else None

    def lift_ban(self, ip: str) -> bool:
        """Forget the ban of ``ip``; True when there was a ban record."""
        return bool(self.client.delete(keys.ban_key(ip)))

    def _ban_ttl(self) -> int:
        """Redis drops a ban record this long after writing it (the check itself uses ``now``)."""
        return max(1, math.ceil(self.settings.ban_seconds))


def _redeem_result(data: Mapping[str, Any]) -> RedeemResult:
    outcome = RedeemOutcome(data["outcome"])
    if outcome in (RedeemOutcome.BANNED, RedeemOutcome.CHEATER):
        return RedeemResult(outcome, ban=_ban(data))
    if outcome is RedeemOutcome.SUCCESS:
        ticket, until = int(data["ticket"]), float(data["view_until"])
        return RedeemResult(outcome, data["token"], ticket, view_until=until)
    if outcome is RedeemOutcome.WRONG_TURN:
        retry_after = retry_after_seconds(float(data["wait"]))
        return RedeemResult(
            outcome, data["token"], position=int(data["position"]), retry_after=retry_after
        )
    return RedeemResult(outcome)
