"""How the API serves connections: one greenlet each, so a held stream or a slow client costs
memory, never an OS thread.

gunicorn's ``gevent`` worker runs every connection in a greenlet on one event loop per
process; redis-py and psycopg 3 wait on their sockets cooperatively once the standard library
is patched (``gevent.monkey.patch_all()``, the first thing ``python -m yardmaster.api`` does).
:class:`ApiWorker` adds what the stock worker lacks for clients that trickle, with one read
timeout (``YARDMASTER_API_READ_TIMEOUT``, 10 s by default):

- a request whose line and headers have not all arrived within it is answered ``408`` (an
  idle keep-alive connection that sent nothing is simply closed);
- a request body that stalls for it, or that still averages under
  :data:`MIN_BODY_BYTES_PER_SECOND` once it has passed, ends the request with ``408`` (through
  :class:`BodyDeadline`, the WSGI side of the rule) and the connection with it;
- any write waits at most about as long, so a client that stops reading its stream is dropped;
- once the worker is asked to stop (SIGTERM), a connection that waits for its next request and
  has sent no byte of it for :data:`STOPPING_IDLE_SECONDS` is closed (an idle keep-alive
  connection, or one that connected and sent nothing): gunicorn's gevent worker waits for every
  connection before it exits, and would otherwise wait for these until the read timeout.
"""

from __future__ import annotations

import contextlib
import errno
import json
import socket
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import RequestTimeout

from yardmaster.api.contentpolicy import NOTHING
from yardmaster.api.problems import PROBLEM_MEDIA_TYPE, bounded

#: A request body must average at least this once the read timeout has passed.
MIN_BODY_BYTES_PER_SECOND = 1024
#: After SIGTERM, a connection that has waited this long for a request without receiving a byte
#: of it is closed (a request that had begun is still served, with ``Connection: close``).
STOPPING_IDLE_SECONDS = 0.5


class TooSlowError(ConnectionResetError):
    """A client sent too little for too long; gunicorn closes such a connection quietly, and
    :class:`BodyDeadline` answers it ``408`` when it happened while reading a body."""

    def __init__(self, why: str) -> None:
        super().__init__(errno.ECONNRESET, why)
        self.why = why


def gevent_is_active() -> bool:
    """True in a process whose standard library gevent has patched (the API under gunicorn)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's open-file limit towards ``wanted`` (up to the hard limit); return
    the limit now in force. Every connection holds a file descriptor."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        soft = ceiling
    return int(soft)


class BodyDeadline:
    """WSGI middleware: a request body the server gave up on (:class:`TooSlowError`, or any
    socket error while reading it) ends the request with ``408 Request Timeout``, and the
    connection with it (the rest of the body will never be read)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("CONTENT_LENGTH") in (None, "", "0") and "chunked" not in environ.get(
            "HTTP_TRANSFER_ENCODING", ""
        ):
            return self.app(environ, start_response)
        # gunicorn's response (start_response is its method): told to close when a body fails
        response = getattr(start_response, "__self__", None)
        environ["wsgi.input"] = _GuardedInput(environ, getattr(response, "force_close", None))
        return self.app(environ, start_response)


class _GuardedInput:
    """A request body stream whose socket errors become ``408`` (see :class:`BodyDeadline`)."""

    def __init__(self, environ: dict[str, Any], close: Callable[[], None] | None) -> None:
        self._stream, self._close = environ["wsgi.input"], close

    def read(self, size: int | None = -1) -> bytes:
        return self._guard(self._stream.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._guard(self._stream.readline, size)

    def __iter__(self) -> _GuardedInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def _guard(self, read: Callable[[Any], bytes], size: int | None) -> bytes:
        try:
            return read(size)
        except OSError as exc:
            if self._close is not None:
                self._close()  # the rest of the body will never be read: close after answering
            why = exc.why if isinstance(exc, TooSlowError) else "the request body stopped"
            raise RequestTimeout(f"{why}; send the request again, faster") from None


#: The connection state of the worker serving this process (set when the worker starts).
_CONNECTIONS: list[Any] = []


def end_request_on_hangup() -> Callable[[], None] | None:
    """End the current request (its greenlet is killed, so the response's ``close`` runs) as
    soon as its client closes the connection: a stream never reads its socket, so otherwise
    only its next write would tell. Returns the function that stops watching; ``None`` when
    not served by :class:`ApiWorker`."""
    if not _CONNECTIONS or _CONNECTIONS[0].client is None:
        return None
    import gevent
    from gevent import get_hub

    serving = gevent.getcurrent()
    raw = _CONNECTIONS[0].client._sock  # the OS socket under gevent's
    watcher = get_hub().loop.io(raw.fileno(), 1)  # 1: readable (data, end of file or error)

    def readable() -> None:
        try:
            peeked = raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return  # nothing after all
        except OSError:
            peeked = b""  # reset: gone as well
        watcher.stop()
        if not peeked:  # end of file: the client went away
            gevent.kill(serving)  # does not wait: this runs in the event loop itself

    watcher.start(readable)
    return watcher.stop  # type: ignore[no-any-return]


def _problem_bytes(status: int, title: str, detail: str) -> bytes:
    """A whole HTTP answer carrying a problem document, for the server to write itself."""
    document = {"type": "about:blank", "title": title, "status": status}
    if detail:
        document["detail"] = bounded(detail)
    body = json.dumps(document).encode()
    head = (
        f"HTTP/1.1 {status} {title}\r\nConnection: close\r\n"
        f"Content-Type: {PROBLEM_MEDIA_TYPE}\r\nContent-Length: {len(body)}\r\n"
        f"X-Content-Type-Options: nosniff\r\nContent-Security-Policy: {NOTHING}\r\n"
        "Referrer-Policy: no-referrer\r\n\r\n"
    )
    return head.encode("latin-1") + body


def write_problem(sock: Any, status: int, reason: str, message: str) -> None:
    """gunicorn's ``util.write_error``, answering with a problem document instead of its HTML
    page: what gunicorn refuses before the API sees the request (a request line over
    ``limit_request_line``: 414; a header over ``limit_request_field_size`` or too many: 431;
    a malformed request: 400) is answered like everything else."""
    from gunicorn.util import write_nonblock

    write_nonblock(sock, _problem_bytes(status, reason, message))


def _make_worker_class() -> type:
    """gunicorn's gevent worker with the read deadlines above (built on first use: importing
    gunicorn's gevent worker imports gevent)."""
    import gevent
    import gunicorn.util
    from gevent.local import local
    from gunicorn.workers.ggevent import GeventWorker

    # every error page gunicorn writes goes through util.write_error (workers/base.py)
    gunicorn.util.write_error = write_problem

    class _Connection(local):  # type: ignore[misc]
        """What the worker knows of the connection its current greenlet serves."""

        client: Any = None
        received = 0  # bytes read since the current request began
        body_since: float | None = None  # when the app began handling the current request

    class _WatchedSocket:
        """A client socket that counts what it receives (to tell a slow request from an
        idle keep-alive connection) and ends a body that trickles."""

        def __init__(
            self, sock: Any, connection: _Connection, read_timeout: float, idle: dict[Any, Any]
        ) -> None:
            self._sock, self._connection, self._timeout = sock, connection, read_timeout
            self._idle = idle

        def recv(self, size: int, *flags: int) -> bytes:
            try:
                data: bytes = self._sock.recv(size, *flags)
            except TimeoutError:
                raise TooSlowError(f"no byte arrived for {self._timeout:g} s") from None
            connection = self._connection
            if data and not connection.received and connection.body_since is None:
                self._idle.pop(gevent.getcurrent(), None)  # a request began: no longer idle
            connection.received += len(data)
            if connection.body_since is not None:
                elapsed = time.monotonic() - connection.body_since
                if elapsed > self._timeout and (
                    connection.received < elapsed * MIN_BODY_BYTES_PER_SECOND
                ):
                    raise TooSlowError(
                        f"the request body arrived at {connection.received / elapsed:.0f} "
                        f"bytes/s, under the {MIN_BODY_BYTES_PER_SECOND} this server waits for"
                    )
            return data

        def sendall(self, data: bytes, *flags: int) -> None:
            try:
                self._sock.sendall(data, *flags)
            except TimeoutError:
                raise TooSlowError(f"the client read nothing for {self._timeout:g} s") from None

        def sendfile(self, *args: Any, **kwargs: Any) -> int:
            try:
                sent: int = self._sock.sendfile(*args, **kwargs)
            except TimeoutError:
                raise TooSlowError(f"the client read nothing for {self._timeout:g} s") from None
            return sent

        def __getattr__(self, name: str) -> Any:
            return getattr(self._sock, name)

    class _RequestHeadDeadline:
        """The line and headers of the next request must arrive within the read timeout;
        until its first byte arrives, the connection counts as idle (see :meth:`end_if_idle`)."""

        def __init__(self, worker: ApiWorker) -> None:
            self.worker = worker
            self.timeout = gevent.Timeout(worker.read_timeout)

        def __enter__(self) -> None:
            self.worker.connection.received = 0
            self.worker.connection.body_since = None
            self.timeout.start()
            self.worker.idle[gevent.getcurrent()] = (self, time.monotonic())

        def end_if_idle(self, serving: Any) -> None:
            """In the event loop: end the wait of ``serving`` (a connection's greenlet) as if
            the deadline had passed, if it still waits with nothing received: the connection
            closes quietly."""
            entry = self.worker.idle.get(serving)
            if entry is not None and entry[0] is self:
                serving.throw(self.timeout)

        def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
            self.worker.idle.pop(gevent.getcurrent(), None)
            self.timeout.close()
            if exc is not self.timeout:
                return False
            if self.worker.connection.received:  # a request began and did not finish
                self.worker.answer_timeout()
            return True  # the loop sees no request and closes the connection

    class ApiWorker(GeventWorker):  # type: ignore[misc]
        read_timeout = 10.0

        def init_process(self) -> None:
            self.connection = _Connection()
            #: greenlet -> (its head deadline, since when) of each connection waiting for a
            #: request of which nothing arrived yet
            self.idle: dict[Any, tuple[_RequestHeadDeadline, float]] = {}
            self._ending_idle: Any = None
            _CONNECTIONS[:] = [self.connection]
            super().init_process()

        def handle_exit(self, sig: Any, frame: Any) -> None:
            # SIGTERM: gunicorn stops accepting and waits for every connection to end, the
            # idle ones included; these are closed instead (see end_idle_connections)
            super().handle_exit(sig, frame)
            if self._ending_idle is None:
                self._ending_idle = gevent.spawn(self.end_idle_connections)

        def end_idle_connections(self) -> None:
            """Until the worker exits: close each connection that has waited
            :data:`STOPPING_IDLE_SECONDS` for a request without receiving a byte of it."""
            loop = gevent.get_hub().loop
            while True:
                now = time.monotonic()
                for serving, (deadline, since) in list(self.idle.items()):
                    if now - since >= STOPPING_IDLE_SECONDS:
                        # from the event loop, which re-checks: the connection may have
                        # received its request meanwhile, and is then served
                        loop.run_callback(deadline.end_if_idle, serving)
                gevent.sleep(STOPPING_IDLE_SECONDS / 5)

        def handle(self, listener: Any, client: Any, addr: Any) -> None:
            # every read and write waits at most this (a little more than a request head may
            # take, so that a head that trickles in is answered 408 first)
            client.settimeout(self.read_timeout + 1.0)
            self.connection.client = client
            watched = _WatchedSocket(client, self.connection, self.read_timeout, self.idle)
            # AsyncWorker's, not GeventWorker's (which would make the socket block forever)
            super(GeventWorker, self).handle(listener, watched, addr)

        def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> bool:
            self.connection.received = 0
            self.connection.body_since = time.monotonic()  # its body, if any, comes now
            try:
                handled: bool = super().handle_request(listener_name, req, sock, addr)
            finally:
                self.connection.body_since = None
            return handled

        def timeout_ctx(self) -> _RequestHeadDeadline:
            return _RequestHeadDeadline(self)

        def answer_timeout(self) -> None:
            detail = f"the request was not complete within {self.read_timeout:g} s"
            with contextlib.suppress(OSError):  # the client may be gone already
                self.connection.client.sendall(_problem_bytes(408, "Request Timeout", detail))

    return ApiWorker


#: Filled on first use by :func:`worker_class`.
_WORKER_CLASS: list[type] = []


def worker_class() -> type:
    """The gunicorn worker class serving the API."""
    if not _WORKER_CLASS:
        _WORKER_CLASS.append(_make_worker_class())
    return _WORKER_CLASS[0]
