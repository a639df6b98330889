"""``GET /metrics`` against real Redis and databases: every value is what the state says."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, insert, update

from support import free_port
from yardmaster.api import create_app
from yardmaster.api.resources import Resources
from yardmaster.shared import queues
from yardmaster.shared.db import make_engine
from yardmaster.shared.fileclaims import FileClaims, Lease, bucket_id
from yardmaster.shared.migrate import head_revision
from yardmaster.shared.models import FileLedger, Job
from yardmaster.shared.redis_client import make_redis
from yardmaster.shared.settings import load_settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: FlaskClient) -> Samples:
    """Every sample of one scrape: (name, labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def create_work(client: FlaskClient, seconds: float) -> dict:
    response = client.post("/work", json={"execution_time": seconds})
    assert response.status_code == 202, response.json
    assert response.json is not None
    return response.json


def test_jobs_are_counted_by_kind_and_state_and_their_segments_by_rq_queue(
    client: FlaskClient, engine: Engine
) -> None:
    jobs = [create_work(client, seconds) for seconds in (0.5, 2.5, 2.5)]
    with engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == jobs[0]["id"]).values(state="running"))

    samples = scrape(client)

    assert value(samples, "yardmaster_jobs", kind="work", state="queued") == 2
    assert value(samples, "yardmaster_jobs", kind="work", state="running") == 1
    assert value(samples, "yardmaster_jobs", kind="report", state="queued") == 0
    waiting = Counter(job["queue"] for job in jobs)
    for queue in queues.PRIORITY_ORDER:
        assert value(samples, "yardmaster_queue_depth", queue=queue) == waiting[queue]


def test_finished_jobs_run_times_fill_the_duration_histogram_of_their_kind(
    client: FlaskClient, engine: Engine
) -> None:
    jobs = [create_work(client, 1.0) for _ in range(3)]
    start = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    runs = {jobs[0]["id"]: ("finished", 3), jobs[1]["id"]: ("finished", 90)}
    runs[jobs[2]["id"]] = ("failed", 7)  # not a finished run: not in the histogram
    with engine.begin() as connection:
        for job_id, (state, seconds) in runs.items():
            connection.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    state=state, started_at=start, finished_at=start + dt.timedelta(seconds=seconds)
                )
            )

    samples = scrape(client)

    histogram = "yardmaster_job_duration_seconds"
    assert value(samples, histogram + "_count", kind="work") == 2
    assert value(samples, histogram + "_sum", kind="work") == pytest.approx(93, abs=0.01)
    cumulative = {"1.0": 0, "5.0": 1, "60.0": 1, "120.0": 2, "+Inf": 2}
    for bound, count in cumulative.items():
        assert value(samples, histogram + "_bucket", kind="work", le=bound) == count
    assert value(samples, histogram + "_count", kind="report") == 0


def test_file_pipeline_counters_come_from_the_ledger_and_the_claims(
    client: FlaskClient, engine: Engine, redis_url: str, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    with redis.Redis.from_url(redis_url) as redis_client:
        claims = FileClaims(redis_client, bucket)
        leases = [claims.claim(f"2018_06_28_00_0{n}.txt", "fw-1", ttl=30) for n in range(3)]
        assert all(isinstance(lease, Lease) for lease in leases)
        claims.count_lease_loss()
    states = {"a": "done", "b": "done", "c": "quarantined", "d": "loaded"}
    with engine.begin() as connection:
        connection.execute(
            insert(FileLedger),
            [{"bucket": bucket_id(bucket), "name": n, "state": s} for n, s in states.items()],
        )

    samples = scrape(client)

    assert value(samples, "yardmaster_files_total", state="done") == 2
    assert value(samples, "yardmaster_files_total", state="quarantined") == 1
    assert value(samples, "yardmaster_files_loaded") == 1
    assert value(samples, "yardmaster_file_attempts_total") == 3
    assert value(samples, "yardmaster_file_lease_losses_total") == 1


def test_the_turn_queue_length_is_the_number_of_waiting_tokens(client: FlaskClient) -> None:
    assert value(scrape(client), "yardmaster_turn_queue_length") == 0
    for n in range(3):
        response = client.post("/queue/tokens", environ_base={"REMOTE_ADDR": f"10.0.0.{n}"})
        assert response.status_code == 201, response.json

    assert value(scrape(client), "yardmaster_turn_queue_length") == 3


def test_the_latency_histogram_counts_requests_by_route_method_and_status(
    client: FlaskClient,
) -> None:
    for _ in range(3):
        client.get("/healthz")
    client.get("/no/such/page")

    samples = scrape(client)

    count = "yardmaster_http_request_duration_seconds_count"
    assert value(samples, count, endpoint="/healthz", method="GET", status="200") == 3
    assert value(samples, count, endpoint="unmatched", method="GET", status="404") == 1
    later = scrape(client)
    assert value(later, count, endpoint="/metrics", method="GET", status="200") == 1


def test_a_scrape_still_answers_when_redis_and_the_database_are_down(tmp_path: Path) -> None:
    down_redis = f"redis://127.0.0.1:{free_port()}/0"
    missing_database = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'db.sqlite'}"
    settings = load_settings(
        {}, redis_url=down_redis, database_url=missing_database, data_dir=str(tmp_path)
    )
    engine = make_engine(missing_database)
    resources = Resources(make_redis(down_redis, 0.5), engine, head_revision())
    client = create_app(settings, resources).test_client()
    client.get("/healthz")

    samples = scrape(client)

    assert value(samples, "yardmaster_metrics_source_up", source="database") == 0
    assert value(samples, "yardmaster_metrics_source_up", source="redis") == 0
    assert not [name for name, _ in samples if name.startswith("yardmaster_jobs")]
    count = "yardmaster_http_request_duration_seconds_count"
    assert value(samples, count, endpoint="/healthz", method="GET", status="200") == 1
    resources.redis.close()
    engine.dispose()
