"""Benchmark: how long a ``make run`` process killed with SIGKILL takes to be ready again.

Starts ``tools/devstack.py`` as a user would (default settings: embedded Redis, SQLite, two
report and two file workers, the simulator at demo speed; a fresh data folder and a free port
so that nothing of the developer's is touched), then kills one process of each kind in turn,
``ROUNDS`` times round, and reports the seconds from ``kill -9`` until the supervisor says
"<name> ready again" (its restart wait of 1 s included), and until ``/readyz`` answers 200
again. Each process has been up more than the supervisor's 30 s when it is killed (the bench
waits for that), so every restart is the first of its streak (a 1 s wait), as for a user whose
process crashed once.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from support import PYTHON, REPO, Process, base_env, free_port

KINDS = ["api", "report-worker-1", "file-worker-1", "simulator", "redis"]
ROUNDS = 3
#: Give up on one recovery after this long (it is reported as not recovered).
PATIENCE = 90.0
#: A process up this long gets the first restart wait again (the supervisor's Backoff).
STABLE_AFTER = 30.0


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def pid_of(output: str, name: str) -> int:
    started = re.findall(rf"\| {re.escape(name)} started(?: \(restart\))? \(pid (\d+)\)", output)
    return int(started[-1])


def wait_for(check: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until ``check()`` is true (polled every 20 ms), or None at the deadline."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if check():
            return time.monotonic() - began
        time.sleep(0.02)
    return None


def kill_and_time(stack: Process, base: str, name: str) -> tuple[float | None, float | None, str]:
    """(kill -> "ready again", kill -> /readyz 200 once ready again, the supervisor's words)."""
    output = stack.output()
    seen = len(output)
    os.kill(pid_of(output, name), signal.SIGKILL)
    killed = time.monotonic()

    def tail() -> str:
        return stack.output()[seen:]

    ready = wait_for(lambda: f"| {name} ready again" in tail(), PATIENCE)
    serving = None
    if ready is not None:
        wait_for(lambda: status(f"{base}/readyz") == 200, PATIENCE)
        serving = time.monotonic() - killed
    said = re.findall(rf"\| ({re.escape(name)} (?:exited|ready again) [^\n]*)", tail())
    return ready, serving, "; ".join(said[:3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    rounds = parser.parse_args().rounds
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    results: dict[str, list[tuple[float | None, float | None]]] = {k: [] for k in KINDS}
    with tempfile.TemporaryDirectory() as folder:
        env = base_env(data_dir=f"{folder}/data", api_port=str(port))
        stack = Process([PYTHON, str(REPO / "tools" / "devstack.py")], env, Path(folder) / "log")
        try:
            stack.wait_for_output("devstack: API on", timeout=120)
            stack.wait_for_output("Files processed: 5", timeout=120)  # every process at work
            restarted = dict.fromkeys(KINDS, time.monotonic())
            for round_ in range(1, rounds + 1):
                for name in KINDS:
                    time.sleep(max(0.0, restarted[name] + STABLE_AFTER + 2 - time.monotonic()))
                    ready, serving, said = kill_and_time(stack, base, name)
                    restarted[name] = time.monotonic()
                    results[name].append((ready, serving))
                    print(f"  round {round_} {name:16} {fmt(ready)} ready, {fmt(serving)} "
                          f"serving  ({said})", flush=True)  # fmt: skip
            others = re.findall(r"\| (\S+ exited \(rc=\d+\)[^\n]*)", stack.output())
            print(f"  exits the bench did not cause: {others or 'none'}")
        finally:
            stack.signal(signal.SIGINT)
            stack.wait(timeout=90)
            stack.close()
    report(results, rounds)
    return 0


def fmt(seconds: float | None) -> str:
    return "   never" if seconds is None else f"{seconds:6.2f} s"


def report(results: dict[str, list[tuple[float | None, float | None]]], rounds: int) -> None:
    print(f"make run, kill -9 of one process -> the supervisor's 'ready again' ({rounds} rounds):")
    for name, runs in results.items():
        ready = [r for r, _ in runs if r is not None]
        serving = [s for _, s in runs if s is not None]
        if len(ready) < len(runs):
            print(f"  {name:16} not ready again within {PATIENCE:.0f} s in "
                  f"{len(runs) - len(ready)} of {len(runs)} kills")  # fmt: skip
            continue
        shown = ", ".join(f"{v:.1f}" for v in ready)
        print(f"  {name:16} median {statistics.median(ready):5.1f} s, max {max(ready):5.1f} s "
              f"(runs: {shown}); /readyz 200 by {max(serving):5.1f} s")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
