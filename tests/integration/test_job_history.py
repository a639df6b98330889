"""A job's history of states: written with each change in its transaction, read over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask.testing import FlaskClient
from integration.test_access_http import bearer, make_app
from sqlalchemy import Engine, delete, insert, select

from yardmaster.shared.jobhistory import history_reason
from yardmaster.shared.jobs import HELD_STATES, Action, JobKind, JobState, Outcome
from yardmaster.shared.jobstore import JobStore, utcnow
from yardmaster.shared.migrate import alembic_config, upgrade_to_head
from yardmaster.shared.models import Job, JobHistory

Q, R, P, F = JobState.QUEUED, JobState.RUNNING, JobState.PAUSED, JobState.FINISHED


def store_on(engine: Engine) -> JobStore:
    upgrade_to_head(engine)
    return JobStore(engine)


def changes(store: JobStore, job_id: str) -> list[tuple[str | None, str]]:
    return [(entry.from_state, entry.to_state) for entry in store.history(job_id)]


def test_a_new_job_starts_its_history_queued(engine: Engine) -> None:
    store = store_on(engine)
    job = store.create(JobKind.WORK, {}, "q")

    [created] = store.history(job.id)

    assert (created.from_state, created.to_state, created.reason) == (None, "queued", "created")
    assert created.at == job.created_at


def test_every_change_is_recorded_once_oldest_first_with_its_attempt(engine: Engine) -> None:
    store = store_on(engine)
    job = store.create(JobKind.WORK, {}, "q")

    assert store.claim(job.id, worker="rw-1") is not None
    assert store.transition(job.id, [R], P, fence=1)
    assert store.transition(job.id, [P], Q)
    assert store.claim(job.id, worker="rw-2") is not None
    assert store.transition(job.id, HELD_STATES, F, fence=2)

    history = store.history(job.id)
    assert changes(store, job.id) == [
        (None, "queued"),
        ("queued", "running"),
        ("running", "paused"),
        ("paused", "queued"),
        ("queued", "running"),
        ("running", "finished"),
    ]
    assert [entry.attempt for entry in history] == [0, 1, 1, 1, 2, 2]
    assert [entry.at for entry in history] == sorted(entry.at for entry in history)
    finished = store.get(job.id)
    assert finished is not None
    assert history[-1].at == finished.updated_at


def test_the_history_says_who_asked_and_which_worker_claimed(engine: Engine) -> None:
    store = store_on(engine)
    job = store.create(JobKind.WORK, {}, "q")

    store.claim(job.id, worker="rw-1")
    store.apply(job.id, Action.PAUSE, by="customer-7")
    store.transition(job.id, [JobState.PAUSING], P, fence=1, progress_message="paused")
    store.apply(job.id, Action.RESUME)
    store.claim(job.id)

    assert [(entry.to_state, entry.reason) for entry in store.history(job.id)] == [
        ("queued", "created"),
        ("running", "worker rw-1 claimed it (attempt 1)"),
        ("pausing", "pause requested by customer-7"),
        ("paused", "paused"),
        ("resuming", "resume requested"),
        ("running", "a worker claimed it (attempt 2)"),
    ]


@pytest.mark.parametrize(
    ("to", "values", "reason", "said"),
    [
        (F, {}, None, None),
        (F, {"progress_message": "finished"}, None, "finished"),
        (F, {"progress_message": "finished"}, "finished by rw-1", "finished by rw-1"),
        (
            JobState.FAILED,
            {"error": "TaskError: no data\n  at line 3"},
            None,
            "failed: TaskError: no data",
        ),
        (
            Q,
            {"progress_message": "retrying", "error": "OSError: gone"},
            None,
            "retrying: OSError: gone",
        ),
        (F, {"progress_message": "x" * 300}, None, "x" * 256),
    ],
)
def test_a_reason_is_what_the_change_says_with_the_first_line_of_its_error(
    to: JobState, values: dict[str, Any], reason: str | None, said: str | None
) -> None:
    assert history_reason(to, values, reason) == said


def test_a_failure_records_the_first_line_of_its_error(engine: Engine) -> None:
    store = store_on(engine)
    job = store.create(JobKind.WORK, {}, "q")
    store.claim(job.id)

    store.transition(
        job.id, HELD_STATES, JobState.FAILED, fence=1, error="ValueError: bad\nTraceback..."
    )

    assert store.history(job.id)[-1].reason == "failed: ValueError: bad"


def test_a_refused_transition_records_nothing(engine: Engine) -> None:
    store = store_on(engine)
    job = store.create(JobKind.WORK, {}, "q")
    claimed = store.claim(job.id)
    assert claimed is not None
    before = changes(store, job.id)

    assert not store.transition(job.id, [Q], P)  # not in a source state
    assert not store.transition(job.id, [R], F, fence=claimed.attempt + 1)  # another attempt's
    assert not store.transition(job.id, [R], F, version=claimed.state_version - 1)  # stale read
    assert not store.transition("no-such-job", [Q], R)
    assert store.claim(job.id) is None
    store.transition(job.id, [R], F, fence=claimed.attempt)
    applied = store.apply(job.id, Action.STOP)
    assert applied is not None
    assert applied[0].outcome is Outcome.ILLEGAL

    assert changes(store, job.id) == [*before, ("running", "finished")]
    assert store.history("no-such-job") == []


def test_a_change_that_keeps_the_state_is_no_history(engine: Engine) -> None:
    store = store_on(engine)
    job = store.create(JobKind.WORK, {}, "q")

    assert store.transition(job.id, [Q], Q, fence=0, queue="high", promotions=1)

    assert changes(store, job.id) == [(None, "queued")]


def test_a_change_rolled_back_with_its_transaction_leaves_no_history(engine: Engine) -> None:
    store = store_on(engine)
    job = store.create(JobKind.WORK, {}, "q")

    def stop_then_fail() -> None:
        with engine.begin() as connection:
            assert store.transition(job.id, [Q], JobState.STOPPED, connection=connection)
            raise RuntimeError("the rest of the transaction failed")

    with pytest.raises(RuntimeError):
        stop_then_fail()

    assert changes(store, job.id) == [(None, "queued")]
    kept = store.get(job.id)
    assert kept is not None
    assert kept.state == "queued"


def test_deleting_a_job_deletes_its_history(engine: Engine) -> None:
    store = store_on(engine)
    job = store.create(JobKind.WORK, {}, "q")
    store.claim(job.id)

    with engine.begin() as connection:
        connection.execute(delete(Job).where(Job.id == job.id))

    with engine.connect() as connection:
        assert connection.scalar(select(JobHistory.id)) is None


@pytest.mark.empty_database  # it migrates to 0005 itself
def test_jobs_older_than_the_history_get_their_creation_and_current_state(
    engine: Engine,
) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
        now = utcnow()
        for job_id, state in (("a" * 32, "queued"), ("b" * 32, "finished")):
            connection.execute(insert(Job.__table__).values(legacy_job(job_id, state, now)))

    store = store_on(engine)

    assert changes(store, "a" * 32) == [(None, "queued")]
    assert [(e.to_state, e.reason) for e in store.history("b" * 32)] == [
        ("queued", "created"),
        ("finished", "state when the history began"),
    ]


def legacy_job(job_id: str, state: str, at: Any) -> dict[str, Any]:
    """A jobs row as revision 0005 knows it (no previous_state)."""
    return {
        "id": job_id,
        "kind": "work",
        "params": {},
        "state": state,
        "state_version": 3,
        "attempt": 1,
        "max_attempts": 3,
        "queue": "q",
        "priority": 0,
        "progress_fraction": 0.0,
        "progress_message": "",
        "progress_done": 0,
        "created_at": at,
        "updated_at": at,
        "promotions": 0,
        "preemptions": 0,
        "failures": 0,
    }


# --- over HTTP ---------------------------------------------------------------------------


def test_a_job_read_over_http_has_its_history_and_the_listing_has_none(
    client: FlaskClient,
) -> None:
    job_id = client.post("/work", json={"execution_time": 5}).json["id"]
    assert client.post(f"/jobs/{job_id}/pause").status_code == 200

    job = client.get(f"/jobs/{job_id}").json

    assert [{k: v for k, v in e.items() if k != "at"} for e in job["history"]] == [
        {"state": "queued", "from": None, "reason": "created"},
        {"state": "paused", "from": "queued", "reason": "pause requested"},
    ]
    assert job["history"][0]["at"] == job["created_at"]
    assert job["history"][-1]["at"] == job["updated_at"]
    assert "history" not in client.get("/jobs").json["items"][0]


def test_the_history_names_the_principal_that_asked(
    redis_url: str, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    app = make_app(redis_url, database_url, engine, tmp_path, api_tokens="admin=ym-admin")
    client = app.test_client()
    admin = bearer("ym-admin")
    job_id = client.post("/work", json={"execution_time": 5}, headers=admin).json["id"]
    client.post(f"/jobs/{job_id}/stop", headers=admin)

    assert client.get(f"/jobs/{job_id}").status_code == 401
    [_, stopped] = client.get(f"/jobs/{job_id}", headers=admin).json["history"]
    assert stopped == {
        "state": "stopped",
        "from": "queued",
        "at": stopped["at"],
        "reason": "stop requested by admin",
    }


def test_the_openapi_document_describes_the_history(client: FlaskClient) -> None:
    schemas = client.get("/openapi.json").json["components"]["schemas"]

    assert "history" in schemas["JobDetail"]["required"]
    assert set(schemas["HistoryEntry"]["properties"]) == {"state", "from", "at", "reason"}
