"""Benchmark: the store report on generated real-shape data (``make bench``).

14,092 stores and about 1.8 M polls from ``python -m yardmaster.simulator.stores``:
compute-only time (median of 3) and peak memory of the offline compute command; the slow
reference of the test suite against the vectorised code on the same 500-store subset (ratio);
and end to end, trigger -> Complete through the API with the data in SQLite (and PostgreSQL
when ``YARDMASTER_TEST_DATABASE_URL`` is set).
"""

from __future__ import annotations

import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.job_control import fresh_database, start_stack
from reference.uptime_reference import reference_report

from support import PYTHON, RedisServer
from yardmaster.report_worker.compute import read_polls, read_table
from yardmaster.report_worker.core.uptime import compute_report
from yardmaster.shared.imports import ImportTable

SUBSET = 500


def generate(out: Path) -> None:
    subprocess.run(
        [PYTHON, "-m", "yardmaster.simulator.stores", "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def compute_only(data: Path) -> None:
    polls = read_polls(data / "store_status.csv")
    hours = read_table(data / "menu_hours.csv", ImportTable.BUSINESS_HOURS)
    zones = read_table(data / "timezones.csv", ImportTable.TIMEZONES)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        report = compute_report(polls, hours, zones)
        times.append(time.perf_counter() - started)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(
        [
            PYTHON,
            "-m",
            "yardmaster.report_worker.compute",
            "--store-status",
            str(data / "store_status.csv"),
            "--business-hours",
            str(data / "menu_hours.csv"),
            "--timezones",
            str(data / "timezones.csv"),
            "--out",
            str(data / "report.csv"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(f"store report, {len(report):,} stores, {len(polls):,} polls (generated, real shape):")
    print(
        f"  compute only (vectorised): median {statistics.median(times):.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in times)})"
    )
    print(f"  peak memory of the offline compute command (read + compute + write): {peak:,.0f} MiB")

    stores = sorted(polls["store_id"].unique())[:SUBSET]
    latest = polls.loc[polls["timestamp_utc"].idxmax(), "store_id"]  # keeps the global "now"
    subset = polls[polls["store_id"].isin([*stores, latest])]
    started = time.perf_counter()
    compute_report(subset, hours, zones)
    fast = time.perf_counter() - started
    started = time.perf_counter()
    reference_report(subset, hours, zones)
    slow = time.perf_counter() - started
    print(
        f"  {SUBSET + 1} stores ({len(subset):,} polls): reference {slow:.2f} s, vectorised "
        f"{fast:.3f} s, ratio {slow / fast:,.0f}x"
    )
    estimate = slow / (SUBSET + 1) * len(report)
    median = statistics.median(times)
    print(
        f"  all stores: vectorised {median:.2f} s vs reference estimated "
        f"{estimate:,.0f} s ({estimate / median:,.0f}x)"
    )


def end_to_end(data: Path, workdir: Path, backend: str, redis_url: str) -> None:
    database_url = fresh_database(backend, workdir)
    api, processes = start_stack(workdir / backend, database_url, redis_url)
    try:
        for name, table in [
            ("store_status.csv", "store_status"),
            ("menu_hours.csv", "business_hours"),
            ("timezones.csv", "timezones"),
        ]:
            api.wait_for(api.upload(data / name, table), "finished", timeout=600)
        started = time.perf_counter()
        report_id = api.call("POST", "/trigger_report")["report_id"]
        api.wait_for(report_id, "finished", timeout=600)
        elapsed = time.perf_counter() - started
        print(f"  end to end, trigger -> Complete, {backend:10}: {elapsed:.2f} s")
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        data = workdir / "stores"
        generate(data)
        compute_only(data)
        server = RedisServer(workdir / "redis").start()
        try:
            backends = ["sqlite"] + (
                ["postgresql"] if os.environ.get("YARDMASTER_TEST_DATABASE_URL") else []
            )
            for backend in backends:
                end_to_end(data, workdir, backend, server.url)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
