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
import secrets
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
    claim_hash,
    guessing_reason,
    parse_token,
    retry_after_seconds,
)

# Shared by every script: KEYS are keys.STATE_KEYS (+ the caller's ban and strikes keys as
# KEYS[13], KEYS[14]); ARGV[1..12] the channel, now, the settings and the caller's IP ('' for
# none); an operation's own arguments follow from ARGV[13]. A claim travels only as its
# SHA-256 (hex), compared here, inside the atomic script.
_PRELUDE = """
local QUEUE, RECYCLED, CURSOR, TICKETS, CLOCK, RETIRED, EVENTS, EVENT_IDS = unpack(KEYS, 1, 8)
local HOLDERS, CLAIMS, CLAIMS_LEFT, ADDRESSES, BAN, STRIKES = unpack(KEYS, 9, 14)
local CHANNEL, NOW = ARGV[1], tonumber(ARGV[2])
local HEAD_SECONDS, VIEW_SECONDS = tonumber(ARGV[3]), tonumber(ARGV[4])
local REMEMBER_SECONDS, HISTORY = tonumber(ARGV[5]), ARGV[6]
local BAN_SECONDS, STRIKES_TO_BAN = tonumber(ARGV[7]), tonumber(ARGV[8])
local PER_ADDRESS, BAN_TTL, GUESSING, IP = tonumber(ARGV[9]), ARGV[10], ARGV[11], ARGV[12]
local HORIZON = NOW - REMEMBER_SECONDS

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

-- The claim hash and client IP of a waiting token's issue.
local function holder(token)
  local record = redis.call('hget', HOLDERS, token)
  if not record then return nil end
  return string.match(record, '^(%S+) (.*)$')
end

-- A waiting token leaves the queue at ``at``: its string is free again, its claim is
-- remembered as having left, its address holds one token fewer. Returns its claim hash.
local function retire(token, at)
  local hashed, ip = holder(token)
  redis.call('hdel', HOLDERS, token)
  redis.call('zadd', CLAIMS_LEFT, exact(at), hashed)
  if redis.call('hincrby', ADDRESSES, ip, -1) <= 0 then redis.call('hdel', ADDRESSES, ip) end
  redis.call('zadd', RETIRED, exact(at), token)
  local index = (string.byte(token, 1) - 65) * 100 + tonumber(string.sub(token, 2))
  redis.call('zadd', RECYCLED, index, token)
  return hashed
end

local function open_viewer()
  local ends = clock('viewer_until')
  if not ends then return nil end
  local viewer = redis.call('hmget', CLOCK, 'viewer_token', 'viewer_ticket', 'viewer_claim')
  return viewer[1], tonumber(viewer[2]), ends, viewer[3]
end

local function close_viewer()
  redis.call('hdel', CLOCK, 'viewer_token', 'viewer_ticket', 'viewer_until', 'viewer_claim')
end

local function forget_old_claims()
  local old = redis.call('zrangebyscore', CLAIMS_LEFT, '-inf', '(' .. exact(HORIZON),
    'LIMIT', 0, 500)
  if #old > 0 then
    redis.call('hdel', CLAIMS, unpack(old))
    redis.call('zrem', CLAIMS_LEFT, unpack(old))
  end
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
  if ends and ends <= NOW then close_viewer() end
  redis.call('zremrangebyscore', RETIRED, '-inf', '(' .. exact(HORIZON))
  forget_old_claims()
  return expired
end

local function refuse_banned()
  local ban = redis.call('hmget', BAN, 'reason', 'since', 'until')
  if ban[3] and tonumber(ban[3]) > NOW then
    return reply({outcome = 'banned', reason = ban[1], since = ban[2], ['until'] = ban[3]})
  end
  return nil
end

local function ban_caller(reason)
  local since, ends = exact(NOW), exact(NOW + BAN_SECONDS)
  redis.call('hset', BAN, 'reason', reason, 'since', since, 'until', ends)
  redis.call('expire', BAN, BAN_TTL)
  return {reason = reason, since = since, ['until'] = ends}
end

-- Whose claim ``hashed`` ('' for none) is for ``token`` (core.claimed).
local function claimed(token, hashed)
  if hashed == '' then return 'missing' end
  if holder(token) == hashed then return 'holder' end
  local viewer, _, _, viewer_claim = open_viewer()
  if viewer == token and viewer_claim == hashed then return 'viewer' end
  if redis.call('hget', CLAIMS, hashed) == token then
    local left = redis.call('zscore', CLAIMS_LEFT, hashed)
    if left and tonumber(left) >= HORIZON then return 'stale' end
  end
  return 'wrong'
end

-- One wrong claim against the caller (core.strike): its ban when this one earns it.
local function strike()
  local record = redis.call('hmget', STRIKES, 'count', 'until')
  local count = 1
  if record[2] and tonumber(record[2]) > NOW then count = tonumber(record[1]) + 1 end
  if count < STRIKES_TO_BAN then
    redis.call('hset', STRIKES, 'count', count, 'until', exact(NOW + BAN_SECONDS))
    redis.call('expire', STRIKES, BAN_TTL)
    return nil
  end
  redis.call('del', STRIKES)
  return ban_caller(GUESSING)
end

-- The answer when the claim is not the one the operation needs: ``own`` for the caller's
-- own claim, claim_required for none, wrong_claim (and a strike) for anything else.
local function refuse(whose, own)
  if whose == 'missing' then return reply({outcome = 'claim_required'}) end
  if whose == 'wrong' then
    local ban = strike() or {}
    ban.outcome = 'wrong_claim'
    return reply(ban)
  end
  return reply({outcome = own})
end
"""

# ARGV[13] the claim's hash
_TAKE = """
local banned = refuse_banned()
if banned then return banned end
advance()
local count = redis.call('zcard', QUEUE)
if tonumber(redis.call('hget', ADDRESSES, IP) or '0') >= PER_ADDRESS then
  return reply({outcome = 'too_many', wait = exact(clock('head_since') + HEAD_SECONDS - NOW)})
end
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
redis.call('hset', HOLDERS, token, ARGV[13] .. ' ' .. IP)
redis.call('hset', CLAIMS, ARGV[13], token)
redis.call('hincrby', ADDRESSES, IP, 1)
emit('append', token, NOW, count + 1)
return reply({outcome = 'ok', token = token, ticket = ticket, position = count + 1})
"""

# ARGV[13] token, ARGV[14] the claim's hash or '', ARGV[15] the cheater's ban reason
_REDEEM = """
local banned = refuse_banned()
if banned then return banned end
advance()
local token, hashed = ARGV[13], ARGV[14]
local live = redis.call('zscore', QUEUE, token)
if not live and not redis.call('zscore', RETIRED, token) then
  if redis.call('zcard', QUEUE) == 0 then return reply({outcome = 'queue_empty'}) end
  local ban = ban_caller(ARGV[15])
  ban.outcome = 'cheater'
  return reply(ban)
end
local whose = claimed(token, hashed)
if whose == 'viewer' or whose == 'stale' then return reply({outcome = 'expired'}) end
if whose ~= 'holder' then return refuse(whose) end
local rank = redis.call('zrank', QUEUE, token)
local _, _, ends = open_viewer()
if rank == 0 and not ends then
  redis.call('zpopmin', QUEUE)
  local claim = retire(token, NOW)
  local view_until = NOW + VIEW_SECONDS
  redis.call('hset', CLOCK, 'head_since', exact(view_until), 'viewer_token', token,
    'viewer_ticket', live, 'viewer_until', exact(view_until), 'viewer_claim', claim)
  emit('serve', token, NOW, nil, view_until)
  return reply({outcome = 'success', token = token, ticket = tonumber(live),
    view_until = exact(view_until)})
end
local since = clock('head_since')
local wait = since + HEAD_SECONDS - NOW
if rank == 0 then wait = since - NOW end
return reply({outcome = 'wrong_turn', token = token, position = rank + 1, wait = exact(wait)})
"""

# ARGV[13] token, ARGV[14] the claim's hash or ''
_RELEASE = """
local banned = refuse_banned()
if banned then return banned end
advance()
local token = ARGV[13]
local whose = claimed(token, ARGV[14])
if whose ~= 'viewer' then return refuse(whose, 'not_viewing') end
close_viewer()
if clock('head_since') > NOW then redis.call('hset', CLOCK, 'head_since', exact(NOW)) end
emit('release', token, NOW)
return reply({outcome = 'released'})
"""

# ARGV[13] token, ARGV[14] the claim's hash or ''
_LEAVE = """
local banned = refuse_banned()
if banned then return banned end
advance()
local token = ARGV[13]
local whose = claimed(token, ARGV[14])
if whose ~= 'holder' then return refuse(whose, 'not_waiting') end
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


def _hashed(claim: str | None) -> str:
    """A presented claim as the scripts take it: its SHA-256, or '' when none was sent."""
    return "" if claim is None else claim_hash(claim)


def draw_claim() -> str:
    """A new secret claim: 256 random bits, URL-safe text (43 characters)."""
    return secrets.token_urlsafe(32)


class TurnQueue:
    """The turn queue's operations (one instance per process; thread-safe like its client).

    Every method that changes the queue takes ``now`` (epoch seconds) and ``ip`` (the caller's
    address, for bans and the per-address cap). :meth:`take` draws each issue's secret claim
    and keeps only its SHA-256; the other operations need the claim back with the token.
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
        caller = [keys.ban_key(ip), keys.strikes_key(ip)] if ip is not None else []
        script_args = [
            keys.EVENTS_CHANNEL,
            float(now),
            float(settings.head_seconds),
            float(settings.view_seconds),
            float(settings.remember_seconds),
            settings.event_history,
            float(settings.ban_seconds),
            settings.strikes_to_ban,
            settings.tokens_per_address,
            self._ban_ttl(),
            guessing_reason(settings),
            ip or "",
            *args,
        ]
        reply = run_script_once(self.client, script, [*keys.STATE_KEYS, *caller], script_args)
        return json.loads(reply)

    def take(self, ip: str, now: float, claim: str | None = None) -> TakeResult:
        """Issue the smallest free token to the tail, with a new ticket and a secret claim
        (``claim``, else a new one from :func:`draw_claim`); or TOO_MANY when ``ip`` holds
        ``tokens_per_address`` waiting tokens, FULL, or BANNED."""
        claim = draw_claim() if claim is None else claim
        data = self._run(self._take, now, ip, [claim_hash(claim)])
        outcome = TakeOutcome(data["outcome"])
        if outcome is TakeOutcome.BANNED:
            return TakeResult(outcome, ban=_ban(data))
        if outcome in (TakeOutcome.FULL, TakeOutcome.TOO_MANY):
            return TakeResult(outcome, retry_after=retry_after_seconds(float(data["wait"])))
        token, ticket, position = data["token"], int(data["ticket"]), int(data["position"])
        return TakeResult(outcome, token, ticket, position, claim=claim)

    def redeem(self, text: str, ip: str, now: float, claim: str | None = None) -> RedeemResult:
        """Serve the token in ``text`` if ``claim`` is its waiting issue's, it is the head and no
        window is open; else say why not.

        A token never issued (and not remembered as having left) bans ``ip`` for
        ``ban_seconds``, unless nobody waits; a claim ``ip`` was not given for an issued token
        is a strike (the ``strikes_to_ban``-th bans). A success opens the viewing window until
        ``view_until``, during which the next head's clock is frozen.
        """
        try:
            token = parse_token(text)
        except MalformedTokenError:
            ban = self.ban_of(ip, now)
            if ban is not None:
                return RedeemResult(RedeemOutcome.BANNED, ban=ban)
            return RedeemResult(RedeemOutcome.MALFORMED)
        reason = cheater_ban(token, now, self.settings).reason
        args = [token, _hashed(claim), reason]
        return _redeem_result(self._run(self._redeem, now, ip, args))

    def release(self, text: str, ip: str, now: float, claim: str | None = None) -> ReleaseResult:
        """End the open viewing window of ``text`` now, if ``claim`` is the viewer's, so the
        next head's clock starts. Claims are checked as by :meth:`redeem`."""
        try:
            token = parse_token(text)
        except MalformedTokenError:
            ban = self.ban_of(ip, now)
            if ban is not None:
                return ReleaseResult(ReleaseOutcome.BANNED, ban)
            return ReleaseResult(ReleaseOutcome.MALFORMED)
        data = self._run(self._release, now, ip, [token, _hashed(claim)])
        return ReleaseResult(ReleaseOutcome(data["outcome"]), _ban_if_any(data))

    def leave(self, text: str, ip: str, now: float, claim: str | None = None) -> LeaveResult:
        """Give up a waiting token (``claim`` is its issue's); if it was the head, the next
        head's clock starts now."""
        try:
            token = parse_token(text)
        except MalformedTokenError:
            ban = self.ban_of(ip, now)
            if ban is not None:
                return LeaveResult(LeaveOutcome.BANNED, ban)
            return LeaveResult(LeaveOutcome.MALFORMED)
        data = self._run(self._leave, now, ip, [token, _hashed(claim)])
        return LeaveResult(LeaveOutcome(data["outcome"]), _ban_if_any(data))

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
        """Forget the ban of ``ip`` and its wrong claims; True when there was a ban record."""
        self.client.delete(keys.strikes_key(ip))
        return bool(self.client.delete(keys.ban_key(ip)))

    def _ban_ttl(self) -> int:
        """Redis drops a ban record this long after writing it (the check itself uses ``now``)."""
        return max(1, math.ceil(self.settings.ban_seconds))


def _ban_if_any(data: Mapping[str, Any]) -> Ban | None:
    return _ban(data) if "until" in data else None


def _redeem_result(data: Mapping[str, Any]) -> RedeemResult:
    outcome = RedeemOutcome(data["outcome"])
    if outcome in (RedeemOutcome.BANNED, RedeemOutcome.CHEATER, RedeemOutcome.WRONG_CLAIM):
        return RedeemResult(outcome, ban=_ban_if_any(data))
    if outcome is RedeemOutcome.SUCCESS:
        ticket, until = int(data["ticket"]), float(data["view_until"])
        return RedeemResult(outcome, data["token"], ticket, view_until=until)
    if outcome is RedeemOutcome.WRONG_TURN:
        retry_after = retry_after_seconds(float(data["wait"]))
        return RedeemResult(
            outcome, data["token"], position=int(data["position"]), retry_after=retry_after
        )
    return RedeemResult(outcome)
