"""Benchmark: makespan of the 96-file day against the optimum, and discovery latency.

For N = 1..4 file workers and two speeds, runs the simulator and measures the makespan from
the simulator's start (its first file is written after 15 simulated minutes) to the last
completion, divided by the optimal makespan for N (design note 5.1: 2539 simulated minutes for
N = 1, 1465.98 for N >= 2). Discovery latency: from a file's rename into place to its claim,
with 4 workers (no file ever waits for a free worker); for it the bench writes the files itself
and reads the clock at each rename. Then N = 2 with one worker killed. Then the cold start of
issue 15: two file workers launched 2 s before the simulator (nobody waits for them to be
ready), at 0.001 s per simulated minute, median of 5, with the bytecode ``make install``
compiles and without any (``PYTHONDONTWRITEBYTECODE=1`` and an empty ``PYTHONPYCACHEPREFIX``:
every start compiles every module, as before issue 15).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import redis

from support import PYTHON, RedisServer, base_env, no_bytecode_env
from yardmaster.shared.bucket import partial_name
from yardmaster.shared.db import make_engine
from yardmaster.shared.fileclaims import FileClaims
from yardmaster.shared.migrate import upgrade_to_head
from yardmaster.simulator.__main__ import read_schedule_text
from yardmaster.simulator.core.schedule import file_content, parse_schedule, releases

OPTIMAL = {1: 2524.00 + 15, 2: 1450.98 + 15, 3: 1450.98 + 15, 4: 1450.98 + 15}


def release_with_rename_times(bucket: Path, speed: float) -> dict[str, float]:
    """Play the simulator's schedule in-process; the wall time just before each file's rename.

    File timestamps cannot time the rename: the kernel stamps them from a coarse clock (one
    tick, up to 4 ms, behind), so the rename time is read from the clock here instead.
    """
    renamed: dict[str, float] = {}
    bucket.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    for release in releases(parse_schedule(read_schedule_text(None)), speed):
        time.sleep(max(0.0, start + release.at_seconds - time.monotonic()))
        partial = bucket / partial_name(release.file.name)
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(file_content(release.file))
            handle.flush()
            os.fsync(handle.fileno())
        renamed[release.file.name] = time.time()
        os.replace(partial, bucket / release.file.name)
    return renamed


def run_day(
    workdir: Path,
    server: RedisServer,
    workers: int,
    speed: float,
    kill_after: float | None = None,
    time_renames: bool = False,
    cold_start: bool = False,
    extra_env: dict[str, str] | None = None,
) -> tuple[float, list[float], int]:
    """(makespan / optimal, discovery latencies in ms, files done).

    Latencies are measured only with ``time_renames`` (the bench writes the files itself).
    ``cold_start``: the simulator is launched 2 s after the workers, whether they are ready
    or not (otherwise once every worker has beaten).
    """
    redis.Redis.from_url(server.url).flushall()
    data = workdir / f"run-{workers}-{speed}-{time.monotonic_ns()}"
    database_url = f"sqlite:///{data / 'db.sqlite'}"
    data.mkdir()
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    engine.dispose()
    bucket = data / "bucket"
    env = base_env(
        data_dir=str(data),
        redis_url=server.url,
        database_url=database_url,
        log_level="WARNING",
        seconds_in_min=repr(speed),
    )
    env.update(extra_env or {})
    procs = [
        subprocess.Popen(
            [PYTHON, "-m", "yardmaster.file_worker", "--dir", str(bucket), "--name", f"w{n}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(workers)
    ]
    client = redis.Redis.from_url(server.url)
    started = time.monotonic() + 30
    if cold_start:
        time.sleep(2.0)
    while (
        not cold_start
        and len(list(client.scan_iter("yardmaster:heartbeat:file-worker:*"))) < workers
    ):
        if time.monotonic() > started or any(proc.poll() is not None for proc in procs):
            raise SystemExit("file workers did not start (run one by hand to see why)")
        time.sleep(0.05)
    renamed: dict[str, float] = {}
    simulator = None
    if time_renames:
        renamed = release_with_rename_times(bucket, speed)
    else:
        simulator = subprocess.Popen(
            [PYTHON, "-m", "yardmaster.simulator", "--dir", str(bucket)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    if kill_after is not None:
        time.sleep(kill_after)
        procs[0].send_signal(signal.SIGKILL)
    claims = FileClaims(client, bucket)
    deadline = time.monotonic() + 2600 * speed + 60
    while len(claims.done()) < 96 and time.monotonic() < deadline:
        time.sleep(0.05)
    if simulator is not None:
        simulator.wait(timeout=60)
    done = claims.done()
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    first = bucket / "2018_06_28_00_00.txt"
    start = renamed.get(first.name, first.stat().st_mtime) - 15 * speed
    finished = max(dt.datetime.fromisoformat(r["finished_at"]).timestamp() for r in done.values())
    latencies = [
        (dt.datetime.fromisoformat(r["started_at"]).timestamp() - renamed[name]) * 1000
        for name, r in done.items()
        if name in renamed
    ]
    return (finished - start) / (OPTIMAL[workers] * speed), latencies, len(done)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = RedisServer(workdir / "redis").start()
        try:
            print("file pipeline: makespan / optimal makespan (1.00 = optimal), 96 files, SQLite:")
            print("  workers   seconds-in-min 0.01   seconds-in-min 0.001")
            for workers in (1, 2, 3, 4):
                slow, _, _ = run_day(workdir, server, workers, 0.01)
                fast, _, _ = run_day(workdir, server, workers, 0.001)
                print(f"  {workers}         {slow:6.3f}                {fast:6.3f}")
            _, latencies, _ = run_day(workdir, server, 4, 0.01, time_renames=True)
            ordered = sorted(latencies)
            p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
            print(
                f"  discovery latency (rename -> claim), 4 workers at 0.01: median "
                f"{statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms, "
                f"max {ordered[-1]:.2f} ms"
            )
            kill_at = random.Random(os.getpid()).uniform(3, 12)
            ratio, _, done = run_day(workdir, server, 2, 0.01, kill_after=kill_at)
            print(
                f"  2 workers at 0.01, one killed (SIGKILL) after {kill_at:.1f} s: makespan "
                f"{ratio:.3f} x the two-worker optimum, files done {done}/96, lost {96 - done}"
            )
            print_cold_starts(workdir, server)
        finally:
            server.stop()
    return 0


def print_cold_starts(workdir: Path, server: RedisServer, runs: int = 5) -> None:
    """Issue 15's cold-start day, side by side with and without compiled bytecode, on an idle
    machine and on one kept busy by two processes spinning (one per core)."""
    print("  cold start: 2 file workers launched 2 s before the simulator, 0.001 s per minute:")
    for busy in (False, True):
        for label, extra in (
            ("bytecode compiled (make install)", {}),
            ("no bytecode (every start compiles)", no_bytecode_env(workdir)),
        ):
            with spinning(2 if busy else 0):
                ratios = [
                    run_day(workdir, server, 2, 0.001, cold_start=True, extra_env=extra)[0]
                    for _ in range(runs)
                ]
            print(
                f"    {'busy' if busy else 'idle'} machine, {label}: makespan / optimal median"
                f" {statistics.median(ratios):.3f} (runs: {', '.join(f'{r:.3f}' for r in ratios)})"
            )


@contextlib.contextmanager
def spinning(processes: int) -> Iterator[None]:
    """``processes`` processes burning a core each while the block runs."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)
    ]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


if __name__ == "__main__":
    sys.exit(main())
