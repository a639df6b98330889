"""Redis connections that fail fast and reconnect by themselves."""

from __future__ import annotations

import logging
import select
import socket
import threading
from queue import Empty
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError, RedisError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_when_event_set,
    wait_exponential,
)

log = logging.getLogger(__name__)

#: Longest pause between two reconnection attempts.
MAX_BACKOFF_SECONDS = 10.0


def make_redis(url: str, connect_timeout: float = 5.0, shared_by: int | None = None) -> redis.Redis:
    """A client for ``url`` whose pool reconnects on the next command after Redis comes back.

    Connecting and every command time out, so a dead server yields an error instead of a hang.
    ``shared_by``: at most this many connections, which callers beyond it wait for (up to the
    connect timeout) instead of failing: for a process serving many requests at once.
    """
    options: dict[str, Any] = {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": connect_timeout + 25.0,
        "health_check_interval": 15,
        "decode_responses": False,
    }
    if shared_by is not None:
        pool = SharedPool.from_url(
            url, max_connections=shared_by, timeout=connect_timeout, **options
        )
        return redis.Redis.from_pool(pool)  # closing the client closes its pool
    return redis.Redis.from_url(url, **options)


class SharedPool(redis.BlockingConnectionPool):
    """A bounded pool whose callers wait for a free connection, and hand one out cheaply.

    redis-py's own ``get_connection`` inspects its arguments for deprecated ones and polls
    the socket for unread data on every command: under gevent that poll is a round through
    the event loop, and the two cost about a third of a small command. This one checks the
    socket with one non-blocking peek instead: a connection the server closed (Redis
    restarted) or that holds unread data is connected again before it is handed out.
    """

    def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        self._checkpid()
        try:
            connection = self.pool.get(block=True, timeout=self.timeout)
        except Empty:
            raise redis.ConnectionError("No connection available.") from None
        if connection is None:  # a free slot: connect a new one
            connection = self.make_connection()  # type: ignore[no-untyped-call]
        elif not _fit_to_send(connection):
            connection.disconnect()
        try:
            connection.connect()
        except BaseException:
            self.release(connection)  # type: ignore[no-untyped-call]
            raise
        return connection


def _fit_to_send(connection: Any) -> bool:
    """True if ``connection`` is not connected yet, or is open with nothing unread."""
    sock = getattr(connection, "_sock", None)  # redis-py's socket (None: not connected)
    if sock is None:
        return True
    raw = getattr(sock, "_sock", None)  # under gevent: the non-blocking OS socket it wraps
    if raw is None:  # a standard socket would wait for its timeout before a peek: poll it
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        if not poller.poll(0):
            return True
        raw = sock
    try:
        raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True  # open, and nothing waiting: the usual case
    except ValueError:
        return True  # a TLS socket cannot be peeked at: the client's retry policy covers it
    except OSError:
        return False
    return False  # end of file (the server closed it) or a stray reply


def run_script_once(client: redis.Redis, script: Script, keys: list[Any], args: list[Any]) -> Any:
    """Run a registered Lua ``script`` (EVALSHA) exactly once, or raise :class:`RedisError`.

    A script that changes state must not run twice because its answer was lost: redis-py's
    client would send it again on a new connection after a connection error (its default
    retry policy); this sends it once, on one pooled connection, and a lost answer is an
    error for the caller. It also skips the client's per-command bookkeeping, a large part of
    a short script's cost. A Redis that does not know the script yet (it restarted) gets it
    loaded and run, once.
    """
    pool = client.connection_pool
    connection: Any = pool.get_connection()
    try:
        connection.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
        return connection.read_response()
    except NoScriptError:
        pass  # nothing ran: load it below
    except (redis.ConnectionError, redis.TimeoutError):
        connection.disconnect()  # its state is unknown: never reused
        raise
    finally:
        pool.release(connection)
    script.sha = client.script_load(script.script)
    return client.evalsha(script.sha, len(keys), *keys, *args)


def redact(url: str) -> str:
    """``url`` without its password, for logs and error messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def wait_for_redis(client: redis.Redis, stop: threading.Event, what: str) -> bool:
    """Block until Redis answers PING, retrying with exponential backoff (0.5 s up to 10 s).

    Each failed attempt is logged once. Returns ``False`` if ``stop`` was set first (the
    process is shutting down), ``True`` once Redis answered.
    """

    def log_failure(state: RetryCallState) -> None:
        assert state.outcome is not None
        assert state.next_action is not None
        log.warning(
            "%s: Redis unreachable (%s); retrying in %.1f s",
            what,
            state.outcome.exception(),
            state.next_action.sleep,
        )

    def interruptible_sleep(seconds: float) -> None:
        stop.wait(seconds)

    retrying = Retrying(
        retry=retry_if_exception_type(RedisError),
        wait=wait_exponential(multiplier=0.5, max=MAX_BACKOFF_SECONDS),
        stop=stop_when_event_set(stop),
        before_sleep=log_failure,
        sleep=interruptible_sleep,
        reraise=False,
    )
    try:
        for attempt in retrying:
            with attempt:
                client.ping()
    except Exception:  # tenacity's RetryError: stopped while Redis was still down
        return False
    return not stop.is_set()
