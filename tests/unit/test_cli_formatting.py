"""The CLI's formatters: what people read, made from the API's JSON."""

from __future__ import annotations

from typing import Any

import pytest

from yardmaster.cli import formatting as fmt
from yardmaster.cli.files import download_name

JOB: dict[str, Any] = {
    "id": "3f2c9e",
    "kind": "work",
    "owner": "7",
    "state": "running",
    "allowed_actions": ["pause", "stop"],
    "params": {"execution_time": 10.0},
    "progress": {"fraction": 0.4271, "message": "sleeping", "done": 4, "total": 10},
    "queue": "yardmaster-low",
    "priority": 0,
    "job_class": 5,
    "attempt": 1,
    "max_attempts": 3,
    "error": None,
    "result": None,
    "created_at": "2026-11-22T10:14:03.123456Z",
    "started_at": "2026-11-22T10:14:04Z",
    "finished_at": None,
}


@pytest.mark.parametrize(
    ("fraction", "shown"),
    [(0.4271, "42%"), (0, "0%"), (1, "100%"), (1.7, "100%"), (None, "-"), (True, "-")],
)
def test_progress_is_a_whole_percent_or_a_dash(fraction: Any, shown: str) -> None:
    assert fmt.percent(fraction) == shown


def test_times_are_shown_to_the_second_in_utc_and_absent_ones_as_a_dash() -> None:
    assert fmt.when("2026-11-22T10:14:03.123456Z") == "2026-11-22 10:14:03"
    assert fmt.when(None) == "-"


def test_a_table_aligns_every_column_to_its_widest_cell() -> None:
    assert fmt.table(["ID", "STATE"], [["a", "running"], ["bbbb", "-"]]) == (
        "ID    STATE\na     running\nbbbb  -"
    )


def test_the_jobs_table_has_one_row_per_job_and_says_where_the_page_is() -> None:
    page = {"items": [JOB], "total": 51, "page": 1, "pages": 2, "next": "/jobs?page=2"}
    header, row, footer = fmt.jobs_table(page).splitlines()
    assert header.split() == [h for h, _ in fmt.JOB_COLUMNS]
    assert row.split() == [
        "3f2c9e",
        "work",
        "7",
        "running",
        "42%",
        "yardmaster-low",
        "0",
        "2026-11-22",
        "10:14:03",
        "-",
    ]
    assert footer == "51 job(s), page 1 of 2 (next: --page 2)"


def test_an_empty_page_says_so() -> None:
    assert fmt.jobs_table({"items": [], "total": 0}) == "no jobs"


def test_a_jobs_details_are_aligned_names_and_values() -> None:
    lines = fmt.job_detail(JOB).splitlines()
    assert "state:    running" in lines
    assert "allowed:  pause, stop" in lines
    assert "progress: 42% (4 of 10) sleeping" in lines
    assert "params:   execution_time=10.0" in lines
    assert "finished: -" in lines
    assert "history:" not in lines


def test_a_jobs_history_is_shown_as_a_table_when_the_api_gives_one() -> None:
    job = {
        **JOB,
        "history": [
            {"state": "queued", "at": "2026-11-22T10:14:03Z"},
            {"state": "running", "at": "2026-11-22T10:14:04Z", "worker": "rw-0"},
        ],
    }
    text = fmt.job_detail(job)
    assert text.endswith(
        "history:\n"
        "STATE    AT                   WORKER\n"
        "queued   2026-11-22 10:14:03  -\n"
        "running  2026-11-22 10:14:04  rw-0"
    )


def test_a_control_answer_is_one_line_with_what_is_allowed_next() -> None:
    paused = {**JOB, "state": "paused", "allowed_actions": ["resume", "stop"]}
    assert fmt.job_line(paused) == "job 3f2c9e (work): paused, 42%; allowed now: resume, stop"
    done = {**JOB, "state": "finished", "allowed_actions": []}
    assert fmt.job_line(done).endswith("allowed now: nothing")


@pytest.mark.parametrize(
    ("answer", "line"),
    [
        (
            {"status": "Running", "state": "paused", "progress": {"fraction": 0.5, "message": ""}},
            "Running 50%, paused",
        ),
        ({"status": "Running", "progress": {"fraction": None}}, "Running -"),
        ({"status": "Failed", "error": "no data"}, "Failed: no data"),
    ],
)
def test_a_report_not_yet_complete_says_how_far_it_is(answer: dict[str, Any], line: str) -> None:
    assert fmt.report_status_line(answer) == line


def test_a_problem_document_becomes_one_line_with_the_allowed_actions() -> None:
    problem = {
        "title": "Conflict",
        "detail": "cannot pause a job\nthat is finished",
        "allowed_actions": [],
    }
    assert fmt.problem_line(409, "CONFLICT", problem) == (
        "409 Conflict: cannot pause a job that is finished (allowed now: nothing)"
    )


def test_an_error_without_a_problem_document_uses_the_http_reason() -> None:
    assert fmt.problem_line(502, "Bad Gateway", {}) == "502 Bad Gateway"


def test_a_taken_token_is_shown_with_its_place_and_its_claim() -> None:
    answer = {"token": "A07", "claim": "s3cr3t", "ticket": 8, "position": 2, "status": "ok"}
    assert fmt.token_line(answer) == "token A07  position 2  claim s3cr3t"


def test_a_redeemed_pictures_address_is_made_absolute() -> None:
    answer = {"status": "success", "image_url": "/queue/images/A00-1.svg"}
    assert fmt.redeem_line(answer, "http://h:8000/") == (
        "success: http://h:8000/queue/images/A00-1.svg"
    )


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ('attachment; filename="store-report-1.csv"', "store-report-1.csv"),
        ("attachment; filename=../../etc/passwd", "passwd"),
        ('attachment; filename="..\\\\evil.csv"', "evil.csv"),
        ('attachment; filename=".bashrc"', "fallback.csv"),
        ("attachment", "fallback.csv"),
        (None, "fallback.csv"),
    ],
)
def test_a_download_takes_only_a_bare_file_name_from_the_server(
    header: str | None, name: str
) -> None:
    assert download_name(header, "fallback.csv") == name
