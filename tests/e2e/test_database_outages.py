"""A busy or unreachable database is waited out by every process, never an exit.

A 30 s outage in the middle of a file day, a running import and a running work job: on
SQLite (the embedded default) an outage is another process holding the write lock, here the
test itself holding ``BEGIN EXCLUSIVE``. Every process waits it out (one log line each, no
exit); meanwhile the API answers writes with 503 and Retry-After within its bound, and
/readyz stays ready, saying the database is busy. Afterwards the file day is committed
exactly once, the import's rows are all there once, and both jobs finished with no failed
attempt.

A database that is down when a process starts is waited for (the API serves meanwhile,
/readyz answering 503); the process carries on once it answers, or stops cleanly on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import redis
import requests
from sqlalchemy.engine import make_url

from e2e.stack import Start, make_stack
from support import eventually, free_port
from yardmaster.shared.db import make_engine
from yardmaster.shared.fileclaims import FileClaims
from yardmaster.shared.heartbeat import live_processes
from yardmaster.shared.migrate import upgrade_to_head

OUTAGE_SECONDS = 30.0
#: The API's bound on waiting for the database (YARDMASTER_DATABASE_BUSY_TIMEOUT), seconds.
API_BOUND = 2.0
IMPORT_ROWS = 400_000
FILES_IN_A_DAY = 96


def write_polls(path: Path, rows: int) -> Path:
    with open(path, "w") as handle:
        handle.write("store_id,status,timestamp_utc\n")
        for n in range(rows):
            handle.write(f"s{n},active,2023-01-2{n % 7} 10:{n % 60:02d}:00.000000 UTC\n")
    return path


def done_files(redis_url: str, bucket: Path) -> int:
    return len(FileClaims(redis.Redis.from_url(redis_url), bucket).done())


def query(database: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(database, timeout=30) as connection:
        return connection.execute(sql).fetchall()


def test_file_workers_an_import_and_a_work_job_wait_out_a_30_s_outage_then_finish_exactly_once(
    start: Start, redis_url: str, tmp_path: Path
) -> None:
    database = tmp_path / "yardmaster.db"
    database_url = f"sqlite:///{database}"
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    engine.dispose()
    settings = {"redis_url": redis_url, "database_url": database_url}
    stack = make_stack(
        start, redis_url, database_url, workers=2, database_busy_timeout=str(API_BOUND)
    )
    bucket = tmp_path / "bucket"
    file_workers = [
        start(
            "yardmaster.file_worker",
            *("--dir", str(bucket), "--name", name, "--seconds-in-min", "0.01"),
            **settings,
        )
        for name in ("fw-1", "fw-2")
    ]
    for worker in file_workers:
        worker.wait_for_output("watching")
    simulator = start(
        "yardmaster.simulator", "--dir", str(bucket), "--seconds-in-min", "0.01", **settings
    )
    eventually(lambda: done_files(redis_url, bucket) >= 3, 60, "the file day under way")
    work_id = stack.work(10)
    with open(write_polls(tmp_path / "polls.csv", IMPORT_ROWS), "rb") as handle:
        response = requests.post(
            f"{stack.base}/imports",
            data={"table": "store_status", "mode": "append"},
            files={"file": ("polls.csv", handle)},
            timeout=60,
        )
    assert response.status_code == 202, response.text
    import_id = response.json()["id"]
    stack.eventually_progress(work_id, 0.01)
    stack.eventually_progress(import_id, 0.01)
    everyone = [*stack.workers, *file_workers]

    lock = sqlite3.connect(database, timeout=30, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    began = time.monotonic()
    try:
        assert stack.job(import_id)["state"] == "running"
        started = time.monotonic()
        refused = stack.post("/work", {"execution_time": 1})
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "2"
        assert time.monotonic() - started < API_BOUND + 3
        ready = requests.get(f"{stack.base}/readyz", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["checks"]["database"]["state"] == "busy"
        for process in everyone:
            process.wait_for_output("database busy (database is locked)", timeout=OUTAGE_SECONDS)
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - began)))  # the outage itself
        assert [p.popen.poll() for p in everyone] == [None] * len(everyone)
    finally:
        lock.rollback()
        lock.close()

    assert simulator.wait(timeout=60) == 0
    eventually(lambda: done_files(redis_url, bucket) == FILES_IN_A_DAY, 120, "the day done")
    imported = stack.wait_for(import_id, "finished", timeout=120)
    worked = stack.wait_for(work_id, "finished", timeout=60)
    assert (imported["failures"], worked["failures"]) == (0, 0)
    assert (imported["attempt"], worked["attempt"]) == (1, 1)
    eventually(
        lambda: (
            query(database, "SELECT state, count(*) FROM file_ledger GROUP BY state")
            == [("done", FILES_IN_A_DAY)]
        ),
        30,
        "every file done once in the ledger",
    )
    # the simulator's files carry no polls here: every row is the import's, each once
    assert query(database, "SELECT count(*), count(DISTINCT store_id) FROM store_status") == [
        (IMPORT_ROWS, IMPORT_ROWS)
    ]
    assert query(database, "SELECT count(*) FROM visible_store_status") == [(IMPORT_ROWS,)]
    for process in everyone:
        assert "database answers again" in process.output()
        assert process.stop() == 0
    logs = {path.name: path.read_text(errors="replace") for path in tmp_path.glob("*.log")}
    assert {name for name, text in logs.items() if "Traceback" in text} == set()


#: Each long-running process with its arguments, and what it prints once it works.
STARTS = {
    "yardmaster.report_worker": [],
    "yardmaster.file_worker": ["--seconds-in-min", "0.01"],
    "yardmaster.simulator": ["--seconds-in-min", "1"],
}
WAITING = "database unreachable (connection failed"


@pytest.mark.parametrize("module", sorted(STARTS))
def test_a_worker_started_while_its_database_is_unreachable_waits_then_stops_cleanly(
    start: Start, redis_url: str, module: str, tmp_path: Path
) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/yardmaster"
    process = start(module, *STARTS[module], redis_url=redis_url, database_url=unreachable)

    process.wait_for_output(WAITING)
    assert process.output().count(WAITING) == 1  # one line, however long it waits
    process.signal(signal.SIGTERM)

    assert process.wait(timeout=30) == 0
    assert "Traceback" not in process.output()


def test_the_api_started_while_its_database_is_unreachable_serves_and_is_not_ready(
    start: Start, redis_url: str
) -> None:
    port = free_port()
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/yardmaster"
    api = start(
        "yardmaster.api", "--port", str(port), redis_url=redis_url, database_url=unreachable
    )
    base = f"http://127.0.0.1:{port}"

    def readiness() -> tuple[int, str] | None:
        try:
            response = requests.get(f"{base}/readyz", timeout=5)
        except requests.ConnectionError:
            return None
        return response.status_code, response.json()["detail"]

    status, detail = eventually(readiness, 30, "the API serving")
    assert status == 503
    assert "database unreachable" in detail
    assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
    assert api.stop() == 0


class Forwarder:
    """A port where a database server appears: refused until :meth:`open`, then every
    connection is relayed to ``target`` (the test's PostgreSQL)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.server: socket.socket | None = None

    def open(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()


@pytest.mark.skipif(
    not os.environ.get("YARDMASTER_TEST_DATABASE_URL"), reason="PostgreSQL only: not configured"
)
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_processes_started_before_their_database_carry_on_once_it_answers(
    start: Start, redis_url: str, migrated_database_url: str, tmp_path: Path
) -> None:
    real = make_url(migrated_database_url)
    forwarder = Forwarder((real.host or "127.0.0.1", real.port or 5432))
    late = real.set(port=forwarder.port).render_as_string(hide_password=False)
    port = free_port()
    settings = {"redis_url": redis_url, "database_url": late}
    workers = [
        start(module, *STARTS[module], **settings)
        for module in ("yardmaster.report_worker", "yardmaster.file_worker")
    ]
    start("yardmaster.api", "--port", str(port), **settings)
    for worker in workers:
        worker.wait_for_output(WAITING)

    forwarder.open()
    try:
        ready = lambda: requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).ok  # noqa: E731
        eventually(ready, 30, "/readyz 200 once the database answers")
        services = lambda: {p["service"] for p in live_processes(redis.Redis.from_url(redis_url))}  # noqa: E731
        eventually(lambda: {"report-worker", "file-worker"} <= services(), 60, "workers live")
        for worker in workers:
            worker.wait_for_output("database answers again")
            assert worker.stop() == 0
    finally:
        forwarder.close()
