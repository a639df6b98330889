"""The jobs HTTP API against real Redis and databases (no worker: states are set directly)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import Engine, update

from unit.test_job_states import MATRIX
from yardmaster.api import create_app
from yardmaster.api.resources import Resources
from yardmaster.shared import queues
from yardmaster.shared.jobs import JobState, allowed_actions
from yardmaster.shared.migrate import head_revision, upgrade_to_head
from yardmaster.shared.models import Job
from yardmaster.shared.redis_client import make_redis
from yardmaster.shared.settings import load_settings


def create_work(client: FlaskClient, seconds: float = 5.0) -> dict:
    response = client.post("/work", json={"execution_time": seconds})
    assert response.status_code == 202, response.json
    assert response.json is not None
    return response.json


def force_state(engine: Engine, job_id: str, state: str) -> None:
    with engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == job_id).values(state=state))


def test_post_work_records_a_queued_job_and_enqueues_its_first_segment(
    client: FlaskClient, redis_url: str
) -> None:
    response = client.post("/work", json={"execution_time": 2.5})

    assert response.status_code == 202
    body = response.json
    assert body is not None
    assert body["state"] == "queued"
    assert body["kind"] == "work"
    assert response.headers["Location"] == f"/jobs/{body['id']}"
    # 2.5 s is class 5; a job of no customer has a medium site's tiers: score 0 + 1 + 0 = low
    assert (body["job_class"], body["priority"], body["queue"]) == (5, 1, queues.LOW)
    queue = Queue(queues.LOW, connection=redis.Redis.from_url(redis_url))
    assert queue.job_ids == [f"{body['id']}-v1"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"execution_time": 0},
        {"execution_time": -1},
        {"execution_time": "2"},
        {"execution_time": True},
        {"execution_time": 10.001},
        {"execution_time": 1, "customer": 1},
        {"execution_time": 1, "customer": 99, "site": 99},
        {"execution_time": 1, "priority": 9},
        [],
        "2",
        [{"execution_time": 1}, {"execution_time": 0}],
    ],
)
def test_bad_work_is_refused_with_400_and_nothing_is_created(
    client: FlaskClient, body: object
) -> None:
    response = client.post("/work", json=body)

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    listing = client.get("/jobs").json
    assert listing is not None
    assert listing["total"] == 0


def test_a_list_of_work_creates_every_job(client: FlaskClient) -> None:
    response = client.post("/work", json=[{"execution_time": 1}, {"execution_time": 2}])

    assert response.status_code == 202
    assert response.json is not None
    assert len(response.json["jobs"]) == 2


@pytest.mark.parametrize(("cell", "expected"), MATRIX.items(), ids=[f"{s}-{a}" for s, a in MATRIX])
def test_every_cell_of_the_matrix_answers_over_http(
    client: FlaskClient,
    engine: Engine,
    cell: tuple[str, str],
    expected: tuple[str, str | None, int],
) -> None:
    state, action = cell
    outcome, to_state, status = expected
    job = create_work(client)
    force_state(engine, job["id"], state)

    response = client.post(f"/jobs/{job['id']}/{action}")

    assert response.status_code == status
    body = response.json
    assert body is not None
    if outcome == "illegal":
        assert response.mimetype == "application/problem+json"
        assert body["current_state"] == state
        assert body["allowed_actions"] == [a.value for a in allowed_actions(JobState(state))]
    else:
        assert body["state"] == (to_state or state)
        assert response.headers["Location"] == f"/jobs/{job['id']}"


def test_resume_while_pausing_says_when_to_retry(client: FlaskClient, engine: Engine) -> None:
    job = create_work(client)
    force_state(engine, job["id"], "pausing")

    response = client.post(f"/jobs/{job['id']}/resume")

    assert response.status_code == 409
    assert response.headers["Retry-After"] == "1"


def test_resume_enqueues_a_new_segment_at_the_front_of_the_queue(
    client: FlaskClient, engine: Engine, redis_url: str
) -> None:
    first = create_work(client)
    second = create_work(client)
    force_state(engine, first["id"], "paused")
    queue = Queue(first["queue"], connection=redis.Redis.from_url(redis_url))
    queue.empty()
    queue.enqueue("math.sqrt", 4, job_id=f"{second['id']}-v9")

    client.post(f"/jobs/{first['id']}/resume")

    assert queue.job_ids[0].startswith(first["id"])


def test_unknown_jobs_are_404_problems(client: FlaskClient) -> None:
    for response in [
        client.get("/jobs/nope"),
        client.post("/jobs/nope/pause"),
        client.get("/jobs/nope/result"),
    ]:
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"


def test_the_result_of_an_unfinished_job_is_409_with_its_state(client: FlaskClient) -> None:
    job = create_work(client)

    response = client.get(f"/jobs/{job['id']}/result")

    assert response.status_code == 409
    assert response.json is not None
    assert response.json["current_state"] == "queued"


@pytest.mark.parametrize(
    "query", ["state=bogus", "kind=bogus", "page=0", "per_page=x", "owner=1&owner=2"]
)
def test_bad_list_filters_are_400(client: FlaskClient, query: str) -> None:
    assert client.get(f"/jobs?{query}").status_code == 400


def test_jobs_list_newest_first_with_pagination_metadata(client: FlaskClient) -> None:
    ids = [create_work(client)["id"] for _ in range(3)]

    first = client.get("/jobs?per_page=2&kind=work").json
    assert first is not None
    assert [j["id"] for j in first["items"]] == ids[::-1][:2]
    assert (first["total"], first["pages"]) == (3, 2)
    second = client.get(first["next"]).json
    assert second is not None
    assert [j["id"] for j in second["items"]] == [ids[0]]
    assert second["next"] is None


def test_an_upload_over_the_size_limit_is_413(
    redis_url: str, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    upgrade_to_head(engine)
    settings = load_settings(
        {},
        redis_url=redis_url,
        database_url=database_url,
        data_dir=str(tmp_path),
        max_upload_mb="1",
    )
    app = create_app(settings, Resources(make_redis(redis_url, 1.0), engine, head_revision()))
    big = b"store_id,status,timestamp_utc\n" + b"1,active,2023-01-22 12:09:39 UTC\n" * 40_000

    response = app.test_client().post(
        "/imports",
        data={"table": "store_status", "file": (io.BytesIO(big), "big.csv")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
