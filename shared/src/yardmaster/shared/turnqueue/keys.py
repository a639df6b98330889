"""Redis key templates of the turn queue, all under ``yardmaster:turnqueue:``.

The whole queue is these keys; nothing is kept in a process (design: "state lives in Redis
only"), so every API process sees the same queue.
"""

from yardmaster.shared.keys import PREFIX as _YARDMASTER_PREFIX

PREFIX = _YARDMASTER_PREFIX + "turnqueue:"

#: Sorted set of the waiting token strings, scored by ticket: the lowest score is the head.
QUEUE = PREFIX + "queue"
#: Sorted set of strings that left the queue and wait to be issued again, scored by their index
#: (A00 = 0, ..., Z99 = 2599); the smallest goes out first.
RECYCLED = PREFIX + "recycled"
#: Index of the next string never issued yet (every smaller one is waiting or recycled).
CURSOR = PREFIX + "cursor"
#: Counter of tickets: each issue gets the next number, so a recycled string is a new ticket.
TICKETS = PREFIX + "tickets"
#: Hash of the clocks: ``head_since`` (when the head's time to redeem starts, in the future
#: while a viewer holds the window) and ``viewer_token``/``viewer_ticket``/``viewer_until``/
#: ``viewer_claim`` (the SHA-256 of the viewer's claim).
CLOCK = PREFIX + "clock"
#: Sorted set of strings that left the queue, scored by when: answered ``expired`` rather than
#: ``cheater`` while remembered (``Settings.remember_seconds``).
RETIRED = PREFIX + "retired"
#: Capped stream of queue events; the entry id of event ``n`` is ``n-0``.
EVENTS = PREFIX + "events"
#: Counter of event ids.
EVENT_IDS = PREFIX + "events:last-id"
#: Pub/sub channel on which every event is published (JSON) as it is appended to the stream.
EVENTS_CHANNEL = PREFIX + "events:live"
#: Hash of each waiting token string to ``"<claim SHA-256> <client IP>"`` of its issue: the
#: claim's hash proves ownership (the claim itself is never stored); the IP counts its share.
HOLDERS = PREFIX + "holders"
#: Hash of claim SHA-256 to the token string of its issue, for every issue waiting, viewing,
#: or that left and is still remembered (a stale claim is then known as the caller's own).
CLAIMS = PREFIX + "claims"
#: Sorted set of the claim hashes of issues that left the queue, scored by when: forgotten
#: (with their ``CLAIMS`` entry) ``Settings.remember_seconds`` later.
CLAIMS_LEFT = PREFIX + "claims:left"
#: Hash of client IP to the number of waiting tokens it took (absent: none).
ADDRESSES = PREFIX + "addresses"
#: Hash of one client IP's ban: ``reason``, ``since``, ``until`` (epoch seconds).
BAN = PREFIX + "ban:{ip}"
#: Hash of one client IP's wrong claims: ``count``, ``until`` (forgotten then).
STRIKES = PREFIX + "strikes:{ip}"

#: The keys every turn-queue script receives, in the order the scripts expect them.
STATE_KEYS = (
    QUEUE,
    RECYCLED,
    CURSOR,
    TICKETS,
    CLOCK,
    RETIRED,
    EVENTS,
    EVENT_IDS,
    HOLDERS,
    CLAIMS,
    CLAIMS_LEFT,
    ADDRESSES,
)


def ban_key(ip: str) -> str:
    """The ban record of one client IP."""
    return BAN.format(ip=ip)


def strikes_key(ip: str) -> str:
    """The wrong-claim count of one client IP."""
    return STRIKES.format(ip=ip)
