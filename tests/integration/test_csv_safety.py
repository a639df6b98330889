"""CSV in and out, through the API and a report worker's segments run in this process.

Safe CSV out: cells a spreadsheet would evaluate (``=``, ``+``, ``-``, ``@``, tab, carriage
return) are imported as data, written with a ``'`` in front in exports and reports, and an
export imported again gives back exactly the values it was made from.

Bad input is bad input: a file that cannot be parsed fails its job on the first attempt,
naming the line and why in plain words, and nothing of it is imported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select

from yardmaster.report_worker import runner
from yardmaster.report_worker.core.cell_escape import FORMULA_TRIGGERS
from yardmaster.report_worker.tasks import TaskContext
from yardmaster.shared.db import make_engine
from yardmaster.shared.models import StagedTimezone, StoreTimezone, visible_store_status

RunJob = Callable[[str], dict[str, Any]]
POLL = "{store},{status},2023-01-2{day} 1{hour}:{minute:02d}:00.000000 UTC\n"


@pytest.fixture
def run_job(
    client: FlaskClient, database_url: str, redis_url: str, tmp_path: Path, monkeypatch: Any
) -> Iterator[RunJob]:
    """Run a job's segment as a report worker's work horse would (an engine of its own, the
    API's files folder); give the job as ``GET /jobs/<id>`` shows it afterwards."""
    connection = redis.Redis.from_url(redis_url)

    def run(job_id: str) -> dict[str, Any]:
        engine = make_engine(database_url)
        context = TaskContext(engine, tmp_path / "files")
        runtime = runner.Runtime(engine, connection, context, "rw", 30)
        monkeypatch.setattr(runner, "_runtime", runtime)
        try:
            runner.run_segment(job_id)
        finally:
            engine.dispose()
        job: dict[str, Any] = client.get(f"/jobs/{job_id}").get_json()
        return job

    yield run
    connection.close()


def upload(client: FlaskClient, table: str, content: bytes, mode: str = "replace") -> str:
    form = {"table": table, "mode": mode, "file": (io.BytesIO(content), f"{table}.csv")}
    response = client.post("/imports", data=form, content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()
    return str(response.get_json()["id"])


def polls(stores: list[str], per_store: int = 3) -> str:
    """Polls of each store (ids written into the CSV as given: quote them yourself)."""
    return "".join(
        POLL.format(store=store, status="active" if n % 2 else "inactive", day=n, hour=n, minute=i)
        for i, store in enumerate(stores)
        for n in range(per_store)
    )


def stored_polls(engine: Engine) -> list[tuple[str, str, str]]:
    view = visible_store_status.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(view.store_id, view.status, view.timestamp_utc).order_by(
                view.store_id, view.timestamp_utc
            )
        ).all()
    return [(store, status, str(stamp)[:19]) for store, status, stamp in rows]


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# --- Safe CSV out --------------------------------------------------------------------------

FORMULAS = [
    '=HYPERLINK("http://evil.example/?x","click")',
    "=1+2",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
]
#: Cells of an uploaded file -> the store id they import as (an exported, escaped cell loses
#: its one leading quote; any other cell is taken as it is).
IMPORTED_AS = {
    **{formula: formula for formula in FORMULAS},
    "'=already escaped": "=already escaped",
    "'\ttab first": "\ttab first",
    "''quote first": "'quote first",
    "'plain quote": "'plain quote",
    "4711": "4711",
}


def csv_cell(value: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([value])
    return buffer.getvalue()


def evaluated_by_a_spreadsheet(cell: str) -> bool:
    return cell[:1] in FORMULA_TRIGGERS


def test_formula_cells_go_out_escaped_and_an_export_imports_back_exactly(
    client: FlaskClient, run_job: RunJob, engine: Engine
) -> None:
    content = "store_id,status,timestamp_utc\n" + polls([csv_cell(c) for c in IMPORTED_AS])
    assert run_job(upload(client, "store_status", content.encode()))["state"] == "finished"
    imported = stored_polls(engine)
    assert {store for store, _, _ in imported} == set(IMPORTED_AS.values())

    export = client.post("/exports", json={"from": "2023-01-18", "till": "2023-01-30"})
    assert run_job(export.get_json()["id"])["state"] == "finished"
    exported = client.get(f"/jobs/{export.get_json()['id']}/result").get_data(as_text=True)

    rows = cells(exported)
    assert rows[0] == ["store_id", "status", "timestamp_utc"]
    assert len(rows) == 1 + len(imported)
    assert not [cell for row in rows for cell in row if evaluated_by_a_spreadsheet(cell)]
    assert "'=1+2" in {row[0] for row in rows}

    again = upload(client, "store_status", exported.encode())
    assert run_job(again)["state"] == "finished"
    assert stored_polls(engine) == imported


def test_a_reports_store_ids_go_out_escaped_and_its_numbers_as_numbers(
    client: FlaskClient, run_job: RunJob
) -> None:
    content = "store_id,status,timestamp_utc\n" + polls([csv_cell(c) for c in IMPORTED_AS])
    assert run_job(upload(client, "store_status", content.encode()))["state"] == "finished"

    report = client.post("/trigger_report").get_json()["report_id"]
    assert run_job(report)["state"] == "finished"
    answer = client.get(f"/get_report?report_id={report}")

    assert answer.status_code == 200
    header, *rows = cells(answer.get_data(as_text=True))
    assert header[0] == "store_id"
    assert len(rows) == len(IMPORTED_AS)
    assert not [cell for row in rows for cell in row if evaluated_by_a_spreadsheet(cell)]
    assert {row[0] for row in rows} >= {"'=1+2", "'-2+3", "'@SUM(A1:A2)", "''quote first"}
    assert all(float(cell) >= 0 for row in rows for cell in row[1:])


# --- Bad input is bad input ----------------------------------------------------------------


def good_polls(lines: int) -> list[bytes]:
    """``lines`` poll lines (the header is line 1, so they are lines 2 to lines + 1)."""
    return [
        POLL.format(
            store=f"s{n % 40}", status="active", day=n % 7, hour=n % 10, minute=n % 60
        ).encode()
        for n in range(lines)
    ]


def with_line(lines: list[bytes], number: int, text: bytes) -> bytes:
    """The file of ``lines`` with line ``number`` (counted from the header, line 1) replaced."""
    changed = list(lines)
    changed[number - 2] = text
    return b"store_id,status,timestamp_utc\n" + b"".join(changed)


LINES = good_polls(12_000)  # more than two chunks of the import (5,000 lines each)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            with_line(LINES, 7001, b'4711,"active,2023-01-20 10:00:00 UTC\n'),
            "line 7001: a quoted field is not closed on its line",
        ),
        (
            with_line(LINES, 2, b"4711,active,2023-01-20 10:00:00 UTC,extra\n"),
            "line 2: 4 fields, expected 3",
        ),
        (
            with_line(LINES, 10_001, b"4711,active,2023-01-20 10:00:00 UTC,extra\n"),
            "line 10001: 4 fields, expected 3",
        ),
        (with_line(LINES, 3, b"4711,active\n"), "line 3: 2 fields, expected 3"),
        (
            with_line(LINES, 12_001, b"caf\xe9,active,2023-01-20 10:00:00 UTC\n"),
            "line 12001: not UTF-8 text (byte 0xe9",
        ),
        (
            with_line(LINES, 9_000, b"4711,maybe,2023-01-20 10:00:00 UTC\n"),
            "line 9000: status must be active or inactive",
        ),
    ],
    ids=[
        "unterminated quote",
        "extra field on the first line",
        "extra field past the first chunks",
        "missing field",
        "not UTF-8 past the first chunk",
        "bad value",
    ],
)
def test_a_malformed_file_fails_on_its_first_attempt_naming_the_line(
    client: FlaskClient, run_job: RunJob, engine: Engine, content: bytes, reason: str
) -> None:
    earlier = upload(client, "store_status", b"store_id,status,timestamp_utc\n" + LINES[0])
    assert run_job(earlier)["state"] == "finished"

    job = run_job(upload(client, "store_status", content))

    assert (job["state"], job["attempt"]) == ("failed", 1)
    assert reason in job["error"]
    assert "after" not in job["error"]  # not "(after 3 failed attempts)"
    assert count(engine, visible_store_status) == 1  # the earlier import, nothing of this one


def zones(stores: list[str]) -> bytes:
    return b"store_id,timezone_str\n" + "".join(f"{s},Asia/Beirut\n" for s in stores).encode()


def test_a_store_listed_twice_in_timezones_is_reported_by_line_not_as_sql(
    client: FlaskClient, run_job: RunJob, engine: Engine
) -> None:
    stores = [f"store-{n}" for n in range(11_000)]
    stores[8_998] = "store-1"  # line 9000 repeats line 3 (two chunks apart)

    job = run_job(upload(client, "timezones", zones(stores)))

    assert (job["state"], job["attempt"]) == ("failed", 1)
    assert "line 9000: store_id 'store-1' is already on line 3" in job["error"]
    assert count(engine, StoreTimezone) == count(engine, StagedTimezone) == 0


def test_appending_a_store_the_timezones_table_has_is_refused_by_line(
    client: FlaskClient, run_job: RunJob, engine: Engine
) -> None:
    assert run_job(upload(client, "timezones", zones(["a", "b"])))["state"] == "finished"

    job = run_job(upload(client, "timezones", zones(["c", "b"]), mode="append"))

    assert (job["state"], job["attempt"]) == ("failed", 1)
    assert "line 3: store_id 'b' already has a time zone" in job["error"]
    assert count(engine, StoreTimezone) == 2
    assert count(engine, StagedTimezone) == 0
