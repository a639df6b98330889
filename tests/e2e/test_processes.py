"""Every process starts with its one command, connects, reports its health and stops cleanly."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
import redis
import requests
from rq import Queue

from e2e.stack import Start
from support import RedisServer, eventually, free_port
from yardmaster.shared import queues
from yardmaster.shared.heartbeat import live_processes
from yardmaster.shared.lifecycle import EXIT_CONFIG


def ready(base: str) -> bool:
    try:
        return requests.get(f"{base}/readyz", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def live(redis_url: str, service: str) -> list[str]:
    return [
        p["instance"]
        for p in live_processes(redis.Redis.from_url(redis_url))
        if p["service"] == service
    ]


def test_the_api_serves_readyz_once_redis_and_the_database_answer(
    start: Start, redis_url: str, migrated_database_url: str
) -> None:
    port = free_port()
    api = start(
        "yardmaster.api",
        "--port",
        str(port),
        redis_url=redis_url,
        database_url=migrated_database_url,
    )
    base = f"http://127.0.0.1:{port}"

    eventually(lambda: ready(base), timeout=30, what="/readyz 200")

    assert requests.get(f"{base}/healthz", timeout=2).json() == {"status": "ok"}
    assert api.stop() == 0


def test_the_api_answers_503_without_redis_then_recovers_when_it_returns(
    own_redis: RedisServer, start: Start, migrated_database_url: str
) -> None:
    port = free_port()
    start(
        "yardmaster.api",
        "--port",
        str(port),
        redis_url=own_redis.url,
        database_url=migrated_database_url,
    )
    base = f"http://127.0.0.1:{port}"
    eventually(lambda: ready(base), timeout=30, what="/readyz 200")

    own_redis.stop()
    response = requests.get(f"{base}/readyz", timeout=5)
    assert response.status_code == 503
    assert "Redis unreachable" in response.json()["detail"]

    own_redis.start()
    eventually(lambda: ready(base), timeout=30, what="/readyz 200 again")


@pytest.mark.one_backend  # process behaviour, not the database's
def test_the_report_worker_runs_jobs_from_the_platform_queues_and_survives_redis_restarts(
    own_redis: RedisServer, start: Start, migrated_database_url: str
) -> None:
    worker = start(
        "yardmaster.report_worker",
        "--name",
        "rw-1",
        redis_url=own_redis.url,
        database_url=migrated_database_url,
    )
    eventually(lambda: live(own_redis.url, "report-worker") == ["rw-1"], what="worker heartbeat")

    def runs_a_job() -> None:
        queue = Queue(queues.DEFAULT, connection=redis.Redis.from_url(own_redis.url))
        job = queue.enqueue("math.sqrt", 16)
        eventually(lambda: job.get_status(refresh=True) == "finished", what="job finished")
        assert job.return_value() == 4.0

    runs_a_job()
    own_redis.stop()
    worker.wait_for_output("Redis", timeout=30)
    own_redis.start()
    eventually(
        lambda: live(own_redis.url, "report-worker") == ["rw-1"],
        timeout=30,
        what="worker back after the restart",
    )
    runs_a_job()

    assert worker.popen.poll() is None
    assert worker.stop() == 0
    assert live(own_redis.url, "report-worker") == []


@pytest.mark.one_backend  # process behaviour, not the database's
def test_workers_started_before_redis_wait_with_backoff_instead_of_crashing(
    start: Start, tmp_path: Path, migrated_database_url: str
) -> None:
    server = RedisServer(tmp_path / "late-redis")
    worker = start(
        "yardmaster.report_worker",
        "--name",
        "rw-late",
        redis_url=server.url,
        database_url=migrated_database_url,
    )
    worker.wait_for_output("Redis unreachable", timeout=30)
    server.start()
    try:
        eventually(
            lambda: live(server.url, "report-worker") == ["rw-late"],
            timeout=30,
            what="worker connected once Redis came up",
        )
        assert worker.stop() == 0
    finally:
        server.stop()


@pytest.mark.one_backend  # process behaviour, not the database's
def test_the_file_worker_processes_every_file_the_simulator_writes(
    start: Start, redis_url: str, migrated_database_url: str, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    schedule = tmp_path / "schedule.csv"
    names = [f"2018_06_28_00_{m:02d}.txt" for m in (0, 15, 30, 45)]
    schedule.write_text("filename,processing_minutes\n" + "".join(f"{n},1.5\n" for n in names))
    settings = {"redis_url": redis_url, "database_url": migrated_database_url}
    worker = start(
        "yardmaster.file_worker",
        "--dir",
        str(bucket),
        "--name",
        "fw-1",
        "--seconds-in-min",
        "0.01",
        **settings,
    )
    eventually(lambda: live(redis_url, "file-worker") == ["fw-1"], what="file worker heartbeat")

    simulator = start(
        "yardmaster.simulator",
        "--dir",
        str(bucket),
        "--seconds-in-min",
        "0.01",
        "--schedule",
        str(schedule),
        **settings,
    )

    assert simulator.wait(timeout=30) == 0
    for name in names:
        worker.wait_for_output(f"{name}: done")
    assert sorted(p.name for p in bucket.iterdir()) == names
    assert (bucket / names[0]).read_text() == "1.5\n"
    assert worker.stop() == 0


@pytest.mark.one_backend  # process behaviour, not the database's
def test_the_simulator_refuses_a_bucket_that_already_holds_schedule_files(
    start: Start, redis_url: str, migrated_database_url: str, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    (bucket / "2018_06_28_00_00.txt").write_text("1\n")

    simulator = start(
        "yardmaster.simulator",
        "--dir",
        str(bucket),
        redis_url=redis_url,
        database_url=migrated_database_url,
    )

    assert simulator.wait() == 1
    assert "already holds 1 schedule file(s)" in simulator.output()


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("yardmaster.api", ["--port", "0"]),
        ("yardmaster.report_worker", []),
        ("yardmaster.file_worker", []),
        ("yardmaster.simulator", ["--seconds-in-min", "1"]),
    ],
)
@pytest.mark.one_backend  # process behaviour, not the database's
def test_every_long_running_process_logs_one_ready_line_then_stops_cleanly_on_sigterm(
    start: Start, redis_url: str, migrated_database_url: str, module: str, args: list[str]
) -> None:
    if module == "yardmaster.api":
        args = ["--port", str(free_port())]
    process = start(module, *args, redis_url=redis_url, database_url=migrated_database_url)

    output = process.wait_for_output("ready in ", timeout=30)

    lines = [line for line in output.splitlines() if " ready in " in line]
    assert len(lines) == 1, output
    seconds = float(re.search(r" ready in (\d+\.\d\d) s: \S", lines[0]).group(1))  # type: ignore[union-attr]
    assert 0 < seconds < 30
    process.signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert sum(" ready in " in line for line in process.output().splitlines()) == 1


#: A database URL no waiting can cure (an unreachable database is waited for instead:
#: test_database_outages.py).
UNUSABLE_DATABASE = "postgresql+nosuchdriver://postgres@127.0.0.1:1/nowhere"
PROCESSES = [
    "yardmaster.api",
    "yardmaster.report_worker",
    "yardmaster.file_worker",
    "yardmaster.simulator",
    "yardmaster.shared.migrate",
]


@pytest.mark.parametrize("module", PROCESSES)
@pytest.mark.parametrize(
    ("setting", "value", "variable"),
    [
        ("log_level", "LOUD", "YARDMASTER_LOG_LEVEL"),
        ("database_url", UNUSABLE_DATABASE, "YARDMASTER_DATABASE_URL"),
        ("redis_url", "http://127.0.0.1:6379", "YARDMASTER_REDIS_URL"),
    ],
)
def test_bad_configuration_stops_the_process_at_start_with_one_line_naming_the_variable(
    start: Start, module: str, setting: str, value: str, variable: str, redis_url: str
) -> None:
    settings = {"redis_url": redis_url, setting: value}
    process = start(module, **settings)

    assert process.wait(timeout=30) == EXIT_CONFIG
    lines = process.output().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"{module.split('.')[-1].replace('_', '-')}: configuration error: {variable}"
    )


def test_an_unparsable_api_port_stops_the_api_naming_the_variable(start: Start) -> None:
    process = start("yardmaster.api", api_port="80a")

    assert process.wait(timeout=30) == EXIT_CONFIG
    assert process.output().strip() == (
        "api: configuration error: YARDMASTER_API_PORT: Input should be a valid integer, "
        "unable to parse string as an integer (got '80a')"
    )


@pytest.mark.one_backend  # process behaviour, not the database's
def test_the_file_worker_keeps_watching_through_a_redis_restart(
    own_redis: RedisServer, start: Start, migrated_database_url: str, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    worker = start(
        "yardmaster.file_worker",
        "--dir",
        str(bucket),
        "--name",
        "fw-r",
        "--seconds-in-min",
        "0.01",
        redis_url=own_redis.url,
        database_url=migrated_database_url,
        heartbeat_interval="0.2",
    )
    eventually(lambda: live(own_redis.url, "file-worker") == ["fw-r"], what="heartbeat")

    own_redis.stop()
    worker.wait_for_output("Redis unreachable", timeout=30)
    own_redis.start()
    eventually(
        lambda: live(own_redis.url, "file-worker") == ["fw-r"],
        timeout=30,
        what="heartbeat after the restart",
    )
    worker.wait_for_output("Redis reachable again")
    (bucket / "2018_06_28_00_00.txt").write_text("1.0\n")

    worker.wait_for_output("2018_06_28_00_00.txt: done")
    assert worker.stop() == 0
