"""Benchmark: job control latency and import throughput (``make bench``).

Starts an API and one report worker (SQLite, a private Redis server) and measures, over
``--trials`` running jobs: pause (request -> paused), resume with an idle worker (request ->
running), cooperative stop (request -> stopped) and forced stop (a frozen job: from the end of
the stop grace period -> stopped). Then imports ``--rows`` generated store polls and compares
the rows/s with a plain ``pandas.read_csv`` + ``to_sql`` of the same file, on SQLite and,
when ``YARDMASTER_TEST_DATABASE_URL`` is set, on PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import pandas as pd
import redis
from sqlalchemy import create_engine, text

from e2e.test_data_jobs import write_polls
from support import PYTHON, RedisServer, base_env, free_port
from yardmaster.shared import keys
from yardmaster.shared.db import make_engine
from yardmaster.shared.migrate import upgrade_to_head
from yardmaster.shared.settings import normalise_database_url

STOP_GRACE = 1.0


class Api:
    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.loads(response.read()))

    def state(self, job_id: str) -> str:
        return str(self.call("GET", f"/jobs/{job_id}")["state"])

    def wait_for(self, job_id: str, state: str, timeout: float = 120) -> float:
        """Seconds until the job reaches ``state`` (polled every millisecond or so)."""
        started = time.perf_counter()
        while self.state(job_id) != state:
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"job {job_id} not {state} in {timeout} s")
            time.sleep(0.001)
        return time.perf_counter() - started

    def upload(self, path: Path, table: str) -> str:
        boundary = "----yardmaster-bench"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="table"\r\n\r\n{table}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(
            self.base + "/imports",
            data=body,
            method="POST",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            return str(json.loads(response.read())["id"])


def start_stack(
    workdir: Path, database_url: str, redis_url: str
) -> tuple[Api, list[subprocess.Popen[bytes]]]:
    env = base_env(
        data_dir=str(workdir),
        database_url=database_url,
        redis_url=redis_url,
        stop_grace_seconds=str(STOP_GRACE),
        log_level="WARNING",
    )
    port = free_port()
    processes = [
        subprocess.Popen(
            [PYTHON, "-m", "yardmaster.api", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [PYTHON, "-m", "yardmaster.report_worker", "--name", "bench"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    api = Api(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while True:
        try:
            api.call("GET", "/readyz")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    return api, processes


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def show(label: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(
        f"  {label:44} median {statistics.median(ms):7.1f} ms   p99 {pct(ms, 0.99):7.1f} ms   "
        f"max {max(ms):7.1f} ms   (n={len(ms)})"
    )


def control_latencies(api: Api, redis_url: str, trials: int) -> None:
    pause, resume, stop, forced = [], [], [], []
    client = redis.Redis.from_url(redis_url)
    api.wait_for(api.call("POST", "/work", {"execution_time": 0.2})["id"], "finished")  # warm up
    for _ in range(trials):
        job = api.call("POST", "/work", {"execution_time": 10})["id"]
        api.wait_for(job, "running")
        time.sleep(0.05)  # let it get into its stride
        api.call("POST", f"/jobs/{job}/pause")
        pause.append(api.wait_for(job, "paused"))
        api.call("POST", f"/jobs/{job}/resume")
        resume.append(api.wait_for(job, "running"))
        api.call("POST", f"/jobs/{job}/stop")
        stop.append(api.wait_for(job, "stopped"))
    for _ in range(max(5, trials // 10)):
        job = api.call("POST", "/work", {"execution_time": 10})["id"]
        api.wait_for(job, "running")
        while (lease := client.get(keys.job_lease_key(job))) is None:
            time.sleep(0.001)  # the lease is taken just after the claim
        os.kill(int(lease.decode().rsplit(":", 1)[1]), signal.SIGSTOP)
        api.call("POST", f"/jobs/{job}/stop")
        forced.append(api.wait_for(job, "stopped") - STOP_GRACE)
    print(f"job control, API + 1 report worker, SQLite, loopback; {trials} running jobs:")
    show("pause: request -> paused", pause)
    show("resume (idle worker): request -> running", resume)
    show("stop, cooperative: request -> stopped", stop)
    show(f"stop, forced: grace ({STOP_GRACE:g} s) end -> stopped", forced)


def import_throughput(api: Api, csv_path: Path, rows: int, database_url: str, label: str) -> None:
    started = time.perf_counter()
    job = api.upload(csv_path, "store_status")
    api.wait_for(job, "finished", timeout=1800)
    ours = time.perf_counter() - started
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS bench_plain"))
    started = time.perf_counter()
    frame = pd.read_csv(csv_path, dtype={"store_id": str})
    frame.to_sql(
        "bench_plain",
        engine,
        index=False,
        chunksize=20_000,
        method="multi" if engine.dialect.name == "postgresql" else None,
    )
    plain = time.perf_counter() - started
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE bench_plain"))
    engine.dispose()
    print(
        f"  import {rows:,} polls, {label:10}: "
        f"Yardmaster {rows / ours:9,.0f} rows/s ({ours:6.1f} s)   "
        f"plain pandas read_csv+to_sql {rows / plain:9,.0f} rows/s ({plain:6.1f} s)   "
        f"ratio {plain / ours:4.2f}"
    )


def fresh_database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        admin = normalise_database_url(os.environ["YARDMASTER_TEST_DATABASE_URL"])
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("DROP DATABASE IF EXISTS ym_bench WITH (FORCE)"))
            connection.execute(text("CREATE DATABASE ym_bench"))
        engine.dispose()
        url = admin.rsplit("/", 1)[0] + "/ym_bench"
    engine = make_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    return url


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--rows", type=int, default=1_800_000)
    args = parser.parse_args()
    backends = ["sqlite"] + (
        ["postgresql"] if os.environ.get("YARDMASTER_TEST_DATABASE_URL") else []
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = RedisServer(workdir / "redis").start()
        csv_path = write_polls(workdir / "polls.csv", args.rows)
        try:
            for n, backend in enumerate(backends):
                database_url = fresh_database(backend, workdir)
                api, processes = start_stack(workdir / backend, database_url, server.url)
                try:
                    if n == 0:
                        control_latencies(api, server.url, args.trials)
                        print("import throughput (generated polls in the real file format):")
                    import_throughput(api, csv_path, args.rows, database_url, backend)
                finally:
                    for process in processes:
                        process.send_signal(signal.SIGTERM)
                        process.wait(timeout=60)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
