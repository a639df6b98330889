"""The jobs table: claims and checkpoints fenced by the attempt, races decided by the database."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, update

from yardmaster.shared.jobs import Action, JobKind, JobState, Outcome
from yardmaster.shared.jobstore import JobStore, Progress
from yardmaster.shared.migrate import upgrade_to_head
from yardmaster.shared.models import Job


def store_on(engine: Engine) -> JobStore:
    upgrade_to_head(engine)
    return JobStore(engine)


def put_in(store: JobStore, job_id: str, state: JobState) -> None:
    with store.engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == job_id).values(state=state.value))


def test_a_new_job_is_queued_at_version_one(engine: Engine) -> None:
    job = store_on(engine).create(JobKind.WORK, {"execution_time": 1}, "q")

    assert (job.state, job.state_version, job.attempt) == ("queued", 1, 0)
    assert job.created_at.tzinfo is not None


def test_only_one_of_two_claims_wins_and_it_gets_the_next_attempt(engine: Engine) -> None:
    store = store_on(engine)
    job = store.create(JobKind.WORK, {}, "q")

    first, second = store.claim(job.id), store.claim(job.id)

    assert first is not None
    assert (first.state, first.attempt) == ("running", 1)
    assert second is None


def test_a_paused_or_stopped_job_cannot_be_claimed(engine: Engine) -> None:
    store = store_on(engine)
    job = store.create(JobKind.WORK, {}, "q")
    store.apply(job.id, Action.PAUSE)

    assert store.claim(job.id) is None


def test_a_checkpoint_of_a_superseded_attempt_is_refused(engine: Engine) -> None:
    store = store_on(engine)
    job = store.create(JobKind.WORK, {}, "q")
    claimed = store.claim(job.id)
    assert claimed is not None
    put_in(store, job.id, JobState.QUEUED)
    newer = store.claim(job.id)
    assert newer is not None

    with engine.begin() as connection:
        stale = store.save_checkpoint(connection, job.id, claimed.attempt, {"n": 1}, Progress(0.1))
        fresh = store.save_checkpoint(connection, job.id, newer.attempt, {"n": 2}, Progress(0.2))

    assert stale is None
    assert fresh is JobState.RUNNING
    saved = store.get(job.id)
    assert saved is not None
    assert saved.checkpoint == {"n": 2}


def test_a_checkpoint_reports_what_the_user_asked_for_meanwhile(engine: Engine) -> None:
    store = store_on(engine)
    job = store.create(JobKind.WORK, {}, "q")
    claimed = store.claim(job.id)
    assert claimed is not None
    store.apply(job.id, Action.PAUSE)

    with engine.begin() as connection:
        state = store.save_checkpoint(connection, job.id, claimed.attempt, {}, Progress(0.5))

    assert state is JobState.PAUSING


def test_pause_and_stop_racing_on_a_running_job_end_in_one_consistent_state(engine: Engine) -> None:
    store = store_on(engine)
    for _ in range(10):
        job = store.create(JobKind.WORK, {}, "q")
        store.claim(job.id)
        answers: dict[str, tuple[str, str]] = {}

        def act(
            action: Action, job_id: str = job.id, answers: dict[str, tuple[str, str]] = answers
        ) -> None:
            applied = store.apply(job_id, action)
            assert applied is not None
            answers[action.value] = (applied[0].outcome.value, applied[1].state)

        threads = [threading.Thread(target=act, args=(a,)) for a in (Action.PAUSE, Action.STOP)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        final = store.get(job.id)
        assert final is not None
        assert final.state == "stopping"  # stop wins whichever came first
        assert answers["stop"] == ("transition", "stopping")
        assert answers["pause"][0] in {"transition", "illegal"}


def test_a_stop_records_when_it_was_asked_and_a_stopped_job_when_it_ended(engine: Engine) -> None:
    store = store_on(engine)
    running = store.create(JobKind.WORK, {}, "q")
    store.claim(running.id)
    queued = store.create(JobKind.WORK, {}, "q")

    store.apply(running.id, Action.STOP)
    decision, stopped = store.apply(queued.id, Action.STOP) or (None, None)

    stopping = store.get(running.id)
    assert stopping is not None
    assert stopping.stop_requested_at is not None
    assert decision is not None
    assert decision.outcome is Outcome.TRANSITION
    assert stopped is not None
    assert stopped.state == "stopped"
    assert stopped.finished_at is not None


def test_listing_is_newest_first_filtered_and_paginated(engine: Engine) -> None:
    store = store_on(engine)
    ids = [
        store.create(JobKind.WORK, {}, "q", owner="acme" if i % 2 else "other").id for i in range(5)
    ]

    page = store.listing(owner="acme", per_page=1)

    assert page.total == 2
    assert [j.id for j in page.jobs] == [ids[3]]
    assert page.has_next
    assert [j.id for j in store.listing(owner="acme", per_page=1, page=2).jobs] == [ids[1]]
    assert store.listing(states=["running"]).total == 0
