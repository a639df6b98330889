"""The API as ``make run`` and Compose start it (default settings): held streams and slow
clients cost no thread, so nothing they do holds up anyone else."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests

from support import RedisServer, Starter, eventually, free_port, run_async
from yardmaster.shared.db import make_engine
from yardmaster.shared.migrate import upgrade_to_head

#: The read timeout of the default settings (YARDMASTER_API_READ_TIMEOUT).
READ_TIMEOUT = 10.0


@dataclass(frozen=True)
class Api:
    base: str
    database: Path  # its SQLite file

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def api(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One API with default settings on SQLite (this module's subject is the server, not the
    database backend) and the session's Redis."""
    folder = tmp_path_factory.mktemp("live")
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()  # a queue left full by another module would refuse every take
    database = folder / "yardmaster.db"
    engine = make_engine(f"sqlite:///{database}")
    upgrade_to_head(engine)
    engine.dispose()
    starter = Starter(folder)
    port = free_port()
    url = f"sqlite:///{database}"
    starter("yardmaster.api", "--port", str(port), redis_url=redis_server.url, database_url=url)
    base = f"http://127.0.0.1:{port}"
    eventually(lambda: requests.get(f"{base}/readyz", timeout=2).ok, 30, "API ready")
    yield Api(base, database)
    starter.close_all()


@dataclass
class Viewer:
    """A stream held from one address, which notes when it saw each of ``marks`` (in order)."""

    path: str
    address: str
    marks: tuple[bytes, ...]
    seen: list[asyncio.Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.seen = [asyncio.Event() for _ in self.marks]

    async def hold(self, port: int) -> None:
        local = (self.address, 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
        writer.write(f"GET {self.path} HTTP/1.1\r\nHost: api\r\n\r\n".encode())
        received = b""
        try:
            for mark, seen in zip(self.marks, self.seen, strict=True):
                while mark not in received:
                    chunk = await reader.read(65536)
                    if not chunk:
                        return
                    received += chunk
                received = received[received.index(mark) + len(mark) :]
                seen.set()
            await asyncio.Event().wait()  # held until cancelled
        finally:
            writer.close()


async def all_saw(viewers: list[Viewer], mark: int, timeout: float) -> None:
    await asyncio.wait_for(asyncio.gather(*(v.seen[mark].wait() for v in viewers)), timeout)


async def cancelled(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def healthz_seconds(base: str) -> float:
    began = time.monotonic()
    assert requests.get(f"{base}/healthz", timeout=1).ok
    return time.monotonic() - began


def test_300_viewers_are_held_while_healthz_answers_and_one_event_reaches_them_all(
    api: Api,
) -> None:
    async def scenario() -> None:
        # ten addresses each: every one stays under the default per-address cap
        queue = [
            Viewer("/queue/events", f"127.0.0.{2 + n % 10}", (b"event: snapshot", b"event: append"))
            for n in range(150)
        ]
        jobs = [
            Viewer("/jobs/events", f"127.0.0.{12 + n % 10}", (b": connected",)) for n in range(150)
        ]
        held = [asyncio.create_task(viewer.hold(api.port)) for viewer in queue + jobs]
        try:
            await all_saw(queue + jobs, 0, timeout=30)

            assert await asyncio.to_thread(healthz_seconds, api.base) < 1.0
            taken = await asyncio.to_thread(requests.post, f"{api.base}/queue/tokens", timeout=5)
            assert taken.status_code == 201

            await all_saw(queue, 1, timeout=30)
        finally:
            await cancelled(held)

    run_async(scenario)


async def trickle(port: int, head: bytes, body: bytes = b"") -> tuple[bytes, float]:
    """Send ``head`` whole (if ``body``) or byte by byte, then ``body`` a byte every 0.5 s;
    return the server's answer and when it came."""
    began = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    slow = body or head
    if body:
        writer.write(head)
    answer = asyncio.create_task(reader.read(4096))
    try:
        for byte in slow:
            if answer.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.5)
        return await asyncio.wait_for(answer, READ_TIMEOUT + 5), time.monotonic() - began
    finally:
        writer.close()


def test_requests_that_trickle_in_are_answered_408_and_hold_up_nobody(api: Api) -> None:
    async def scenario() -> list[tuple[bytes, float]]:
        port = api.port
        head = b"GET /healthz HTTP/1.1\r\nHost: api\r\nX-Padding: " + b"x" * 60 + b"\r\n\r\n"
        body_head = (
            b"POST /queue/redeem HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200\r\n\r\n"
        )
        slow = [asyncio.create_task(trickle(port, head)) for _ in range(20)] + [
            asyncio.create_task(trickle(port, body_head, b" " * 200)) for _ in range(20)
        ]
        await asyncio.sleep(2)
        for _ in range(10):  # while they trickle, everyone else is served at once
            assert await asyncio.to_thread(healthz_seconds, api.base) < 1.0
            await asyncio.sleep(0.2)
        return await asyncio.gather(*slow)

    answers = run_async(scenario)

    for answer, after in answers:
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"application/problem+json" in answer
        assert READ_TIMEOUT - 1 < after < READ_TIMEOUT + 5


def test_while_sqlite_is_locked_for_10_s_viewers_are_served_and_healthz_answers(
    api: Api,
) -> None:
    locked = threading.Event()
    unlocked: list[float] = []

    def hold_the_write_lock() -> None:  # what a long import commit does to everyone else
        connection = sqlite3.connect(api.database, timeout=30)
        connection.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(10)
        connection.rollback()
        unlocked.append(time.monotonic())
        connection.close()

    written: list[tuple[int, float]] = []

    def write() -> None:  # a request that must write: it waits for the lock (off the loop) up
        # to YARDMASTER_DATABASE_BUSY_TIMEOUT (5 s), then answers 503 with Retry-After
        answer = requests.post(f"{api.base}/sites", json={"name": "North"}, timeout=30)
        written.append((answer.status_code, time.monotonic()))

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    assert locked.wait(10)
    writer = threading.Thread(target=write)
    writer.start()

    async def scenario() -> None:
        marks = (b"event: snapshot", b"event: append")
        viewers = [Viewer("/queue/events", "127.0.0.40", marks) for _ in range(20)]
        held = [asyncio.create_task(viewer.hold(api.port)) for viewer in viewers]
        try:
            await all_saw(viewers, 0, timeout=5)
            taken = await asyncio.to_thread(requests.post, f"{api.base}/queue/tokens", timeout=5)
            assert taken.status_code == 201
            await all_saw(viewers, 1, timeout=5)
            while not unlocked:  # the whole time the lock is held
                assert await asyncio.to_thread(healthz_seconds, api.base) < 1.0
                await asyncio.sleep(0.25)
        finally:
            await cancelled(held)

    run_async(scenario)
    holder.join()
    writer.join(timeout=30)
    [(status, at)] = written
    assert status == 503
    assert at < unlocked[0]  # answered while the lock was still held: never a hang


def test_viewers_stay_connected_through_a_redis_restart_and_get_a_fresh_snapshot(
    tmp_path: Path,
) -> None:
    redis_server = RedisServer(tmp_path / "redis", persistent=True).start()
    database = f"sqlite:///{tmp_path / 'yardmaster.db'}"
    engine = make_engine(database)
    upgrade_to_head(engine)
    engine.dispose()
    starter = Starter(tmp_path)
    port = free_port()
    starter(
        "yardmaster.api", "--port", str(port), redis_url=redis_server.url, database_url=database
    )
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: requests.get(f"{base}/readyz", timeout=2).ok, 30, "API ready")
        assert requests.post(f"{base}/queue/tokens", timeout=5).status_code == 201

        with requests.get(f"{base}/queue/events", stream=True, timeout=30) as stream:
            lines = stream.iter_lines(decode_unicode=True)
            assert "event: snapshot" in until(lines, "event: snapshot")
            redis_server.stop()
            assert "Redis unreachable" in until(lines, ": Redis unreachable")
            redis_server.start()
            after_outage = until(lines, "event: snapshot")  # the stream never closed

        assert '"waiting": ["A00"]' in after_outage
    finally:
        starter.close_all()
        redis_server.stop()


def until(lines: Iterator[str], wanted: str) -> str:
    """The stream's lines up to the next one starting with ``wanted``, and the one after."""
    seen = []
    for line in lines:
        seen.append(line)
        if line.startswith(wanted):
            seen.append(next(lines))
            return "\n".join(seen)
    raise AssertionError(f"the stream ended before {wanted!r}:\n" + "\n".join(seen))


def test_a_viewer_that_leaves_frees_its_slot_at_once(api: Api) -> None:
    async def open_and_close(count: int) -> list[bytes]:
        async def one() -> bytes:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", api.port, local_addr=("127.0.0.60", 0)
            )
            writer.write(b"GET /jobs/events HTTP/1.1\r\nHost: api\r\n\r\n")
            status = await reader.readline()
            if b" 200 " in status:
                await reader.readuntil(b": connected")
            writer.close()
            return status

        return await asyncio.gather(*(one() for _ in range(count)))

    # a full address's worth (the default cap, 100 per worker process), left at once
    assert all(b" 200 " in status for status in run_async(lambda: open_and_close(100)))

    began = time.monotonic()
    again = eventually(
        lambda: (
            (answers := run_async(lambda: open_and_close(100)))
            and all(b" 200 " in status for status in answers)
        ),
        10,
        "the same address streaming again",
    )
    assert again
    assert time.monotonic() - began < 3  # not after a keep-alive (15 s) noticed the leavers
