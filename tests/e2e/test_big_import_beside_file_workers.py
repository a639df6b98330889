"""A big import commits beside running file workers: nobody waits long, nobody exits.

``make run``'s processes on SQLite (one file for everyone, one writer at a time). Before
imports published in place, moving 300,000 staged rows into ``store_status`` held SQLite's
write lock for about 9 s, long enough for the file workers' ledger writes to give up.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import requests

from support import PYTHON, REPO, Process, base_env, eventually, free_port

ROWS = 300_000
#: The schedule's first day: 96 files named after 2018-06-28.
FIRST_DAY = "2018_06_28_%"


def write_polls(path: Path, rows: int) -> Path:
    with open(path, "w") as handle:
        handle.write("store_id,status,timestamp_utc\n")
        for n in range(rows):
            handle.write(f"{n % 5000},active,2023-01-2{n % 7} 10:{n % 60:02d}:00.000000 UTC\n")
    return path


def test_a_300k_row_import_commits_while_the_file_workers_work_a_whole_day_exactly_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = base_env(data_dir=str(tmp_path / "data"), api_port=str(port))
    stack = Process(
        [PYTHON, str(REPO / "tools" / "devstack.py"), "--seconds-in-min", "0.02"],
        env,
        tmp_path / "stack.log",
    )
    base = f"http://127.0.0.1:{port}"
    database = tmp_path / "data" / "yardmaster.db"
    polls = write_polls(tmp_path / "polls.csv", ROWS)
    try:
        eventually(
            lambda: requests.get(f"{base}/readyz", timeout=2).status_code == 200,
            timeout=60,
            what="the stack ready",
        )
        with open(polls, "rb") as handle:
            response = requests.post(
                f"{base}/imports",
                data={"table": "store_status", "mode": "append"},
                files={"file": (polls.name, handle)},
                timeout=120,
            )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]

        def import_ended() -> str | None:
            state = requests.get(f"{base}/jobs/{job_id}", timeout=10).json()["state"]
            return state if state in ("finished", "failed", "stopped") else None

        assert eventually(import_ended, timeout=180, what="the import ended") == "finished"

        def first_day_done() -> bool:
            with sqlite3.connect(database, timeout=30) as connection:
                done = connection.execute(
                    "SELECT count(*), count(DISTINCT name) FROM file_ledger"
                    " WHERE name LIKE ? AND state = 'done'",
                    (FIRST_DAY,),
                ).fetchone()
            return bool(done == (96, 96))

        eventually(first_day_done, timeout=180, what="the first file day done")
        with sqlite3.connect(database, timeout=30) as connection:
            seen = connection.execute("SELECT count(*) FROM visible_store_status").fetchone()[0]
            twice = connection.execute(
                "SELECT count(*) FROM (SELECT bucket, name FROM file_ledger"
                " GROUP BY bucket, name HAVING count(*) > 1)"
            ).fetchone()[0]
            quarantined = connection.execute(
                "SELECT count(*) FROM file_ledger WHERE state = 'quarantined'"
            ).fetchone()[0]
        assert seen == ROWS  # the simulator's files carry no polls here: all are the import's
        assert twice == 0
        assert quarantined == 0
        assert " exited (rc=" not in stack.output(), stack.output()[-3000:]
        assert "database is locked" not in stack.output()
    finally:
        stack.signal()
        stack.wait(timeout=90)
        stack.close()
