"""Jobs in the database: creation, reads and every state change as a conditional update.

Each change is ``UPDATE jobs SET ... WHERE id = :id AND state IN (...) [AND attempt = :a]``;
its row count decides a race, so two requests (or a request and a worker) cannot both win.
Every change bumps ``state_version``, the job's ETag and the id of its events.

Every change of state also adds a ``job_history`` row in the same transaction, only when
the update applied; the update itself returns the state it moved from (``previous_state``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, func, select, update
from sqlalchemy.orm import Session

from yardmaster.shared.jobhistory import Change, creation, history_reason
from yardmaster.shared.jobs import (
    CLAIMABLE_STATES,
    HELD_STATES,
    Action,
    Decision,
    JobKind,
    JobState,
    Outcome,
    decide,
)
from yardmaster.shared.models import Job, JobHistory

#: How many times a request re-reads and re-decides after losing a race.
MAX_RACE_RETRIES = 5


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def new_job_id() -> str:
    """A fresh job id: 32 hex digits, safe in URLs, file names and RQ ids."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Progress:
    """How far a job has come: a fraction, a message and counters."""

    fraction: float
    message: str = ""
    done: int = 0
    total: int | None = None

    def columns(self) -> dict[str, Any]:
        """The ``jobs`` columns that hold this progress."""
        return {
            "progress_fraction": max(0.0, min(1.0, self.fraction)),
            "progress_message": self.message[:256],
            "progress_done": self.done,
            "progress_total": self.total,
        }


@dataclass(frozen=True)
class Page:
    """One page of a job listing."""

    jobs: list[Job]
    total: int
    page: int
    per_page: int

    @property
    def has_next(self) -> bool:
        """True if a further page exists."""
        return self.page * self.per_page < self.total


def transition_columns(to: JobState) -> dict[str, Any]:
    """What a user's transition writes beside the state: the note, and when it ended."""
    values: dict[str, Any] = {"progress_message": to.value}
    if to is JobState.STOPPING:
        values["stop_requested_at"] = utcnow()
    if to is JobState.STOPPED:
        values["finished_at"] = utcnow()
    return values


class JobStore:
    """The ``jobs`` table, with the state machine enforced by conditional updates."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        kind: JobKind,
        params: dict[str, Any],
        queue: str,
        *,
        owner: str | None = None,
        site: str | None = None,
        priority: int = 0,
        max_attempts: int = 3,
        job_id: str | None = None,
        customer_id: int | None = None,
        site_id: int | None = None,
        job_class: int | None = None,
        tiers: tuple[str, str] | None = None,
    ) -> Job:
        """Insert a queued job and return it."""
        now = utcnow()
        job = Job(
            id=job_id or new_job_id(),
            kind=kind,
            owner=owner,
            site=site,
            params=params,
            state=JobState.QUEUED,
            state_version=1,
            attempt=0,
            max_attempts=max_attempts,
            queue=queue,
            priority=priority,
            progress_fraction=0.0,
            progress_message="queued",
            progress_done=0,
            created_at=now,
            updated_at=now,
            customer_id=customer_id,
            site_id=site_id,
            job_class=job_class,
            volume_tier=tiers[0] if tiers else None,
            activity_tier=tiers[1] if tiers else None,
            enqueued_at=now,
            promotions=0,
            preemptions=0,
            failures=0,
        )
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            session.add(job)
            session.flush()  # the job's row before the history row that refers to it
            session.add(creation(job))
        return job

    def get(self, job_id: str) -> Job | None:
        """The job with ``job_id``, or None."""
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Job, job_id)

    def history(self, job_id: str) -> list[JobHistory]:
        """The job's changes of state, oldest first (empty for an unknown job)."""
        query = select(JobHistory).where(JobHistory.job_id == job_id).order_by(JobHistory.id)
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.scalars(query).all())

    def listing(
        self,
        *,
        states: Iterable[str] = (),
        kinds: Iterable[str] = (),
        owner: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page:
        """Jobs matching every given filter, newest first."""
        query = select(Job)
        if states := list(states):
            query = query.where(Job.state.in_(states))
        if kinds := list(kinds):
            query = query.where(Job.kind.in_(kinds))
        if owner is not None:
            query = query.where(Job.owner == owner)
        with Session(self.engine, expire_on_commit=False) as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            ordered = query.order_by(Job.created_at.desc(), Job.id.desc())
            rows = session.scalars(ordered.offset((page - 1) * per_page).limit(per_page)).all()
        return Page(list(rows), total, page, per_page)

    def in_states(self, states: Iterable[JobState]) -> list[Job]:
        """Every job in one of ``states`` (for the reaper)."""
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.scalars(select(Job).where(Job.state.in_(list(states)))).all())

    def transition(
        self,
        job_id: str,
        sources: Iterable[JobState],
        to: JobState,
        *,
        fence: int | None = None,
        version: int | None = None,
        connection: Connection | None = None,
        reason: str | None = None,
        condition: ColumnElement[bool] | None = None,
        **values: Any,
    ) -> bool:
        """Move the job to ``to`` if it is in one of ``sources`` (and at attempt ``fence``,
        and unchanged since ``version`` was read, and ``condition`` holds).

        Returns whether this call won. ``values`` are further columns to set. A won change of
        state is added to the job's history in the same transaction (``reason`` or what
        :func:`history_reason` makes of ``values``); a state kept (a requeue, a promotion) is not.
        """
        now = utcnow()
        statement = (
            update(Job)
            .where(Job.id == job_id, Job.state.in_([str(s) for s in sources]))
            # SET reads the row as it was: previous_state gets the state being left.
            .values(
                previous_state=Job.state,
                state=str(to),
                state_version=Job.state_version + 1,
                updated_at=now,
                **values,
            )
            .returning(Job.previous_state, Job.attempt)
        )
        if fence is not None:
            statement = statement.where(Job.attempt == fence)
        if version is not None:
            statement = statement.where(Job.state_version == version)
        if condition is not None:
            statement = statement.where(condition)
        change = Change(job_id, to, now, history_reason(to, values, reason))
        if connection is not None:
            return change.make(connection, statement)
        with self.engine.begin() as own:
            return change.make(own, statement)

    def apply(
        self, job_id: str, action: Action, by: str | None = None
    ) -> tuple[Decision, Job] | None:
        """Decide ``action`` on the job's current state and, if it is a transition, make it.

        A lost race re-reads the job and decides again. Returns the decision and the job as
        it is afterwards, or None for an unknown job. ``by`` (who asked) goes to the history.
        """
        reason = f"{action.value} requested" + (f" by {by}" if by else "")
        for _ in range(MAX_RACE_RETRIES):
            job = self.get(job_id)
            if job is None:
                return None
            decision = decide(JobState(job.state), action)
            if decision.outcome is not Outcome.TRANSITION:
                return decision, job
            assert decision.to_state is not None
            values = transition_columns(decision.to_state)
            if self.transition(
                job_id, [JobState(job.state)], decision.to_state, reason=reason, **values
            ):
                changed = self.get(job_id)
                assert changed is not None
                return decision, changed
        raise RuntimeError(f"job {job_id}: lost {MAX_RACE_RETRIES} races in a row")

    def claim(
        self, job_id: str, worker: str | None = None, version: int | None = None
    ) -> Job | None:
        """Take a queued or resuming job for running: state running, attempt + 1.

        Returns the claimed job (its ``attempt`` is the fencing token) or None when the job
        is no longer claimable (paused, stopped, taken by another segment). ``worker`` (who
        claims) goes to the history. ``version`` is the ``state_version`` the claiming
        segment was enqueued at: the claim then wins only if nothing decided about the job
        since (a reaper that replaced the segment bumped it), and a reaper deciding after the
        claim finds the version bumped by it. Either one wins, never both.
        """
        job = self.get(job_id)
        if job is None or JobState(job.state) not in CLAIMABLE_STATES:
            return None
        if version is not None and job.state_version != version:
            return None
        claimed: dict[str, Any] = {
            "attempt": Job.attempt + 1,
            "started_at": func.coalesce(Job.started_at, utcnow()),
            "progress_message": "running",
        }
        who = f"worker {worker}" if worker else "a worker"
        won = self.transition(
            job_id,
            CLAIMABLE_STATES,
            JobState.RUNNING,
            fence=job.attempt,
            version=version,
            reason=f"{who} claimed it (attempt {job.attempt + 1})",
            **claimed,
        )
        return self.get(job_id) if won else None

    def set_segment(self, job_id: str, rq_id: str) -> None:
        """Remember which RQ job carries the job's current segment (not a state change)."""
        with self.engine.begin() as connection:
            connection.execute(update(Job).where(Job.id == job_id).values(segment=rq_id))

    def save_checkpoint(
        self,
        connection: Connection,
        job_id: str,
        attempt: int,
        checkpoint: dict[str, Any],
        progress: Progress,
    ) -> JobState | None:
        """Record a checkpoint inside the caller's transaction, fenced by ``attempt``.

        Returns the job's current state (running, pausing or stopping: what the user asked
        for meanwhile), or None if this attempt no longer holds the job; the caller must
        then roll back its transaction.
        """
        statement = (
            update(Job)
            .where(
                Job.id == job_id,
                Job.attempt == attempt,
                Job.state.in_([str(s) for s in HELD_STATES]),
            )
            .values(
                checkpoint=checkpoint,
                checkpoint_at=utcnow(),
                updated_at=utcnow(),
                state_version=Job.state_version + 1,
                **progress.columns(),
            )
            .returning(Job.state)
        )
        state = connection.execute(statement).scalar_one_or_none()
        return JobState(state) if state is not None else None
