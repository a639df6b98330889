"""A deactivated customer: its token is refused everywhere it acts, its waiting jobs are on
hold (never started) until it is reactivated, which queues them again in their order; jobs
already running finish; the admin still sees and controls them all."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from rq import Queue
from rq.job import Job as RQJob
from sqlalchemy import Engine, update

from support import bearer, eventually
from yardmaster.api import create_app
from yardmaster.api.resources import Resources
from yardmaster.report_worker import runner
from yardmaster.report_worker.reaper import Reaper
from yardmaster.report_worker.tasks import TaskContext
from yardmaster.shared.db import make_engine
from yardmaster.shared.jobstore import JobStore
from yardmaster.shared.migrate import head_revision, upgrade_to_head
from yardmaster.shared.models import Customer
from yardmaster.shared.redis_client import make_redis
from yardmaster.shared.settings import load_settings

ADMIN, C1, C2 = "ym-admin-secret", "ym-c1-secret", "ym-c2-secret"
TOKENS = f"admin={ADMIN},customer-1={C1},customer-2={C2}"


@dataclass
class Platform:
    """The API behind tokens: one site, customers 1 and 2; and segments run in this process."""

    client: FlaskClient
    store: JobStore
    redis: redis.Redis
    runtime: runner.Runtime

    def call(self, method: str, path: str, token: str, **kwargs: Any) -> Any:
        return self.client.open(path, method=method, headers=bearer(token), **kwargs)

    def submit(self, token: str, seconds: float = 0.2) -> str:
        response = self.call("POST", "/work", token, json={"execution_time": seconds})
        assert response.status_code == 202, response.get_json()
        return str(response.get_json()["id"])

    def set_active(self, customer_id: int, active: bool) -> None:
        response = self.call(
            "PATCH", f"/customers/{customer_id}", ADMIN, json={"is_active": active}
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["is_active"] is active

    def job(self, job_id: str) -> dict[str, Any]:
        """The job as the admin sees it."""
        response = self.call("GET", f"/jobs/{job_id}", ADMIN)
        assert response.status_code == 200, response.get_json()
        return dict(response.get_json())

    def state(self, job_id: str) -> str:
        return str(self.job(job_id)["state"])

    def queued_segments(self, job_id: str) -> list[str]:
        """The RQ ids on the job's queue (in their order)."""
        return list(Queue(str(self.job(job_id)["queue"]), connection=self.redis).job_ids)

    def run_segment(self, job_id: str) -> str:
        """Run the job's current segment, as a worker that took it off its queue would."""
        job = self.store.get(job_id)
        assert job is not None
        assert job.segment is not None
        args = RQJob.fetch(job.segment, connection=self.redis).args
        self.runtime.engine.dispose()  # the segment drops the pool it inherits: close it first
        return runner.run_segment(*args)


@pytest.fixture
def platform(
    redis_url: str,
    database_url: str,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Platform]:
    upgrade_to_head(engine)
    settings = load_settings(
        {},
        redis_url=redis_url,
        database_url=database_url,
        data_dir=str(tmp_path),
        api_tokens=TOKENS,
    )
    app = create_app(settings, Resources(make_redis(redis_url, 1.0), engine, head_revision()))
    client = app.test_client()
    site = client.post("/sites", json={"name": "Acme"}, headers=bearer(ADMIN)).get_json()
    for name in ("Ada", "Bob"):
        created = client.post(
            "/customers", json={"site_id": site["id"], "name": name}, headers=bearer(ADMIN)
        )
        assert created.status_code == 201, created.get_json()
    own = make_engine(database_url)
    worker_redis = redis.Redis.from_url(redis_url)
    runtime = runner.Runtime(own, worker_redis, TaskContext(own, tmp_path / "files"), "rw-1", 5.0)
    monkeypatch.setattr(runner, "_runtime", runtime)
    yield Platform(client, JobStore(engine), worker_redis, runtime)
    worker_redis.close()
    own.dispose()


# --- the token --------------------------------------------------------------------------------

#: Requests that act for the caller: (method, path; ``{job}`` is one of the caller's jobs).
ACTING = [
    ("POST", "/work"),
    ("POST", "/trigger_report"),
    ("POST", "/exports"),
    ("POST", "/imports"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{job}"),
    ("POST", "/jobs/{job}/pause"),
    ("POST", "/jobs/{job}/resume"),
    ("POST", "/jobs/{job}/stop"),
    ("GET", "/jobs/{job}/result"),
    ("GET", "/get_report?report_id={job}"),
    ("GET", "/jobs/events"),
    ("GET", "/jobs/events?job={job}"),
    ("GET", "/customers/1"),
    ("GET", "/files"),
]


@pytest.mark.parametrize(("method", "path"), ACTING, ids=[f"{m} {p}" for m, p in ACTING])
def test_a_deactivated_customers_token_is_refused_on_every_request_acting_for_it(
    platform: Platform, method: str, path: str
) -> None:
    job = platform.submit(C1)
    platform.set_active(1, False)

    response = platform.call(method, path.format(job=job), C1, json={"execution_time": 1})

    assert response.status_code == 403, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["detail"].startswith("customer 1 is deactivated")
    assert (body["customer_id"], body["deactivated"]) == (1, True)


def test_the_other_customers_token_and_open_requests_still_work(platform: Platform) -> None:
    mine = platform.submit(C1)
    platform.set_active(1, False)

    theirs = platform.submit(C2)
    assert platform.call("GET", f"/jobs/{theirs}", C2).status_code == 200
    assert platform.call("GET", f"/jobs/{mine}", C2).status_code == 404
    assert platform.call("GET", "/whoami", C1).get_json()["principal"] == "customer-1"
    assert platform.call("GET", "/healthz", C1).status_code == 200


def test_the_token_works_again_from_the_request_after_the_reactivation(
    platform: Platform,
) -> None:
    platform.set_active(1, False)
    assert platform.call("GET", "/jobs", C1).status_code == 403

    platform.set_active(1, True)

    assert platform.call("GET", "/jobs", C1).status_code == 200
    platform.submit(C1)


# --- its jobs ---------------------------------------------------------------------------------


def test_deactivating_puts_the_waiting_jobs_on_hold_and_off_their_queue(
    platform: Platform,
) -> None:
    mine = platform.submit(C1)
    theirs = platform.submit(C2)
    assert len(platform.queued_segments(mine)) == 2

    platform.set_active(1, False)

    held = platform.job(mine)
    assert (held["state"], held["allowed_actions"]) == ("on_hold", ["pause", "stop"])
    assert held["history"][-1]["reason"] == "on hold: customer 1 is deactivated"
    assert platform.state(theirs) == "queued"
    assert platform.queued_segments(mine) == [platform.store.get(theirs).segment]  # type: ignore[union-attr]
    assert platform.run_segment(mine) == "skipped"  # its segment, had it started anyway
    assert platform.state(mine) == "on_hold"


def test_the_admin_sees_and_controls_the_jobs_on_hold(platform: Platform) -> None:
    first, second = platform.submit(C1), platform.submit(C1)
    platform.set_active(1, False)

    listed = platform.call("GET", "/jobs?owner=1&state=on_hold", ADMIN).get_json()
    assert {job["id"] for job in listed["items"]} == {first, second}
    assert platform.call("POST", f"/jobs/{first}/resume", ADMIN).status_code == 200  # no-op
    assert platform.call("POST", f"/jobs/{first}/pause", ADMIN).get_json()["state"] == "paused"
    assert platform.call("POST", f"/jobs/{second}/stop", ADMIN).get_json()["state"] == "stopped"

    resumed = platform.call("POST", f"/jobs/{first}/resume", ADMIN)
    assert resumed.get_json()["state"] == "resuming"
    assert platform.run_segment(first) == "on hold"  # not started: the customer is inactive
    assert platform.state(first) == "on_hold"


def test_reactivating_queues_the_jobs_on_hold_again_in_their_order(platform: Platform) -> None:
    jobs = [platform.submit(C1) for _ in range(3)]
    platform.set_active(1, False)
    later = platform.submit(C2)

    platform.set_active(1, True)

    assert [platform.state(job) for job in jobs] == ["queued"] * 3
    segments = [platform.store.get(job).segment for job in [later, *jobs]]  # type: ignore[union-attr]
    assert platform.queued_segments(later) == segments
    history = platform.job(jobs[0])["history"]
    assert [entry["state"] for entry in history] == ["queued", "on_hold", "queued"]
    assert history[-1]["reason"] == "queued: its customer is active again"
    assert platform.run_segment(jobs[0]) == "finished"
    done = platform.job(jobs[0])
    assert (done["state"], done["attempt"], done["failures"]) == ("finished", 1, 0)


def test_a_job_the_admin_submits_for_a_deactivated_customer_waits_on_hold(
    platform: Platform,
) -> None:
    platform.set_active(1, False)
    site = platform.call("GET", "/customers/1", ADMIN).get_json()["site_id"]
    response = platform.call(
        "POST", "/work", ADMIN, json={"execution_time": 0.2, "customer": 1, "site": site}
    )
    assert response.status_code == 202
    job = response.get_json()["id"]

    assert platform.run_segment(job) == "on hold"
    assert platform.state(job) == "on_hold"
    platform.set_active(1, True)
    assert platform.run_segment(job) == "finished"


def test_a_job_already_running_when_its_customer_is_deactivated_finishes(
    platform: Platform,
) -> None:
    job = platform.submit(C1, seconds=1.0)
    outcome: list[str] = []
    segment = threading.Thread(target=lambda: outcome.append(platform.run_segment(job)))
    segment.start()
    eventually(lambda: platform.state(job) == "running", 30, "the job running")

    platform.set_active(1, False)

    segment.join(60)
    assert outcome == ["finished"]
    assert platform.state(job) == "finished"


def test_the_reaper_queues_again_a_job_left_on_hold_with_an_active_customer(
    platform: Platform, engine: Engine, tmp_path: Path
) -> None:
    job = platform.submit(C1)
    platform.set_active(1, False)
    with engine.begin() as connection:  # active again, as if its release had been lost
        connection.execute(update(Customer).where(Customer.id == 1).values(is_active=True))

    Reaper(platform.store, platform.redis, TaskContext(engine, tmp_path), 5).sweep()

    assert platform.state(job) == "queued"
    assert platform.queued_segments(job) == [platform.store.get(job).segment]  # type: ignore[union-attr]
    assert platform.run_segment(job) == "finished"
