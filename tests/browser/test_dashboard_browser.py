"""The dashboard in a real browser, against the real API, a report worker and the file pipeline."""

from __future__ import annotations

import csv as csv_module
import datetime as dt
import io
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from browsing import csp_violations, screenshot, start_api
from playwright.sync_api import BrowserContext, Page, expect

from e2e.stack import Start
from support import eventually

REPORT_HEADER = (
    "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,"
    "downtime_last_hour,downtime_last_day,downtime_last_week"
)
STORES = [str(1_000_000_000_000 + n) for n in range(12)]
ADMIN, CUSTOMER = "ym-admin-secret", "ym-c7-secret"


@pytest.fixture(scope="module")
def settings(module_redis_url: str, module_database_url: str, module_dir: Path) -> dict[str, str]:
    # fifo: one queue, so a report waits behind a running /work job (time to pause it);
    # /work sleeps 3x its execution time.
    return {
        "redis_url": module_redis_url,
        "database_url": module_database_url,
        "scheduling": "fifo",
        "work_time_scale": "3",
        "job_lease_seconds": "2",
        "stop_grace_seconds": "2",
        "heartbeat_interval": "0.5",
        "bucket_dir": str(module_dir / "bucket"),
    }


@pytest.fixture(scope="module")
def base(module_start: Start, settings: dict[str, str]) -> str:
    """The API and one report worker."""
    base = start_api(module_start, **settings)
    module_start("yardmaster.report_worker", "--name", "rw-1", **settings)
    live = lambda: requests.get(f"{base}/status", timeout=2).json()["services"]  # noqa: E731
    eventually(lambda: live().get("report-worker"), 30, "report worker up")
    return base


def write_samples(folder: Path) -> dict[str, Path]:
    """Small store data: a week of polls for 12 stores, their hours and their zones."""
    rng = random.Random(8)
    end = dt.datetime(2023, 1, 25, 12)
    polls = ["store_id,status,timestamp_utc"]
    for store in STORES:
        outage = rng.random()
        for hour in range(7 * 24):
            at = end - dt.timedelta(hours=hour, minutes=rng.randrange(60))
            status = "inactive" if rng.random() < outage * 0.5 else "active"
            polls.append(f"{store},{status},{at:%Y-%m-%d %H:%M:%S.%f} UTC")
    hours = ["store_id,day,start_time_local,end_time_local"]
    hours += [f"{s},{d},08:00:00,22:00:00" for s in STORES[:6] for d in range(7)]
    zones = ["store_id,timezone_str"] + [f"{s},America/Chicago" for s in STORES]
    files = {"store_status": polls, "business_hours": hours, "timezones": zones}
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for table, lines in files.items():
        paths[table] = folder / f"{table}.csv"
        paths[table].write_text("\n".join(lines) + "\n")
    return paths


def upload_through_page(page: Page, paths: dict[str, Path]) -> None:
    page.locator("#view-data").get_by_role("button", name="Upload").wait_for()
    for table, path in paths.items():
        page.locator(f'#upload-form input[name="{table}"]').set_input_files(path)
    page.locator("#upload-form").get_by_role("button", name="Upload").click()


def test_browsers_get_the_dashboard_and_api_clients_keep_the_json_index(
    base: str, page: Page
) -> None:
    as_json = requests.get(base + "/", timeout=5)
    as_html = requests.get(base + "/", headers={"Accept": "text/html"}, timeout=5)
    assert as_json.headers["Content-Type"].startswith("application/json")
    assert as_json.json()["links"]["jobs"] == "/jobs"
    assert as_html.headers["Content-Type"].startswith("text/html")
    assert "Accept" in as_html.headers["Vary"]

    page.goto(base + "/")

    expect(page.locator("#open-banner")).to_contain_text("The API is open")
    expect(page.locator("#jobs-live")).to_have_text("live")
    screenshot(page, "jobs-empty")
    page.get_by_role("link", name="Queue", exact=True).click()
    expect(page.locator("#queue-length")).to_have_text("0")
    expect(page.locator("#queue-link")).to_have_attribute("href", "/queue/")
    screenshot(page, "queue")
    assert not page.errors  # type: ignore[attr-defined]


def test_sample_data_uploads_with_progress_and_a_bad_line_is_reported_by_its_number(
    base: str, page: Page, tmp_path: Path
) -> None:
    paths = write_samples(tmp_path)
    bad = tmp_path / "bad_polls.csv"
    bad.write_text(
        "store_id,status,timestamp_utc\n"
        "1,active,2023-01-22 12:09:39.388884 UTC\n"
        "2,sleeping,2023-01-22 12:10:39.388884 UTC\n"
    )
    page.goto(base + "/#data")

    upload_through_page(page, paths)

    uploads = page.locator("#uploads-table tbody tr")
    for table in paths:
        row = uploads.filter(has=page.locator(f'td:text-is("{table}")')).first
        expect(row.locator(".import-state")).to_have_text("finished")
        expect(row.locator("progress")).to_have_attribute("value", "1")
    expect(uploads.filter(has_text="store_status").first).to_contain_text(
        f"{len(STORES) * 7 * 24} rows loaded"
    )
    page.locator('#upload-form input[name="store_status"]').set_input_files(bad)
    page.locator("#upload-form select[name=mode]").select_option("append")
    page.locator("#upload-form").get_by_role("button", name="Upload").click()
    failed = uploads.filter(has_text="bad_polls.csv")
    expect(failed.locator(".import-state")).to_have_text("failed")
    expect(failed.locator(".import-message")).to_contain_text(
        "line 3: status must be active or inactive"
    )
    page.locator("#upload-form input[name=timezones]").set_input_files(bad)
    page.locator("#upload-form").get_by_role("button", name="Upload").click()
    expect(uploads.first.locator(".upload-error")).to_contain_text(
        "Bad Request: timezones files need a timezone_str column"
    )
    screenshot(page, "data-uploads")

    page.locator("#export-form input[name=from]").fill("2023-01-24T00:00")
    page.locator("#export-form input[name=till]").fill("2023-01-25T00:00")
    page.locator("#export-form").get_by_role("button", name="Export").click()
    link = page.locator("#exports").get_by_role("link", name="Download CSV")
    with page.expect_download() as download:
        link.click()
    exported = Path(download.value.path()).read_text().splitlines()
    assert exported[0] == "store_id,status,timestamp_utc"
    assert len(exported) > len(STORES) * 20
    screenshot(page, "data-export")
    assert not page.errors  # type: ignore[attr-defined]


def test_a_report_is_paused_and_resumed_from_the_jobs_table_then_read_and_downloaded(
    base: str, page: Page, tmp_path: Path
) -> None:
    for table, path in write_samples(tmp_path).items():
        with open(path, "rb") as handle:
            sent = requests.post(
                f"{base}/imports", data={"table": table}, files={"file": handle}, timeout=30
            )
        job_id = sent.json()["id"]
        eventually(lambda j=job_id: _state(base, j) == "finished", 60, f"{table} imported")
    blocker = requests.post(f"{base}/work", json={"execution_time": 10}, timeout=5).json()["id"]
    eventually(lambda: _state(base, blocker) == "running", 30, "the worker busy")
    page.goto(base + "/#reports")
    page.get_by_role("button", name="Trigger a report").click()
    report_row = page.locator("#reports-table tbody tr").first
    expect(report_row).to_contain_text("queued")
    report_id = report_row.get_attribute("data-report-id")

    page.get_by_role("link", name="Jobs", exact=True).click()
    row = page.locator(f'#jobs-table tr[data-job-id="{report_id}"]')
    expect(row.locator(".job-state")).to_have_text("queued")
    expect(row.locator("button[data-action=resume]")).to_be_disabled()
    row.locator("button[data-action=pause]").click()
    expect(row.locator(".job-state")).to_have_text("paused")
    expect(row.locator("button[data-action=pause]")).to_be_disabled()
    screenshot(page, "jobs-paused-report")
    row.locator("button[data-action=resume]").click()
    expect(row.locator(".job-state")).to_have_text("resuming")
    page.locator(f'#jobs-table tr[data-job-id="{blocker}"] button[data-action=stop]').click()
    expect(page.locator(f'#jobs-table tr[data-job-id="{blocker}"] .job-state')).to_have_text(
        "stopped"
    )
    expect(row.locator(".job-state")).to_have_text("finished", timeout=60_000)
    expect(row.locator("button[data-action]")).to_have_count(3)
    for action in ("pause", "resume", "stop"):
        expect(row.locator(f"button[data-action={action}]")).to_be_disabled()

    row.get_by_role("link", name=report_id[:8]).click()
    history = page.locator("#detail-history tbody")
    for state in ("queued", "paused", "resuming", "running", "finished"):
        expect(history).to_contain_text(state)
    expect(history).to_contain_text("pause requested")  # the server's history, with reasons
    screenshot(page, "job-detail")

    page.get_by_role("link", name="Reports", exact=True).click()
    page.locator(f'#reports-table tr[data-report-id="{report_id}"]').get_by_role(
        "button", name="Show"
    ).click()
    expect(page.locator("#report-rows tbody tr")).to_have_count(len(STORES))
    expect(page.locator("#chart-day svg rect.bar")).to_have_count(10)
    expect(page.locator("#chart-week svg rect.bar")).to_have_count(10)
    header = page.locator("#report-rows thead th", has_text=re.compile("^store_id$"))
    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(page.locator("#report-rows tbody tr").first).to_contain_text(max(STORES))
    screenshot(page, "report")
    with page.expect_download() as download:
        page.locator("#report-download").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == REPORT_HEADER
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(STORES)
    assert not page.errors  # type: ignore[attr-defined]


def _state(base: str, job_id: str) -> str:
    return str(requests.get(f"{base}/jobs/{job_id}", timeout=5).json()["state"])


def test_a_file_workers_statistics_line_appears_in_the_files_view(
    base: str, page: Page, module_start: Start, settings: dict[str, str], module_dir: Path
) -> None:
    bucket = str(module_dir / "bucket")
    worker = module_start(
        "yardmaster.file_worker",
        "--dir",
        bucket,
        "--name",
        "fw-1",
        "--seconds-in-min",
        "0.02",
        **settings,
    )
    worker.wait_for_output("watching")
    simulator = module_start(
        "yardmaster.simulator", "--dir", bucket, "--seconds-in-min", "0.02", **settings
    )
    page.goto(base + "/#files")

    stats = page.locator('#workers-table tr[data-worker="fw-1"] .stats')
    expect(stats).to_have_text(
        re.compile(r"^Files processed: \d+, Total Time: [\d.]+, Sum of Squares: [\d.]+$")
    )
    expect(page.locator("#files-table tbody tr").first).to_be_visible()
    expect(page.locator("#timeline svg rect.file").first).to_be_attached()
    expect(page.locator("#files-counts")).to_contain_text("done")
    expect(page.locator("#files-arriving")).to_contain_text("arriving")  # the API sees the bucket
    screenshot(page, "files")
    assert not page.errors  # type: ignore[attr-defined]
    simulator.close()
    worker.close()


def test_work_is_submitted_for_a_customer_of_a_site_both_created_in_the_work_view(
    base: str, page: Page
) -> None:
    page.goto(base + "/#work")
    sites = page.locator("#site-form")
    sites.locator("input[name=name]").fill("Acme Stores")
    sites.locator("input[name=domain]").fill("acme.example")
    sites.get_by_role("button", name="Add site").click()
    site = page.locator("#sites-table tbody tr", has_text="Acme Stores")
    expect(site).to_contain_text("low")
    site_id = str(site.get_attribute("data-site-id"))
    sites.locator("input[name=name]").fill("Acme Stores")
    sites.get_by_role("button", name="Add site").click()
    expect(page.locator("#notice")).to_contain_text("Conflict")  # the name is taken

    customers = page.locator("#customer-form")
    customers.locator("select[name=site_id]").select_option(site_id)
    customers.locator("input[name=name]").fill("Ada Lovelace")
    customers.get_by_role("button", name="Add customer").click()
    customer = page.locator("#customers-table tbody tr", has_text="Ada Lovelace")
    expect(customer).to_contain_text("active")
    customer_id = str(customer.get_attribute("data-customer-id"))
    work = page.locator("#work-form")
    expect(work.locator("select[name=customer]")).to_have_value(customer_id)
    expect(work.locator("output[name=site]")).to_have_text(f"Acme Stores (#{site_id})")

    work.locator("input[name=execution_time]").fill("0")
    work.locator("input[name=count]").fill("2")
    work.get_by_role("button", name="Submit").click()
    notice = page.locator("#notice")
    expect(notice).to_contain_text("item 0: execution_time must be more than 0")
    expect(notice).to_contain_text("item 1: execution_time must be more than 0")
    work.locator("input[name=execution_time]").fill("0.2")
    work.locator("input[name=count]").fill("3")
    expect(page.locator("#work-class")).to_have_text("class 4 (up to 1 s)")
    work.get_by_role("button", name="Submit").click()

    submitted = page.locator("#work-table tbody tr")
    expect(submitted).to_have_count(3)
    expect(submitted.locator(".work-class")).to_have_text(["4"] * 3)
    expect(submitted.locator(".work-queue")).to_have_text([re.compile("^yardmaster-")] * 3)
    expect(submitted.locator(".work-state")).to_have_text(["finished"] * 3)
    expect(customer.locator("td").last).to_have_text("0")  # no queued jobs left
    screenshot(page, "work")
    ids = [str(row.get_attribute("data-job-id")) for row in submitted.all()]
    page.get_by_role("link", name="Jobs", exact=True).click()
    for job_id in ids:
        row = page.locator(f'#jobs-table tr[data-job-id="{job_id}"]')
        expect(row.locator(".job-state")).to_have_text("finished")
        expect(row.locator("td[data-label=Owner]")).to_have_text(customer_id)
    assert not page.errors  # type: ignore[attr-defined]


def test_no_page_breaks_its_content_security_policy(base: str, page: Page) -> None:
    violations = csp_violations(page)
    page.goto(base + "/")
    expect(page.locator("#jobs-live")).to_have_text("live")
    for view in ("Reports", "Data", "Files", "Work", "Queue", "Jobs"):
        page.get_by_role("link", name=view, exact=True).click()
        expect(page.locator(f'section[data-view="{view.lower()}"]')).to_be_visible()
    expect(page.locator("#jobs-live")).to_have_text("live")
    page.goto(base + "/queue/")
    expect(page.locator("#take")).to_be_visible()
    page.goto(base + "/docs")
    expect(page.locator(".opblock").first).to_be_visible()  # Swagger UI ran and drew the API

    assert violations == []
    assert not page.errors  # type: ignore[attr-defined]


def test_the_report_table_reads_quoted_and_spreadsheet_safe_store_ids_back_as_they_were(
    base: str, page: Page
) -> None:
    page.goto(base + "/")
    written = io.StringIO()  # as the report worker writes it: csv's quoting, escaped ids
    csv_module.writer(written).writerows(
        [
            ["store_id", "uptime_last_hour", "downtime_last_week"],
            ['\'=HYPERLINK("http://evil.example")', 1.5, -2],
            ['a, "b"\nc', 60, 19.25],
            ["''quoted", 0, 0],
            ["'plain", 1, 2],
        ]
    )
    csv = written.getvalue()

    parsed = page.evaluate(
        """async (csv) => (await import("/static/js/reports.js")).parseCsv(csv)""", csv
    )

    assert parsed == {
        "header": ["store_id", "uptime_last_hour", "downtime_last_week"],
        "rows": [
            ['=HYPERLINK("http://evil.example")', 1.5, -2],  # shown as text, never evaluated
            ['a, "b"\nc', 60, 19.25],
            ["'quoted", 0, 0],
            ["'plain", 1, 2],  # a quote before an ordinary character was never an escape
        ],
    }


def test_the_dashboard_fits_a_phone_screen(
    base: str, new_context: Callable[..., BrowserContext]
) -> None:
    phone = new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    phone.goto(base + "/#jobs")
    expect(phone.locator("#jobs-live")).to_have_text("live")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    screenshot(phone, "phone-jobs")


@pytest.fixture(scope="module")
def guarded_base(module_start: Start, settings: dict[str, str]) -> str:
    """A second API process on the same data, with access tokens required."""
    return start_api(module_start, **settings, api_tokens=f"admin={ADMIN},customer-7={CUSTOMER}")


def test_with_tokens_required_the_page_asks_for_one_and_shows_only_the_customers_jobs(
    guarded_base: str, page: Page
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    others = requests.post(f"{guarded_base}/trigger_report", headers=admin, timeout=5).json()
    page.goto(guarded_base + "/")

    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#open-banner")).to_be_hidden()
    screenshot(page, "token-prompt")
    dialog.locator("input[name=token]").fill(CUSTOMER)
    dialog.get_by_role("button", name="Use token").click()

    expect(page.locator("#principal")).to_have_text("signed in as customer-7")
    expect(page.locator("#jobs-live")).to_have_text("live")
    page.get_by_role("link", name="Reports", exact=True).click()
    page.get_by_role("button", name="Trigger a report").click()
    mine = page.locator("#reports-table tbody tr")
    expect(mine).to_have_count(1)
    assert mine.get_attribute("data-report-id") != others["report_id"]
    page.get_by_role("link", name="Data", exact=True).click()
    page.locator("#export-form input[name=from]").fill("2023-01-24T00:00")
    page.locator("#export-form input[name=till]").fill("2023-01-25T00:00")
    page.locator("#export-form").get_by_role("button", name="Export").click()
    expect(page.locator("#exports .export")).to_have_count(1)
    page.goto(f"{guarded_base}/#jobs/{others['report_id']}")
    expect(page.locator("#notice")).to_contain_text("Not Found")
    screenshot(page, "customer-jobs")
    assert not page.errors  # type: ignore[attr-defined]


def test_with_tokens_a_download_link_carries_no_token_and_follows_a_fresh_signed_url(
    base: str, guarded_base: str, page: Page
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    report = requests.post(f"{guarded_base}/trigger_report", headers=admin, timeout=5).json()
    job = f"{guarded_base}/jobs/{report['report_id']}"
    finished = lambda: requests.get(job, headers=admin, timeout=5).json()["state"] == "finished"  # noqa: E731
    eventually(finished, 60, "the report finished (the worker of base)")
    page.goto(guarded_base + "/#reports")
    dialog = page.locator("#token-dialog")
    dialog.locator("input[name=token]").fill(ADMIN)
    dialog.get_by_role("button", name="Use token").click()

    row = page.locator(f'#reports-table tr[data-report-id="{report["report_id"]}"]')
    link = row.get_by_role("link", name="CSV")
    expect(link).to_have_attribute("href", f"/get_report?report_id={report['report_id']}")
    with page.expect_download() as download:
        link.click()

    assert Path(download.value.path()).read_text().splitlines()[0] == REPORT_HEADER
    assert "&signature=admin." in download.value.url
    assert ADMIN not in download.value.url
    assert not page.errors  # type: ignore[attr-defined]
