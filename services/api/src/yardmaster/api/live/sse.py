"""Server-Sent Events: how one live view is written to its client.

A stream opens with its retry hint and an opening picture, then follows a
:class:`~.channel.Channel` from the position it had when the picture was taken (nothing is
missed, and the render skips what the picture already shows). It sends a comment when it
has been quiet for the keep-alive interval (proxies keep the connection, and a client that
went away is noticed), and ends when the process stops, or after an ``ended`` event saying why
when an item of its channel ends it (its customer was deactivated: :mod:`.revocation`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Response
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from yardmaster.api.live.channel import Channel, Read
from yardmaster.api.live.hub import FullError
from yardmaster.api.problems import problem
from yardmaster.api.serving import end_request_on_hangup

log = logging.getLogger(__name__)

#: Milliseconds a browser waits before reconnecting after the stream drops.
RETRY_MS = 2000
#: What a stream's ``render`` is given when it fell too far behind: items were lost to it.
LAGGED = "lagged"

#: Turns one channel item into the text to send (often nothing: the stream's filter).
Render = Callable[[Any], Iterable[str]]


def frame(event: str, data: str, event_id: str | int | None = None) -> str:
    """One SSE message (``data`` must be one line, as JSON is)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


def ended(reason: str) -> str:
    """The last message of a stream the server ends: ``event: ended``, ``{"reason": ...}``."""
    return frame("ended", json.dumps({"reason": reason}))


def _never(_item: Any) -> str | None:
    return None


def refused(exc: FullError) -> Response:
    """``503`` with ``Retry-After``: no stream may open now."""
    response = problem(503, "Service Unavailable", f"no live stream now: {exc.reason}")
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def unavailable(why: str, retry_after: int = 2) -> Response:
    """``503`` with ``Retry-After`` for a stream whose opening picture cannot be made."""
    response = problem(503, "Service Unavailable", why)
    response.headers["Retry-After"] = str(retry_after)
    return response


@dataclass(frozen=True)
class Feed:
    """What one stream sends: its ``opening`` picture, then what ``render`` makes of each item
    of ``channel`` after ``position`` (noted before the picture was taken), a keep-alive
    after ``keepalive`` quiet seconds, until ``stopping()`` or an item for which ``ends``
    gives a reason (sent in a last ``ended`` event; nothing of that item or after it is)."""

    channel: Channel[Any]
    position: int
    opening: list[str]
    render: Render
    keepalive: float
    stopping: Callable[[], bool]
    ends: Callable[[Any], str | None] = _never


class Stream:
    """The body of a stream response: iterating it writes the stream; closing it (the server
    always does, also when the client left before the first byte) ends its admission."""

    def __init__(self, feed: Feed, release: Callable[[], None]) -> None:
        self._messages = _follow(feed)
        self._release = release
        self._stop_watching: Callable[[], None] | None = None

    def __iter__(self) -> Iterator[str]:
        # a client that leaves frees its slot at once, not at the next keep-alive
        self._stop_watching = end_request_on_hangup()
        return self._messages

    def close(self) -> None:
        try:
            if self._stop_watching is not None:
                self._stop_watching()
            self._messages.close()
        finally:
            self._release()

    def response(self) -> Response:
        """The streaming HTTP response (never buffered by proxies or caches)."""
        return Response(
            self,
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


def _rendered(read: Read[Any], feed: Feed) -> tuple[list[str], bool]:
    """What to send of ``read``, and whether the stream ends after it."""
    chunks = list(feed.render(LAGGED)) if read.lagged else []
    for item in read.items:
        if (reason := feed.ends(item)) is not None:
            log.info("live stream ended: %s", reason)
            return [*chunks, ended(reason)], True
        chunks.extend(feed.render(item))
    return chunks, read.closed


def _follow(feed: Feed) -> Generator[str, None, None]:
    yield f"retry: {RETRY_MS}\n: connected\n\n" + "".join(feed.opening)
    last_sent, position, keepalive = time.monotonic(), feed.position, feed.keepalive
    while not feed.stopping():
        wait = max(0.0, last_sent + keepalive - time.monotonic())
        read = feed.channel.read(position, timeout=wait)
        position = read.position
        try:
            chunks, last = _rendered(read, feed)
        except (RedisError, SQLAlchemyError) as exc:  # a fresh picture cannot be made now
            log.warning("live stream ended: %s; its client reconnects", exc)
            return
        if chunks:
            yield "".join(chunks)
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent >= keepalive:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        if last:
            return
