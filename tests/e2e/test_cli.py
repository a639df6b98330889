"""The ``yardmaster`` command line against a running API and report worker.

One stack serves the whole module; every check runs the CLI as a subprocess, as a user would.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from e2e.stack import Stack, Start, make_stack
from support import (
    PYTHON,
    RedisServer,
    Starter,
    base_env,
    eventually,
    free_port,
)
from yardmaster.shared.db import make_engine
from yardmaster.shared.migrate import upgrade_to_head

#: How the CLI is started: the ``yardmaster`` console script ``make install`` puts in .venv/bin.
CLI = [str(Path(PYTHON).parent / "yardmaster")]
REPORT_HEADER = (
    "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,"
    "downtime_last_hour,downtime_last_day,downtime_last_week"
)
STORES = ("101", "202", "303")
POLLS_FROM = dt.datetime(2023, 1, 18)
POLLS = 8 * 24  # one per store and hour for eight days


def cli(
    api: str, *args: str, cwd: Path | None = None, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``yardmaster ARGS`` with YARDMASTER_API (and YARDMASTER_TOKEN) set."""
    return subprocess.run(
        [*CLI, *args],
        env=base_env(api=api, **({"token": token} if token else {})),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class Backing:
    """What the module's processes share: Redis, the database, and how to start one."""

    redis_url: str
    database_url: str
    start: Start


@pytest.fixture(scope="module")
def backing(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[Backing]:
    """A fresh SQLite database and the session's Redis, emptied; processes stopped after."""
    root = tmp_path_factory.mktemp("cli")
    database_url = f"sqlite:///{root / 'cli.db'}"
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    engine.dispose()
    redis.Redis.from_url(redis_server.url).flushall()
    start = Starter(root)
    try:
        yield Backing(redis_server.url, database_url, start)
    finally:
        start.close_all()


@pytest.fixture(scope="module")
def api(backing: Backing) -> Stack:
    """The API and one report worker, open (no access tokens), for the whole module."""
    return make_stack(backing.start, backing.redis_url, backing.database_url, workers=1)


def write_sample(folder: Path) -> dict[str, Path]:
    """Three small CSVs of the store-monitoring data set, one per table."""
    folder.mkdir(exist_ok=True)
    polls = ["store_id,status,timestamp_utc"] + [
        f"{store},{'inactive' if hour % 7 == 0 else 'active'},"
        f"{POLLS_FROM + dt.timedelta(hours=hour, minutes=n * 5):%Y-%m-%d %H:%M:%S}.123 UTC"
        for n, store in enumerate(STORES)
        for hour in range(POLLS)
    ]
    hours = ["store_id,dayOfWeek,start_time_local,end_time_local"] + [
        f"101,{day},09:00:00,17:00:00" for day in range(5)
    ]
    zones = ["store_id,timezone_str", "101,America/Chicago", "202,Asia/Tokyo"]
    files = {"store_status": polls, "business_hours": hours, "timezones": zones}
    for table, lines in files.items():
        (folder / f"{table}.csv").write_text("\n".join(lines) + "\n")
    return {table: folder / f"{table}.csv" for table in files}


@pytest.fixture(scope="module")
def imported(
    api: Stack, tmp_path_factory: pytest.TempPathFactory
) -> list[subprocess.CompletedProcess[str]]:
    """The sample data, imported table by table with ``yardmaster import FILE --table T --wait``."""
    sample = write_sample(tmp_path_factory.mktemp("sample"))
    return [
        cli(api.base, "import", str(path), "--table", t, "--wait") for t, path in sample.items()
    ]


def test_import_uploads_each_table_and_waits_until_it_is_loaded(
    imported: list[subprocess.CompletedProcess[str]],
) -> None:
    for run in imported:
        assert run.returncode == 0, run.stderr
        assert re.fullmatch(
            r"job [0-9a-f]{32} \(import\): queued, 0%; allowed now: .*\n", run.stdout
        )
        assert run.stderr.splitlines()[-1] == "finished 100%"


def test_an_import_with_bad_rows_fails_with_their_line_numbers(api: Stack, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "store_id,status,timestamp_utc\n1,active,2023-01-18 10:00:00 UTC\n2,active,soon\n"
    )

    run = cli(api.base, "import", str(bad), "--table", "store_status", "--mode", "append", "--wait")

    assert run.returncode == 1
    assert run.stderr.splitlines()[-1].startswith("yardmaster: job ")
    assert "failed: the file was not imported" in run.stderr
    assert "line 3: timestamp_utc" in run.stderr


def test_an_import_with_a_wrong_header_is_refused_at_once(api: Stack, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("store,zone\n1,UTC\n")

    run = cli(api.base, "import", str(wrong), "--table", "timezones")

    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr.startswith("yardmaster: 400 Bad Request: ")
    assert len(run.stderr.splitlines()) == 1


def test_a_report_is_triggered_waited_for_and_saved_as_csv(
    api: Stack, imported: object, tmp_path: Path
) -> None:
    triggered = cli(api.base, "report", "trigger", "--wait")
    assert triggered.returncode == 0, triggered.stderr
    report_id = triggered.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", report_id)
    assert "finished 100%" in triggered.stderr.splitlines()

    saved = cli(api.base, "report", "get", report_id, "-o", str(tmp_path / "r.csv"))
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.startswith(f"saved {tmp_path / 'r.csv'} (")
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0] == REPORT_HEADER
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(STORES)

    by_name = cli(api.base, "report", "get", report_id, cwd=tmp_path)
    assert by_name.returncode == 0, by_name.stderr
    assert (tmp_path / f"store-report-{report_id}.csv").read_text().splitlines() == lines
    again = cli(api.base, "report", "get", report_id, cwd=tmp_path)
    assert again.returncode == 1
    assert "exists already" in again.stderr

    fetched = cli(api.base, "jobs", "fetch", report_id, "-o", "-")
    assert (fetched.returncode, fetched.stdout.splitlines()) == (0, lines)


def test_report_get_exits_7_while_the_report_is_not_complete(api: Stack, imported: object) -> None:
    busy = api.work(10)  # holds the only worker, so the report waits in its queue
    api.wait_for(busy, "running")
    report_id = cli(api.base, "report", "trigger").stdout.strip()

    running = cli(api.base, "report", "get", report_id)
    as_json = cli(api.base, "report", "get", report_id, "--json")

    assert (running.returncode, running.stdout) == (7, "Running 0%, queued\n")
    assert as_json.returncode == 7
    assert json.loads(as_json.stdout)["status"] == "Running"
    assert cli(api.base, "jobs", "stop", busy).returncode == 0
    api.wait_for(report_id, "finished")


def test_jobs_list_shows_a_table_or_the_apis_json(api: Stack, imported: object) -> None:
    table = cli(api.base, "jobs", "list", "--kind", "import", "--state", "finished")
    as_json = cli(api.base, "--json", "jobs", "list", "--kind", "import", "--state", "finished")

    assert table.returncode == 0, table.stderr
    header, *rows, footer = table.stdout.splitlines()
    assert header.split()[:5] == ["ID", "KIND", "OWNER", "STATE", "PROGRESS"]
    assert [row.split()[1:5] for row in rows] == [["import", "-", "finished", "100%"]] * 3
    assert footer == "3 job(s), page 1 of 1"
    page = json.loads(as_json.stdout)
    assert [item["id"] for item in page["items"]] == [row.split()[0] for row in rows]


def test_jobs_show_prints_the_jobs_state_and_progress(api: Stack, imported: object) -> None:
    job_id = json.loads(
        cli(api.base, "jobs", "list", "--kind", "import", "--state", "finished", "--json").stdout
    )["items"][0]["id"]

    shown = cli(api.base, "jobs", "show", job_id)

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert f"id:       {job_id}" in lines
    assert "state:    finished" in lines
    assert any(line.startswith("progress: 100%") for line in lines)
    history = lines[lines.index("history:") + 1 :]
    assert history[0].split() == ["STATE", "FROM", "AT", "REASON"]
    assert [row.split()[:2] for row in history[1:]] == [
        ["queued", "-"],
        ["running", "queued"],
        ["finished", "running"],
    ]


def test_a_work_job_is_paused_resumed_and_stopped_then_further_control_is_a_conflict(
    api: Stack,
) -> None:
    job_id = api.work(10)
    api.wait_for(job_id, "running")

    paused = cli(api.base, "jobs", "pause", job_id)
    assert paused.returncode == 0, paused.stderr
    assert re.match(rf"job {job_id} \(work\): (pausing|paused)", paused.stdout)
    api.wait_for(job_id, "paused")
    resumed = cli(api.base, "jobs", "resume", job_id)
    assert resumed.returncode == 0, resumed.stderr
    assert ": resuming," in resumed.stdout
    stopped = cli(api.base, "jobs", "stop", job_id)
    assert stopped.returncode == 0, stopped.stderr
    api.wait_for(job_id, "stopped")

    refused = cli(api.base, "jobs", "pause", job_id)
    assert refused.returncode == 6
    assert refused.stderr == (
        "yardmaster: 409 Conflict: cannot pause a job that is stopped (allowed now: nothing)\n"
    )
    not_done = cli(api.base, "jobs", "fetch", job_id)
    assert not_done.returncode == 6


def test_an_export_of_a_date_range_is_saved_as_csv(
    api: Stack, imported: object, tmp_path: Path
) -> None:
    target = tmp_path / "polls.csv"

    run = cli(api.base, "export", "--from", "2023-01-19", "--till", "2023-01-20", "-o", str(target))

    assert run.returncode == 0, run.stderr
    lines = target.read_text().splitlines()
    assert lines[0] == "store_id,status,timestamp_utc"
    assert len(lines) - 1 == 24 * len(STORES)


def test_queue_tokens_are_taken_redeemed_in_turn_with_their_claims_and_released(
    api: Stack,
) -> None:
    first = json.loads(cli(api.base, "queue", "take", "--json").stdout)
    second = cli(api.base, "queue", "take")
    assert second.returncode == 0, second.stderr
    token = re.fullmatch(r"token (\w+)  position 2  claim ([\w-]{43})\n", second.stdout)
    assert token is not None

    early = cli(api.base, "queue", "redeem", token[1], "--claim", token[2])
    stolen = cli(api.base, "queue", "redeem", first["token"], "--claim", token[2])
    served = cli(api.base, "queue", "redeem", first["token"], "--claim", first["claim"])

    assert early.returncode == 6
    assert "not your turn yet: you are number 2" in early.stderr
    assert stolen.returncode == 4
    assert "this is not the claim of this token" in stolen.stderr
    assert served.returncode == 0, served.stderr
    picture = re.fullmatch(r"success: (http://\S+\.svg)\n", served.stdout)
    assert picture is not None
    assert requests.get(picture[1], timeout=10).headers["Content-Type"].startswith("image/svg")
    released = cli(api.base, "queue", "release", first["token"], "--claim", first["claim"])
    assert (released.returncode, released.stdout) == (0, "released\n")


@pytest.mark.parametrize(
    "args",
    [["jobs", "show", "f" * 32], ["jobs", "pause", "nosuch"], ["report", "get", "nosuch"]],
)
def test_an_unknown_id_exits_5(api: Stack, args: list[str]) -> None:
    run = cli(api.base, *args)
    assert run.returncode == 5
    assert run.stderr.startswith("yardmaster: 404 Not Found: no ")


def test_an_api_nobody_answers_at_exits_3() -> None:
    run = cli(f"http://127.0.0.1:{free_port()}", "jobs", "list")
    assert run.returncode == 3
    assert run.stderr.startswith("yardmaster: cannot reach http://127.0.0.1:")
    assert len(run.stderr.splitlines()) == 1


ADMIN, CUSTOMER = "ym-admin-secret", "ym-c7-secret"


@pytest.fixture
def guarded_api(backing: Backing, api: Stack) -> Iterator[str]:
    """A second API on the same data, with access tokens for the admin and customer 7."""
    port = free_port()
    process = backing.start(
        "yardmaster.api",
        "--port",
        str(port),
        redis_url=backing.redis_url,
        database_url=backing.database_url,
        api_tokens=f"admin={ADMIN},customer-7={CUSTOMER}",
    )
    base = f"http://127.0.0.1:{port}"
    eventually(lambda: requests.get(f"{base}/healthz", timeout=2).ok, 60, "guarded API up")
    if requests.get(f"{base}/whoami", timeout=10).status_code == 404:
        pytest.skip("the API has no access tokens yet (no GET /whoami)")
    yield base
    process.close()


def test_with_access_tokens_the_token_is_sent_and_refusals_exit_4_or_5(
    guarded_api: str, tmp_path: Path
) -> None:
    sample = write_sample(tmp_path)["timezones"]

    anonymous = cli(guarded_api, "jobs", "list")
    wrong = cli(guarded_api, "jobs", "list", "--token", "not-a-token")
    report_id = cli(guarded_api, "report", "trigger", token=ADMIN).stdout.strip()
    as_admin = cli(guarded_api, "jobs", "show", report_id, "--token", ADMIN)
    as_customer = cli(guarded_api, "jobs", "show", report_id, token=CUSTOMER)
    customer_import = cli(
        guarded_api, "import", str(sample), "--table", "timezones", token=CUSTOMER
    )

    assert anonymous.returncode == wrong.returncode == 4
    assert anonymous.stderr.startswith("yardmaster: 401 Unauthorized")
    assert re.fullmatch(r"[0-9a-f]{32}", report_id)
    assert as_admin.returncode == 0, as_admin.stderr
    assert as_customer.returncode == 5
    assert customer_import.returncode == 4
    assert customer_import.stderr.startswith("yardmaster: 403 Forbidden")
    assert cli(guarded_api, "jobs", "stop", report_id, token=ADMIN).returncode in (0, 6)
