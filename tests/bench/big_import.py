"""Benchmark: a 1.8 M-row import beside running file workers, on ``make run``'s defaults.

Starts ``tools/devstack.py`` as a user would (SQLite, embedded Redis, two file workers at
demo speed, no settings), generates the sample data (``python -m yardmaster.simulator.stores``,
14,092 stores, about 1.8 M polls), then imports the polls twice: ``append``, then ``replace``
(which hides the first 1.8 M rows for the sweeper to delete a chunk at a time). All along, a
probe writer commits one row every 50 ms into the same SQLite file and records how long each
commit waited for the write lock. Reports: each import's time, the probe's worst and p99
waits, how long the sweep took, process exits seen by the supervisor, and whether every
file-worker file is in the ledger exactly once with its polls.

    .venv/bin/python tests/bench/big_import.py [--stores N]
"""

from __future__ import annotations

import argparse
import itertools
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from support import PYTHON, REPO, Process, base_env, eventually, free_port

PROBE_INTERVAL = 0.05


class Probe(threading.Thread):
    """Commits one row every 50 ms; records each commit's wait (BEGIN IMMEDIATE to COMMIT)."""

    def __init__(self, database: Path) -> None:
        super().__init__(daemon=True)
        self.database = database
        self.waits: list[float] = []
        self.ended_at: list[float] = []
        self.phases: list[tuple[float, str]] = []
        self.stop = threading.Event()

    def phase(self, name: str) -> None:
        """Waits from now on are counted under ``name``."""
        self.phases.append((time.perf_counter(), name))

    def run(self) -> None:
        connection = sqlite3.connect(self.database, timeout=120, isolation_level=None)
        connection.execute("CREATE TABLE IF NOT EXISTS bench_probe (at REAL)")
        while not self.stop.wait(PROBE_INTERVAL):
            started = time.perf_counter()
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO bench_probe VALUES (?)", (time.time(),))
            connection.execute("COMMIT")
            self.waits.append(time.perf_counter() - started)
            self.ended_at.append(time.perf_counter())
        connection.close()

    def summary(self) -> str:
        lines = [f"all: {describe(self.waits)}"]
        bounds = [*self.phases, (float("inf"), "")]
        for (begun, name), (until, _) in itertools.pairwise(bounds):
            waits = [
                w for w, at in zip(self.waits, self.ended_at, strict=True) if begun <= at < until
            ]
            if waits:
                lines.append(f"  during {name}: {describe(waits)}")
        return "\n".join(lines)


def describe(waits: list[float]) -> str:
    ordered = sorted(waits)
    p99 = ordered[int(len(ordered) * 0.99)]
    return (
        f"{len(ordered)} commits, worst {ordered[-1] * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms,"
        f" median {statistics.median(ordered) * 1000:.1f} ms"
    )


def import_file(base: str, path: Path, table: str, mode: str) -> tuple[str, float]:
    started = time.perf_counter()
    with open(path, "rb") as handle:
        response = requests.post(
            f"{base}/imports",
            data={"table": table, "mode": mode},
            files={"file": (path.name, handle)},
            timeout=600,
        )
    response.raise_for_status()
    job_id = response.json()["id"]

    def ended() -> dict[str, object] | None:
        job = requests.get(f"{base}/jobs/{job_id}", timeout=10).json()
        return job if job["state"] in ("finished", "failed", "stopped") else None

    job = eventually(ended, timeout=1800, what=f"import of {path.name}")
    assert job["state"] == "finished", job
    return job_id, time.perf_counter() - started


def count(database: Path, sql: str) -> int:
    with sqlite3.connect(database, timeout=120) as connection:
        return int(connection.execute(sql).fetchone()[0])


def file_polls(database: Path) -> tuple[int, int]:
    """The file workers' polls stored, and those their ledger rows count (one snapshot)."""
    with sqlite3.connect(database, timeout=120) as connection:
        stored, counted = connection.execute(
            "SELECT (SELECT count(*) FROM store_status WHERE import_job IS NULL),"
            " (SELECT coalesce(sum(rows), 0) FROM file_ledger)"
        ).fetchone()
    return int(stored), int(counted)


def files_exactly_once(database: Path) -> str:
    """Every ledger row once; the file workers' polls that readers see match their files."""
    rows = count(database, "SELECT count(*) FROM file_ledger")
    names = count(database, "SELECT count(DISTINCT bucket || '/' || name) FROM file_ledger")
    assert rows == names, "a file is in the ledger twice"
    return f"{rows} files in the ledger, each once"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stores", type=int, default=14_092)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ym-big-import-") as tmp:
        work = Path(tmp)
        data = work / "sample"
        subprocess.run(
            [
                PYTHON,
                "-m",
                "yardmaster.simulator.stores",
                "--out",
                str(data),
                "--stores",
                str(args.stores),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(data / "store_status.csv") as handle:
            polls = sum(1 for _ in handle) - 1
        port = free_port()
        env = base_env(data_dir=str(work / "data"), api_port=str(port))
        stack = Process([PYTHON, str(REPO / "tools" / "devstack.py")], env, work / "stack.log")
        base = f"http://127.0.0.1:{port}"
        database = work / "data" / "yardmaster.db"
        try:
            eventually(
                lambda: requests.get(f"{base}/readyz", timeout=2).status_code == 200,
                timeout=120,
                what="the stack ready",
            )
            stack.wait_for_output("Files processed: 5", timeout=120)
            probe = Probe(database)
            probe.start()
            probe.phase("the append import")
            appended, append_s = import_file(
                base, data / "store_status.csv", "store_status", "append"
            )
            filed, in_ledger = file_polls(database)
            probe.phase("the business_hours import")
            _, hours_s = import_file(base, data / "menu_hours.csv", "business_hours", "replace")
            probe.phase("the timezones import")
            _, zones_s = import_file(base, data / "timezones.csv", "timezones", "replace")
            probe.phase("the replace import")
            _, replace_s = import_file(base, data / "store_status.csv", "store_status", "replace")
            sweep_started = time.perf_counter()
            probe.phase("the sweep")
            eventually(
                lambda: (
                    count(
                        database,
                        f"SELECT count(*) FROM store_status WHERE import_job = '{appended}'",
                    )
                    == 0
                ),
                timeout=1800,
                what="the replaced rows swept",
            )
            sweep_s = time.perf_counter() - sweep_started
            probe.stop.set()
            probe.join()
            visible_imported = count(database, "SELECT count(*) FROM visible_store_status") - count(
                database,
                "SELECT count(*) FROM store_status s JOIN import_floors f"
                " ON f.table_name = 'store_status'"
                " WHERE s.import_job IS NULL AND s.id > f.floor_id",
            )
            output = stack.output()
            exits = output.count(" exited (rc=")
            print(f"polls in the file: {polls:,}")
            print(f"append import: {append_s:.1f} s; replace import: {replace_s:.1f} s")
            print(f"business_hours import: {hours_s:.1f} s; timezones import: {zones_s:.1f} s")
            print(f"sweep of the {polls:,} replaced rows: {sweep_s:.1f} s")
            print(f"probe writer (one commit every 50 ms):\n{probe.summary()}")
            print(
                f"file workers' polls after the append: {filed:,} stored,"
                f" {in_ledger:,} in the ledger"
            )
            print(f"rows readers see from the replace: {visible_imported:,} (file: {polls:,})")
            print(files_exactly_once(database))
            print(f"process exits: {exits}")
            assert filed == in_ledger, "file-worker polls lost or duplicated"
            assert visible_imported == polls
        finally:
            stack.signal()
            stack.wait(timeout=90)
    return 0


if __name__ == "__main__":
    sys.exit(main())
