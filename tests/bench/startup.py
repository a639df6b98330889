"""Benchmark: how long processes take from launch to ready (``make bench``).

1. Each service alone (issue 15): ``python -m yardmaster.<service>`` with Redis and a migrated
   SQLite database up, launch to its ``ready in X s`` line (median of 5), and ``--help``;
   side by side with the bytecode ``make install`` compiles and without any
   (``PYTHONDONTWRITEBYTECODE=1`` with an empty ``PYTHONPYCACHEPREFIX``: every start compiles
   every module, as on a machine before issue 15).
2. ``make run`` run a second time (its install check included) until ``/readyz`` answers 200.
3. ``tools/devstack.py`` (embedded Redis, SQLite, every process) in a fresh data folder: the
   seconds until ``/readyz`` answers 200 and until every process has announced itself on
   ``/status``; ``/readyz`` itself once the stack is up.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from support import PYTHON, REPO, RedisServer, base_env, free_port, no_bytecode_env
from yardmaster.shared import lifecycle
from yardmaster.shared.db import make_engine
from yardmaster.shared.migrate import upgrade_to_head

SERVICE_RUNS = 5
SERVICES = {
    "api": [],
    "report_worker": [],
    "file_worker": [],
    "simulator": ["--seconds-in-min", "60"],
}

RUNS = 3
EXPECTED = {"report-worker": 2, "file-worker": 2, "simulator": 1}


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


def one_run() -> tuple[float, float, float]:
    """(seconds to /readyz 200, seconds to all processes live, median /readyz ms)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        env = base_env(data_dir=data, api_port=str(port))
        started = time.monotonic()
        stack = subprocess.Popen(
            [PYTHON, str(REPO / "tools" / "devstack.py")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ready_at = live_at = None
        try:
            while time.monotonic() - started < 60 and live_at is None:
                if ready_at is None and get(base + "/readyz")[0] == 200:
                    ready_at = time.monotonic() - started
                if ready_at is not None:
                    status, body = get(base + "/status")
                    services = json.loads(body)["services"] if status == 200 else {}
                    if {k: len(v) for k, v in services.items()} == EXPECTED:
                        live_at = time.monotonic() - started
                time.sleep(0.05)
            if ready_at is None or live_at is None:
                raise RuntimeError("the stack did not come up within 60 s")
            latencies = []
            for _ in range(200):
                t0 = time.perf_counter()
                get(base + "/readyz")
                latencies.append((time.perf_counter() - t0) * 1000)
            return ready_at, live_at, statistics.median(latencies)
        finally:
            stack.send_signal(signal.SIGINT)
            stack.wait(timeout=60)


def service_ready(service: str, env: dict[str, str], folder: Path) -> float:
    """Seconds from launch to the service's ``ready in`` line (as the process measures it)."""
    args = list(SERVICES[service])
    if service == "api":
        args = ["--port", str(free_port())]
    if service in ("file_worker", "simulator"):
        args += ["--dir", str(folder / f"bucket-{time.monotonic_ns()}")]  # a fresh bucket
    process = subprocess.Popen(
        [PYTHON, "-m", f"yardmaster.{service}", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if match := lifecycle.READY_LINE.search(line.decode(errors="replace")):
                return float(match.group(1))
        raise RuntimeError(f"{service} exited before it was ready")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def help_seconds(service: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [PYTHON, "-m", f"yardmaster.{service}", "--help"],
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def print_service_starts() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        redis = RedisServer(folder / "redis").start()
        database_url = f"sqlite:///{folder / 'yardmaster.db'}"
        engine = make_engine(database_url)
        upgrade_to_head(engine)
        engine.dispose()
        env = base_env(
            data_dir=str(folder / "data"), redis_url=redis.url, database_url=database_url
        )
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        try:
            print(
                f"each service alone, launch -> its 'ready in' line, median of {SERVICE_RUNS}"
                " (and --help), PYTHONDONTWRITEBYTECODE=1:"
            )
            print(f"  {'service':15} {'bytecode compiled':>26} {'no bytecode':>26} {'ratio':>6}")
            for service in SERVICES:
                cells = []
                for extra in ({}, no_bytecode_env(folder)):
                    run_env = {**env, **extra}
                    ready = [service_ready(service, run_env, folder) for _ in range(SERVICE_RUNS)]
                    helps = [help_seconds(service, run_env) for _ in range(3)]
                    cells.append((statistics.median(ready), min(helps)))
                (fast, fast_help), (slow, slow_help) = cells
                print(
                    f"  {service:15} {fast:6.2f} s (--help {fast_help:4.2f} s)"
                    f"      {slow:6.2f} s (--help {slow_help:4.2f} s)   {slow / fast:5.1f}x"
                )
        finally:
            redis.stop()


def make_run_ready() -> float:
    """``make run`` (install check included) in a fresh data folder, launch to /readyz 200."""
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = base_env(data_dir=data, api_port=str(port))
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        started = time.monotonic()
        stack = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            while time.monotonic() - started < 120:
                if get(f"http://127.0.0.1:{port}/readyz")[0] == 200:
                    return time.monotonic() - started
                time.sleep(0.05)
            raise RuntimeError("make run was not ready within 120 s")
        finally:
            os.killpg(stack.pid, signal.SIGINT)
            stack.wait(timeout=60)


def main() -> int:
    print_service_starts()
    runs = [make_run_ready() for _ in range(RUNS)]
    print(
        f"make run, run again (install check included), launch -> /readyz 200: median "
        f"{statistics.median(runs):.2f} s (runs: {', '.join(f'{r:.2f}' for r in runs)})"
    )
    results = [one_run() for _ in range(RUNS)]
    print(f"make run stack, {RUNS} cold starts (fresh data folder each), embedded Redis + SQLite:")
    for label, index, unit in [
        ("launch -> /readyz 200", 0, "s"),
        ("launch -> all 6 processes live", 1, "s"),
        ("/readyz latency (median of 200)", 2, "ms"),
    ]:
        values = [r[index] for r in results]
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {label:34} median {statistics.median(values):6.2f} {unit}  (runs: {shown})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
