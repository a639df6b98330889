"""Benchmark: how long ``make run``'s stack takes from launch to serving (``make bench``).

Starts ``tools/devstack.py`` (embedded Redis, SQLite, every process) in a fresh data folder
several times and reports the seconds until ``/readyz`` answers 200 and until every process
has announced itself on ``/status``. Also times ``/readyz`` itself once the stack is up.
"""

from __future__ import annotations

import json
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
from support import PYTHON, REPO, base_env, free_port

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


def main() -> int:
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
