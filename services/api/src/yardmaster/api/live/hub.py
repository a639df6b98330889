"""The hub of one API process: its one Redis subscription, its channels, who may watch.

Every live view of the process (job events, the turn queue, the file pipeline) reads from a
:class:`~.channel.Channel` that the hub's single reader fills from Redis pub/sub, so a
thousand viewers cost one Redis connection, not a thousand. The reader outlives Redis
outages: it marks each channel with an :class:`~.channel.Outage`, retries with backoff, and
marks it :class:`~.channel.Restored` once subscribed again. The same thread runs the
process's periodic tasks (about once a second), such as the turn queue's expiry, for as long
as someone watches.

Admission: a process serves at most ``per_process`` streams, and at most ``per_address``
from one client address; past either, :meth:`Hub.admit` raises :class:`FullError` and the
caller answers ``503`` with ``Retry-After``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError

from yardmaster.api.live.channel import Channel, Outage, Restored

log = logging.getLogger(__name__)

#: The reader waits this long for a message before it looks at the clock and the stop flag.
POLL_SECONDS = 1.0
#: Backoff between attempts to subscribe again while Redis is away: from .. to (seconds).
BACKOFF_SECONDS = (0.5, 5.0)
#: The first stream of a process waits at most this for the subscription to be in place.
FIRST_SUBSCRIPTION_SECONDS = 2.0
#: Retry-After (seconds) of a stream refused for a full process or address.
FULL_RETRY_AFTER_SECONDS = 5


class FullError(Exception):
    """No stream may open now; ``reason`` says which cap, ``retry_after`` when to try again."""

    def __init__(self, reason: str, retry_after: int = FULL_RETRY_AFTER_SECONDS) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


@dataclass(frozen=True)
class Limits:
    """How many streams one process serves, in all and per client address."""

    per_process: int
    per_address: int


@dataclass
class _Task:
    every: float
    run: Callable[[], object]
    watched: str | None
    due: float = 0.0


@dataclass(frozen=True)
class Source:
    """A Redis channel relayed into the hub's channel ``into``; ``decode`` turns a raw
    message into the item streams read (once per message, whatever the number of readers)."""

    into: str
    decode: Callable[[bytes], Any]


class Hub:
    """One process's subscription to every ``sources`` channel (by Redis channel name: the
    sources it feeds, often one), relayed to its streams; a message that cannot be decoded is
    dropped (and logged)."""

    def __init__(
        self,
        client: redis.Redis,
        sources: dict[str, list[Source]],
        limits: Limits,
        stopping: Callable[[], bool],
    ) -> None:
        self.client, self.limits, self._process_stopping = client, limits, stopping
        self._closed = False
        self._sources = sources
        self.channels: dict[str, Channel[Any]] = {
            source.into: Channel(source.into) for fed in sources.values() for source in fed
        }
        self._watching: Counter[str] = Counter()  # channel -> open streams
        self._by_address: Counter[str] = Counter()
        self._open = 0
        self._lock = threading.Lock()
        self._tasks: list[_Task] = []
        self._reader: threading.Thread | None = None
        self._first_attempt = threading.Event()  # set once the reader first tried to subscribe
        self.outage: Outage | None = None

    # -- who may watch ----------------------------------------------------------------------

    def admit(self, channel: str, address: str) -> Callable[[], None]:
        """Count one more stream of ``address`` on ``channel``; return the function that
        counts it out again (once, however often it is called). Raise :class:`FullError`
        when a cap is reached."""
        self._count_in(channel, address)
        self._start_reader()
        left = False

        def release() -> None:
            nonlocal left
            if not left:
                left = True
                self._count_out(channel, address)

        return release

    def _count_in(self, channel: str, address: str) -> None:
        with self._lock:
            if self._open >= self.limits.per_process:
                raise FullError(
                    f"this server process already serves {self._open} live streams, its limit"
                )
            if self._by_address[address] >= self.limits.per_address:
                raise FullError(
                    f"{address} already has {self._by_address[address]} live streams open "
                    "on this server process, its limit"
                )
            self._open += 1
            self._by_address[address] += 1
            self._watching[channel] += 1

    def _count_out(self, channel: str, address: str) -> None:
        with self._lock:
            self._open -= 1
            self._watching[channel] -= 1
            self._by_address[address] -= 1
            if self._by_address[address] <= 0:
                del self._by_address[address]

    @property
    def open_streams(self) -> int:
        """Streams open on this process now."""
        return self._open

    def close(self) -> None:
        """End every stream and the relay (as when the process stops)."""
        self._closed = True
        for channel in self.channels.values():
            channel.close()

    def _stopping(self) -> bool:
        return self._closed or self._process_stopping()

    # -- periodic tasks ---------------------------------------------------------------------

    def every(self, seconds: float, task: Callable[[], object], while_watched: str) -> None:
        """Run ``task`` in the reader about every ``seconds`` while ``while_watched`` has
        streams (its errors are logged, never raised)."""
        self._tasks.append(_Task(seconds, task, while_watched))

    def _run_due_tasks(self) -> None:
        now = time.monotonic()
        for task in self._tasks:
            if task.due > now or (task.watched and not self._watching[task.watched]):
                continue
            task.due = now + task.every
            try:
                task.run()
            except Exception as exc:  # a periodic task must not end the relay
                log.warning("live views: periodic task failed (%s)", exc)

    # -- the relay ----------------------------------------------------------------------------

    def _start_reader(self) -> None:
        """Start the relay if it is not running; the first stream waits until it subscribed
        (or failed to), so that nothing published after the stream took its position is lost."""
        with self._lock:
            if self._reader is None or not self._reader.is_alive():
                self._reader = threading.Thread(target=self._relay, name="live-hub", daemon=True)
                self._reader.start()
        self._first_attempt.wait(FIRST_SUBSCRIPTION_SECONDS)

    def _relay(self) -> None:
        """Subscribe and relay until the process stops; wait out Redis outages."""
        backoff = BACKOFF_SECONDS[0]
        while not self._stopping():
            try:
                self._relay_while_subscribed()
                backoff = BACKOFF_SECONDS[0]
            except RedisError as exc:
                self._first_attempt.set()
                self._mark_outage(exc)
                self._wait(backoff)
                backoff = min(backoff * 2, BACKOFF_SECONDS[1])
            except Exception:  # a bug must not end every live view of the process for good
                log.exception("live views: the relay failed; starting it again")
                self._wait(backoff)
        for channel in self.channels.values():
            channel.close()

    def _relay_while_subscribed(self) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(*self._sources)
            # Redis answers a connection's commands in order: once the PING is answered, the
            # subscription is in place and every later PUBLISH reaches this process
            pubsub.ping()
            while not self._stopping():
                message = pubsub.get_message(timeout=POLL_SECONDS)
                if message is not None and message["type"] == "pong":
                    self._mark_restored()
                    self._first_attempt.set()
                elif message is not None:
                    self._relay_message(message)
                self._run_due_tasks()
        finally:
            pubsub.close()

    def _relay_message(self, message: dict[str, Any]) -> None:
        if message["type"] != "message":
            return
        name = message["channel"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        for source in self._sources.get(name, ()):
            try:
                item = source.decode(message["data"])
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("live views: dropped an undecodable message on %s (%s)", name, exc)
                continue
            if item is not None:  # None: nothing any stream shows
                self.channels[source.into].append(item)

    def publish_local(self, channel: str, item: Any) -> None:
        """Append an item made in this process (not from Redis) to ``channel``."""
        self.channels[channel].append(item)

    def _mark_outage(self, exc: RedisError) -> None:
        if self.outage is not None:
            return
        self.outage = Outage(time.time())
        log.warning("live views: Redis unreachable (%s); streams stay open and wait", exc)
        for channel in self.channels.values():
            channel.append(self.outage)

    def _mark_restored(self) -> None:
        if self.outage is None:
            return
        restored = Restored(self.outage.since)
        self.outage = None
        log.info("live views: Redis reachable again; streams get a fresh picture")
        for channel in self.channels.values():
            channel.append(restored)

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping() and time.monotonic() < deadline:
            time.sleep(min(0.2, deadline - time.monotonic()))
