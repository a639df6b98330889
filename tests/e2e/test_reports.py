"""Store reports end to end: /trigger_report and /get_report over data loaded by imports (one
stack for the module: each test loads the sample it reports on, with replace imports)."""

from __future__ import annotations

from pathlib import Path

import requests

from e2e.stack import Stack
from e2e.test_data_jobs import REAL, start_import


def load_real_sample(stack: Stack) -> None:
    v1 = REAL / "v1-2023-01"
    for path, table in [
        (v1 / "store_status_head.csv", "store_status"),
        (v1 / "menu_hours.csv", "business_hours"),
        (v1 / "bq-results-timezones.csv", "timezones"),
    ]:
        stack.wait_for(start_import(stack, path, table), "finished")


def get_report(stack: Stack, report_id: str, **headers: str) -> requests.Response:
    return requests.get(
        f"{stack.base}/get_report", params={"report_id": report_id}, headers=headers, timeout=30
    )


def test_trigger_then_get_report_returns_running_then_the_csv(shared_stack: Stack) -> None:
    load_real_sample(shared_stack)

    triggered = shared_stack.post("/trigger_report")
    assert triggered.status_code == 202
    report_id = triggered.json()["report_id"]
    first = get_report(shared_stack, report_id)
    assert first.status_code == 200
    shared_stack.wait_for(report_id, "finished")
    done = get_report(shared_stack, report_id)

    assert first.headers["Content-Type"].startswith(("application/json", "text/csv"))
    assert done.headers["X-Report-Status"] == "Complete"
    assert done.headers["Content-Type"].startswith("text/csv")
    lines = done.text.splitlines()
    assert lines[0] == (
        "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,"
        "downtime_last_hour,downtime_last_day,downtime_last_week"
    )
    stores_in_head = {
        line.split(",")[0]
        for line in (REAL / "v1-2023-01" / "store_status_head.csv").read_text().splitlines()[1:]
    }
    assert len(lines) - 1 == len(stores_in_head)
    as_json = get_report(shared_stack, report_id, Accept="application/json").json()
    assert as_json["status"] == "Complete"
    assert as_json["rows"] == len(stores_in_head)


def test_a_paused_and_resumed_report_is_identical_to_an_undisturbed_one(
    shared_stack: Stack,
) -> None:
    load_real_sample(shared_stack)
    undisturbed = shared_stack.post("/trigger_report").json()["report_id"]
    shared_stack.wait_for(undisturbed, "finished")

    paused = shared_stack.post("/trigger_report").json()["report_id"]
    shared_stack.wait_for(paused, "running")
    if shared_stack.post(f"/jobs/{paused}/pause").status_code == 202:
        shared_stack.wait_for(paused, "paused")
        assert get_report(shared_stack, paused).json()["status"] == "Running"
        shared_stack.post(f"/jobs/{paused}/resume")
    shared_stack.wait_for(paused, "finished")

    assert get_report(shared_stack, paused).content == get_report(shared_stack, undisturbed).content


def test_unknown_and_missing_report_ids(shared_stack: Stack, tmp_path: Path) -> None:
    del tmp_path
    assert get_report(shared_stack, "nope").status_code == 404
    assert requests.get(f"{shared_stack.base}/get_report", timeout=5).status_code == 400
    work = shared_stack.work(0.1)
    assert get_report(shared_stack, work).status_code == 404  # a job, but not a report
