"""CSV import and export jobs end to end: all or nothing, pausable, stoppable, crash-safe."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select, text

from e2e.stack import Stack
from support import eventually
from yardmaster.shared.models import visible_store_status

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "loop-real"


def write_polls(path: Path, rows: int, seed: int = 7) -> Path:
    """A store_status CSV in the real data's format (generated, never committed)."""
    rng = random.Random(seed)
    base = dt.datetime(2023, 1, 18)
    with open(path, "w") as handle:
        handle.write("store_id,status,timestamp_utc\n")
        for _ in range(rows):
            at = base + dt.timedelta(
                seconds=rng.randrange(7 * 86400), microseconds=rng.randrange(10**6)
            )
            status = "active" if rng.random() < 0.9 else "inactive"
            handle.write(f"{rng.randrange(10**18)},{status},{at:%Y-%m-%d %H:%M:%S.%f} UTC\n")
    return path


def upload(stack: Stack, path: Path, table: str, mode: str | None = None) -> requests.Response:
    form = {"table": table, **({"mode": mode} if mode else {})}
    with open(path, "rb") as handle:
        return requests.post(
            f"{stack.base}/imports", data=form, files={"file": (path.name, handle)}, timeout=60
        )


def start_import(
    stack: Stack, path: Path, table: str = "store_status", mode: str | None = None
) -> str:
    response = upload(stack, path, table, mode)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def table_rows(database_url: str) -> list[tuple[str, str, str]]:
    """The polls as readers see them; and, once the reaper has swept, nothing else is stored."""
    polls = visible_store_status.c
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(polls.store_id, polls.status, polls.timestamp_utc).order_by(polls.id)
        ).all()

    def only_visible_rows_stored() -> bool:
        with engine.connect() as connection:
            stored = connection.scalar(text("SELECT count(*) FROM store_status"))
        return stored == len(rows)

    eventually(only_visible_rows_stored, timeout=30, what="hidden rows swept")
    engine.dispose()
    return [(r[0], r[1], str(r[2])[:26]) for r in rows]


@pytest.mark.parametrize("version", ["v1-2023-01", "v2-2024-10"])
def test_the_real_data_sets_files_import_with_their_own_column_names(
    one_worker: Stack, version: str
) -> None:
    files = sorted((REAL / version).glob("*.csv"))
    tables = {"menu_hours": "business_hours", "store_status_head": "store_status"}
    for path in files:
        table = tables.get(path.stem, "timezones")
        job = one_worker.wait_for(start_import(one_worker, path, table), "finished")
        lines = path.read_text().count("\n")
        assert job["progress"]["done"] in (lines - 1, lines), path


def test_an_import_paused_and_resumed_loads_exactly_what_an_undisturbed_one_does(
    one_worker: Stack, tmp_path: Path, migrated_database_url: str
) -> None:
    polls = write_polls(tmp_path / "polls.csv", 150_000)
    one_worker.wait_for(start_import(one_worker, polls), "finished")
    undisturbed = table_rows(migrated_database_url)

    job = start_import(one_worker, polls)
    for _ in range(3):
        one_worker.wait_for(job, "running")
        if one_worker.post(f"/jobs/{job}/pause").status_code != 202:
            break  # the job finished before the pause arrived
        one_worker.wait_for(job, "paused")
        one_worker.post(f"/jobs/{job}/resume")
    one_worker.wait_for(job, "finished")

    assert table_rows(migrated_database_url) == undisturbed
    assert len(undisturbed) == 150_000


def test_append_adds_rows_and_replace_swaps_the_table(
    one_worker: Stack, tmp_path: Path, migrated_database_url: str
) -> None:
    first = write_polls(tmp_path / "a.csv", 100, seed=1)
    second = write_polls(tmp_path / "b.csv", 50, seed=2)
    one_worker.wait_for(start_import(one_worker, first), "finished")
    one_worker.wait_for(start_import(one_worker, second, mode="append"), "finished")
    assert len(table_rows(migrated_database_url)) == 150

    one_worker.wait_for(start_import(one_worker, second), "finished")
    assert len(table_rows(migrated_database_url)) == 50


def test_a_file_with_bad_rows_fails_naming_the_lines_and_loads_nothing(
    one_worker: Stack, tmp_path: Path, migrated_database_url: str
) -> None:
    good = write_polls(tmp_path / "good.csv", 20)
    one_worker.wait_for(start_import(one_worker, good), "finished")
    bad = tmp_path / "bad.csv"
    lines = write_polls(tmp_path / "many.csv", 12_000).read_text().splitlines()
    lines[11_000] = "42,maybe,2023-01-20 10:00:00 UTC"
    lines[11_500] = "43,active,yesterday"
    bad.write_text("\n".join(lines) + "\n")

    failed = one_worker.wait_for(start_import(one_worker, bad), "failed")

    assert "line 11001: status must be active or inactive" in failed["error"]
    assert "line 11501: timestamp_utc" in failed["error"]
    assert len(table_rows(migrated_database_url)) == 20  # the earlier import is untouched


def test_a_stopped_import_leaves_nothing_behind(
    one_worker: Stack, tmp_path: Path, migrated_database_url: str
) -> None:
    job = start_import(one_worker, write_polls(tmp_path / "polls.csv", 300_000))
    one_worker.wait_for(job, "running")

    assert one_worker.post(f"/jobs/{job}/stop").status_code == 202
    one_worker.wait_for(job, "stopped")

    assert table_rows(migrated_database_url) == []


def test_stopping_a_paused_import_discards_its_staged_rows_and_upload(
    one_worker: Stack, tmp_path: Path, migrated_database_url: str
) -> None:
    job = start_import(one_worker, write_polls(tmp_path / "polls.csv", 300_000))
    one_worker.eventually_progress(job, 0.1)
    assert one_worker.post(f"/jobs/{job}/pause").status_code == 202
    one_worker.wait_for(job, "paused")

    assert one_worker.post(f"/jobs/{job}/stop").status_code == 200

    assert table_rows(migrated_database_url) == []  # also checks the staging table is empty
    assert not (tmp_path / "data" / "files" / "uploads" / f"{job}.csv").exists()


def test_a_worker_killed_mid_import_completes_it_once_without_duplicates(
    two_workers: Stack, tmp_path: Path, migrated_database_url: str
) -> None:
    job = start_import(two_workers, write_polls(tmp_path / "polls.csv", 300_000))
    two_workers.eventually_progress(job, 0.2)
    horse = two_workers.holder_pid(job)
    holder = two_workers.holder(job)

    holder.popen.kill()
    os.kill(horse, signal.SIGKILL)

    finished = two_workers.wait_for(job, "finished", timeout=60)
    assert finished["attempt"] == 2
    rows = table_rows(migrated_database_url)
    assert len(rows) == 300_000
    assert len(set(rows)) == len(rows)


def test_an_export_round_trips_through_an_import_unchanged(
    one_worker: Stack, tmp_path: Path, migrated_database_url: str
) -> None:
    one_worker.wait_for(
        start_import(one_worker, write_polls(tmp_path / "p.csv", 30_000)), "finished"
    )
    before = table_rows(migrated_database_url)
    export = one_worker.post("/exports", {"from": "2023-01-18", "till": "2023-01-25T00:00:00Z"})
    assert export.status_code == 202
    job = export.json()["id"]
    one_worker.wait_for(job, "running")
    one_worker.post(f"/jobs/{job}/pause")
    one_worker.wait_for(job, "paused")
    one_worker.post(f"/jobs/{job}/resume")
    one_worker.wait_for(job, "finished")

    response = requests.get(f"{one_worker.base}/jobs/{job}/result", timeout=30)
    assert response.status_code == 200
    assert (
        "store-status-20230118T000000-20230125T000000.csv"
        in response.headers["Content-Disposition"]
    )
    exported = tmp_path / "export.csv"
    exported.write_bytes(response.content)
    assert exported.read_text().count("\n") == 30_001

    one_worker.wait_for(start_import(one_worker, exported), "finished")
    assert table_rows(migrated_database_url) == before


def test_a_stopped_export_deletes_its_partial_file(
    one_worker: Stack, tmp_path: Path, migrated_database_url: str
) -> None:
    polls = write_polls(tmp_path / "p.csv", 300_000)
    one_worker.wait_for(start_import(one_worker, polls), "finished")
    job = one_worker.post("/exports", {"from": "2023-01-18", "till": "2023-01-26"}).json()["id"]
    one_worker.eventually_progress(job, 0.05)

    assert one_worker.post(f"/jobs/{job}/stop").status_code == 202
    one_worker.wait_for(job, "stopped")

    assert not (tmp_path / "data" / "files" / "results" / job).exists()
    assert requests.get(f"{one_worker.base}/jobs/{job}/result", timeout=5).status_code == 409
