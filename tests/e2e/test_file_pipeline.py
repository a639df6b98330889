"""The file pipeline end to end: the simulator and several file workers on one bucket."""

from __future__ import annotations

import math
import os
import re
import signal
from pathlib import Path

import redis
import requests
from sqlalchemy import create_engine, func, insert, select

from e2e.stack import Start
from support import eventually, free_port
from yardmaster.shared.fileclaims import FileClaims
from yardmaster.shared.models import FileLedger, StoreStatus, StoreTimezone

LINE = re.compile(
    r"^Files processed: (\d+), Total Time: ([\d.]+), Sum of Squares: ([\d.]+)$", re.MULTILINE
)


def done_records(redis_url: str, bucket: Path) -> dict[str, dict]:
    return FileClaims(redis.Redis.from_url(redis_url), bucket).done()


def ledger_states(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(select(FileLedger.state, func.count()).group_by(FileLedger.state))
        counts = {state: count for state, count in rows}
    engine.dispose()
    return counts


def test_two_workers_commit_all_96_files_exactly_once_and_print_their_statistics(
    start: Start, redis_url: str, migrated_database_url: str, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    settings = {"redis_url": redis_url, "database_url": migrated_database_url}
    workers = [
        start(
            "yardmaster.file_worker",
            "--dir",
            str(bucket),
            "--name",
            f"fw-{n}",
            "--seconds-in-min",
            "0.01",
            **settings,
        )
        for n in (1, 2)
    ]
    simulator = start(
        "yardmaster.simulator", "--dir", str(bucket), "--seconds-in-min", "0.01", **settings
    )

    assert simulator.wait(timeout=60) == 0
    records = eventually(
        lambda: (d := done_records(redis_url, bucket)) and len(d) == 96 and d, 60, "96 done records"
    )

    assert math.isclose(sum(r["minutes"] for r in records.values()), 2524.0003, abs_tol=1e-3)
    by_worker = {
        name: [r for r in records.values() if r["worker"] == name] for name in ("fw-1", "fw-2")
    }
    assert all(by_worker.values())  # both worked
    port = free_port()
    start("yardmaster.api", "--port", str(port), **settings)
    base = f"http://127.0.0.1:{port}"
    eventually(lambda: requests.get(f"{base}/readyz", timeout=2).status_code == 200, 30, "api")
    files = requests.get(f"{base}/files?state=done", timeout=5).json()
    assert files["total"] == 96
    assert all(f["attempts"] >= 1 and f["worker"] in by_worker for f in files["items"])

    def workers_statistics() -> list[dict] | None:
        live = requests.get(f"{base}/workers", timeout=5).json()["workers"]
        return live if sum(w.get("files", 0) for w in live) == 96 else None

    live = eventually(workers_statistics, 15, "worker statistics")
    assert {w["instance"] for w in live} == {"fw-1", "fw-2"}
    for process in workers:
        assert process.stop() == 0
    for process, name in zip(workers, ("fw-1", "fw-2"), strict=True):
        lines = LINE.findall(process.output())
        mine = by_worker[name]
        assert [int(n) for n, _, _ in lines] == list(range(5, len(mine) + 1, 5))
        if lines:
            counted = int(lines[-1][0])
            finished = sorted(mine, key=lambda r: r["finished_at"])[:counted]
            assert float(lines[-1][1]) == round(sum(r["minutes"] for r in finished), 2)
    assert ledger_states(migrated_database_url) == {"done": 96}


def test_a_worker_killed_mid_file_loses_nothing_its_peer_completes_the_file(
    start: Start, redis_url: str, migrated_database_url: str, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    names = [f"2018_06_28_00_{m:02d}.txt" for m in (0, 15, 30, 45)]
    for name in names:
        (bucket / name).write_text("20\n")  # 20 simulated minutes = 2 s each
    settings = {"redis_url": redis_url, "database_url": migrated_database_url}
    victim = start(
        "yardmaster.file_worker",
        "--dir",
        str(bucket),
        "--name",
        "victim",
        "--seconds-in-min",
        "0.1",
        **settings,
    )
    victim.wait_for_output("watching")
    eventually(lambda: redis.Redis.from_url(redis_url).keys("*lease*"), 10, "a claim")

    os.kill(victim.popen.pid, signal.SIGKILL)
    survivor = start(
        "yardmaster.file_worker",
        "--dir",
        str(bucket),
        "--name",
        "survivor",
        "--seconds-in-min",
        "0.1",
        **settings,
    )

    records = eventually(
        lambda: (d := done_records(redis_url, bucket)) and len(d) == 4 and d, 60, "4 done records"
    )
    assert {r["worker"] for r in records.values()} == {"survivor"}
    assert sorted(records) == names
    assert survivor.stop() == 0


def test_with_store_payloads_the_polls_reach_store_status_once(
    start: Start, redis_url: str, migrated_database_url: str, tmp_path: Path
) -> None:
    engine = create_engine(migrated_database_url)
    with engine.begin() as connection:
        connection.execute(
            insert(StoreTimezone),
            [{"store_id": f"s{n}", "timezone_str": "UTC"} for n in range(200)],
        )
    bucket = tmp_path / "bucket"
    schedule = tmp_path / "schedule.csv"
    schedule.write_text(
        "filename,processing_minutes\n"
        + "".join(f"2018_06_28_00_{m:02d}.txt,1\n" for m in (0, 15, 30, 45))
    )
    settings = {"redis_url": redis_url, "database_url": migrated_database_url}
    workers = [
        start(
            "yardmaster.file_worker",
            "--dir",
            str(bucket),
            "--name",
            f"fw-{n}",
            "--seconds-in-min",
            "0.01",
            **settings,
        )
        for n in (1, 2)
    ]
    simulator = start(
        "yardmaster.simulator",
        "--dir",
        str(bucket),
        "--seconds-in-min",
        "0.01",
        "--schedule",
        str(schedule),
        "--payload",
        "stores",
        **settings,
    )
    assert simulator.wait(timeout=30) == 0
    records = eventually(
        lambda: (d := done_records(redis_url, bucket)) and len(d) == 4 and d, 30, "4 done records"
    )

    in_files = sum(len((bucket / name).read_text().splitlines()) - 1 for name in records)
    with engine.connect() as connection:
        loaded = connection.scalar(select(func.count()).select_from(StoreStatus))
    engine.dispose()
    assert in_files > 0
    assert loaded == in_files == sum(r["rows"] for r in records.values())
    for worker in workers:
        assert worker.stop() == 0


def test_a_worker_paused_past_its_lease_has_its_completion_refused(
    start: Start, redis_url: str, migrated_database_url: str, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    (bucket / "2018_06_28_00_00.txt").write_text("10\n")  # 1 s of work at 0.1 s per minute
    settings = {"redis_url": redis_url, "database_url": migrated_database_url}
    stalled = start(
        "yardmaster.file_worker",
        "--dir",
        str(bucket),
        "--name",
        "stalled",
        "--seconds-in-min",
        "0.1",
        "--lease-ttl",
        "0.4",
        **settings,
    )
    eventually(lambda: redis.Redis.from_url(redis_url).keys("*lease*"), 10, "a claim")
    os.kill(stalled.popen.pid, signal.SIGSTOP)
    peer = start(
        "yardmaster.file_worker",
        "--dir",
        str(bucket),
        "--name",
        "peer",
        "--seconds-in-min",
        "0.1",
        "--lease-ttl",
        "0.4",
        **settings,
    )
    records = eventually(lambda: done_records(redis_url, bucket), 20, "done by the peer")

    os.kill(stalled.popen.pid, signal.SIGCONT)
    stalled.wait_for_output("not counted", timeout=20)

    assert records["2018_06_28_00_00.txt"]["worker"] == "peer"
    assert "Files processed" not in stalled.output()
    assert stalled.stop() == 0
    assert peer.stop() == 0


def test_backfill_with_garbage_and_foreign_files_never_writes_in_the_bucket(
    start: Start, redis_url: str, migrated_database_url: str, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    for m in (0, 15, 30, 45):
        (bucket / f"2018_06_28_01_{m:02d}.txt").write_text("1.5")  # the original's format
    (bucket / "2018_06_28_02_00.txt").write_text("-3\n")  # complete but unusable
    (bucket / "notes.txt").write_text("not a schedule file")
    before = sorted(p.name for p in bucket.iterdir())
    settings = {"redis_url": redis_url, "database_url": migrated_database_url}
    worker = start(
        "yardmaster.file_worker",
        "--dir",
        str(bucket),
        "--name",
        "fw",
        "--seconds-in-min",
        "0.01",
        **settings,
    )

    eventually(lambda: len(done_records(redis_url, bucket)) == 4, 20, "backfill done")
    eventually(
        lambda: ledger_states(migrated_database_url).get("quarantined") == 1,
        10,
        "garbage quarantined",
    )
    assert worker.popen.poll() is None
    assert sorted(p.name for p in bucket.iterdir()) == before
    assert worker.stop() == 0


def test_non_atomic_writes_are_never_consumed_half_written(
    start: Start, redis_url: str, migrated_database_url: str, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    settings = {"redis_url": redis_url, "database_url": migrated_database_url}
    worker = start(
        "yardmaster.file_worker",
        "--dir",
        str(bucket),
        "--name",
        "fw",
        "--seconds-in-min",
        "0.001",
        **settings,
    )
    simulator = start(
        "yardmaster.simulator",
        "--dir",
        str(bucket),
        "--seconds-in-min",
        "0.001",
        "--non-atomic",
        **settings,
    )

    assert simulator.wait(timeout=30) == 0
    records = eventually(
        lambda: (d := done_records(redis_url, bucket)) and len(d) == 96 and d, 30, "96 done"
    )
    assert math.isclose(sum(r["minutes"] for r in records.values()), 2524.0003, abs_tol=1e-3)
    assert ledger_states(migrated_database_url) == {"done": 96}
    assert worker.stop() == 0
