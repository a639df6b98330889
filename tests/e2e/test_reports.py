"""Store reports end to end: /trigger_report and /get_report over data loaded by imports."""

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


def test_trigger_then_get_report_returns_running_then_the_csv(one_worker: Stack) -> None:
    load_real_sample(one_worker)

    triggered = one_worker.post("/trigger_report")
    assert triggered.status_code == 202
    report_id = triggered.json()["report_id"]
    first = get_report(one_worker, report_id)
    assert first.status_code == 200
    one_worker.wait_for(report_id, "finished")
    done = get_report(one_worker, report_id)

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
    as_json = get_report(one_worker, report_id, Accept="application/json").json()
    assert as_json["status"] == "Complete"
    assert as_json["rows"] == len(stores_in_head)


def test_a_paused_and_resumed_report_is_identical_to_an_undisturbed_one(one_worker: Stack) -> None:
    load_real_sample(one_worker)
    undisturbed = one_worker.post("/trigger_report").json()["report_id"]
    one_worker.wait_for(undisturbed, "finished")

    paused = one_worker.post("/trigger_report").json()["report_id"]
    one_worker.wait_for(paused, "running")
    if one_worker.post(f"/jobs/{paused}/pause").status_code == 202:
        one_worker.wait_for(paused, "paused")
        assert get_report(one_worker, paused).json()["status"] == "Running"
        one_worker.post(f"/jobs/{paused}/resume")
    one_worker.wait_for(paused, "finished")

    assert get_report(one_worker, paused).content == get_report(one_worker, undisturbed).content


def test_unknown_and_missing_report_ids(one_worker: Stack, tmp_path: Path) -> None:
    del tmp_path
    assert get_report(one_worker, "nope").status_code == 404
    assert requests.get(f"{one_worker.base}/get_report", timeout=5).status_code == 400
    work = one_worker.work(0.1)
    assert get_report(one_worker, work).status_code == 404  # a job, but not a report
