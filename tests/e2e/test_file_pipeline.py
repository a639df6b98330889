"""The file pipeline end to end: the simulator and several file workers on one bucket."""

from __future__ import annotations

import math
import os
import re
import signal
from pathlib import Path

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, insert, select

from e2e.stack import Start
from support import Process, RedisServer, eventually, free_port
from yardmaster.file_worker.core.stats import Stats
from yardmaster.shared.fileclaims import FileClaims
from yardmaster.shared.models import FileLedger, StoreStatus, StoreTimezone

# slow: on PostgreSQL only when it is configured (tests/conftest.py)
pytestmark = pytest.mark.one_backend

LINE = re.compile(
    r"^Files processed: (\d+), Total Time: ([\d.]+), Sum of Squares: ([\d.]+)$", re.MULTILINE
)


def scrape(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """One scrape of the API's /metrics: (name, labels) -> value."""
    text = requests.get(f"{base}/metrics", timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def done_records(redis_url: str, bucket: Path) -> dict[str, dict]:
    return FileClaims(redis.Redis.from_url(redis_url), bucket).done()


def ledger_states(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(select(FileLedger.state, func.count()).group_by(FileLedger.state))
        counts = {state: count for state, count in rows}
    engine.dispose()
    return counts


def file_worker(
    start: Start, bucket: Path, name: str, speed: str, *flags: str, **settings: str
) -> Process:
    """A file worker as the brief starts one by hand: ``--dir``, ``--name``, a speed."""
    return start(
        "yardmaster.file_worker",
        "--dir",
        str(bucket),
        "--name",
        name,
        "--seconds-in-min",
        speed,
        *flags,
        **settings,
    )


def expected_lines(records: list[dict]) -> list[str]:
    """The statistics lines a worker must have printed for its done records."""
    ordered = sorted(records, key=lambda r: r["finished_at"])
    stats, lines = Stats(), []
    for record in ordered:
        stats = stats.add(record["minutes"])
        if stats.due:
            lines.append(stats.line())
    return lines


@pytest.mark.parametrize("count", [2, 3])
def test_workers_started_before_the_simulator_commit_all_96_files_exactly_once(
    start: Start, redis_url: str, migrated_database_url: str, tmp_path: Path, count: int
) -> None:
    bucket = tmp_path / "bucket"
    settings = {"redis_url": redis_url, "database_url": migrated_database_url}
    names = [f"fw-{n}" for n in range(1, count + 1)]
    workers = [file_worker(start, bucket, name, "0.01", **settings) for name in names]
    for worker in workers:
        worker.wait_for_output("watching")
    simulator = start(
        "yardmaster.simulator", "--dir", str(bucket), "--seconds-in-min", "0.01", **settings
    )

    assert simulator.wait(timeout=60) == 0
    records = eventually(
        lambda: (d := done_records(redis_url, bucket)) and len(d) == 96 and d, 60, "96 done records"
    )

    assert math.isclose(sum(r["minutes"] for r in records.values()), 2524.0003, abs_tol=1e-3)
    by_worker = {name: [r for r in records.values() if r["worker"] == name] for name in names}
    assert all(by_worker.values())  # every worker took a share
    port = free_port()
    start("yardmaster.api", "--port", str(port), **settings)
    base = f"http://127.0.0.1:{port}"
    eventually(lambda: requests.get(f"{base}/readyz", timeout=2).status_code == 200, 30, "api")
    files = requests.get(f"{base}/files?state=done", timeout=5).json()
    assert files["total"] == 96
    assert all(f["attempts"] >= 1 and f["worker"] in by_worker for f in files["items"])
    files_request = frozenset({("endpoint", "/files"), ("method", "GET"), ("status", "200")})
    for _ in range(4):  # whichever gunicorn worker answers, it reports every worker's requests
        metrics = scrape(base)
        assert metrics[("yardmaster_files_total", frozenset({("state", "done")}))] == 96
        assert metrics[("yardmaster_file_attempts_total", frozenset())] >= 96
        assert metrics[("yardmaster_http_request_duration_seconds_count", files_request)] == 1

    def workers_statistics() -> list[dict] | None:
        live = requests.get(f"{base}/workers", timeout=5).json()["workers"]
        return live if sum(w.get("files", 0) for w in live) == 96 else None

    live = eventually(workers_statistics, 15, "worker statistics")
    assert {w["instance"] for w in live} == set(names)
    for process in workers:
        assert process.stop() == 0
    for process, name in zip(workers, names, strict=True):
        printed = [line for line in process.output().splitlines() if LINE.match(line)]
        assert printed == expected_lines(by_worker[name])
    assert ledger_states(migrated_database_url) == {"done": 96}


def test_a_redis_restart_mid_run_loses_no_file_and_commits_none_twice(
    start: Start, migrated_database_url: str, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "redis", persistent=True).start()
    try:
        bucket = tmp_path / "bucket"
        settings = {"redis_url": server.url, "database_url": migrated_database_url}
        workers = [file_worker(start, bucket, f"fw-{n}", "0.01", **settings) for n in (1, 2)]
        for worker in workers:
            worker.wait_for_output("watching")
        simulator = start(
            "yardmaster.simulator", "--dir", str(bucket), "--seconds-in-min", "0.01", **settings
        )
        eventually(lambda: len(done_records(server.url, bucket)) >= 20, 60, "20 files done")

        server.stop()
        eventually(lambda: all("Redis unreachable" in w.output() for w in workers), 30, "noticed")
        server.start()

        assert simulator.wait(timeout=60) == 0
        records = eventually(
            lambda: (d := done_records(server.url, bucket)) and len(d) == 96 and d, 60, "96 done"
        )
        assert math.isclose(sum(r["minutes"] for r in records.values()), 2524.0003, abs_tol=1e-3)
        assert ledger_states(migrated_database_url) == {"done": 96}
        for worker in workers:
            assert worker.stop() == 0
            assert worker.popen.returncode == 0
    finally:
        server.stop()


def test_a_worker_killed_mid_file_loses_nothing_its_peer_completes_the_file(
    start: Start, redis_url: str, migrated_database_url: str, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    names = [f"2018_06_28_00_{m:02d}.txt" for m in (0, 15, 30, 45)]
    for name in names:
        (bucket / name).write_text("20\n")  # 20 simulated minutes = 2 s each
    settings = {"redis_url": redis_url, "database_url": migrated_database_url}
    victim = file_worker(start, bucket, "victim", "0.1", **settings)
    victim.wait_for_output("watching")
    eventually(lambda: redis.Redis.from_url(redis_url).keys("*lease*"), 10, "a claim")

    os.kill(victim.popen.pid, signal.SIGKILL)
    survivor = file_worker(start, bucket, "survivor", "0.1", **settings)

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
    workers = [file_worker(start, bucket, f"fw-{n}", "0.01", **settings) for n in (1, 2)]
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
    stalled = file_worker(start, bucket, "stalled", "0.1", "--lease-ttl", "0.4", **settings)
    eventually(lambda: redis.Redis.from_url(redis_url).keys("*lease*"), 10, "a claim")
    os.kill(stalled.popen.pid, signal.SIGSTOP)
    peer = file_worker(start, bucket, "peer", "0.1", "--lease-ttl", "0.4", **settings)
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
    worker = file_worker(start, bucket, "fw", "0.01", **settings)

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
    worker = file_worker(start, bucket, "fw", "0.001", **settings)
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
