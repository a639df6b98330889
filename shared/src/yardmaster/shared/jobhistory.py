"""A job's history of states: one ``job_history`` row per change, written by the job store in
the transaction that made the change, and its JSON representation.

Creation is the first entry; a transition adds one only when its conditional update applied
and the state really changed (a requeue or a promotion keeps the state: no entry).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Update, insert

from yardmaster.shared.jobs import JobState
from yardmaster.shared.models import Job, JobHistory

#: Room for a reason (the column's size).
MAX_REASON_LENGTH = 256


def history_reason(to: JobState, values: dict[str, Any], reason: str | None) -> str | None:
    """Why a job moved to ``to``: ``reason`` when given, else the note the change writes
    (``progress_message``); followed by the first line of the error the change records."""
    said = reason or values.get("progress_message")
    said = said if isinstance(said, str) and said else None
    error = values.get("error")
    if isinstance(error, str) and error.strip():
        said = f"{said or to.value}: {error.strip().splitlines()[0]}"
    return said[:MAX_REASON_LENGTH] if said else None


def creation(job: Job) -> JobHistory:
    """The first entry of a new job's history: it was created in its state."""
    return JobHistory(
        job_id=job.id, to_state=job.state, at=job.created_at, reason="created", attempt=job.attempt
    )


@dataclass(frozen=True)
class Change:
    """One change of state about to be made: where to, when, and why."""

    job_id: str
    to: JobState
    at: dt.datetime
    reason: str | None

    def make(self, connection: Connection, update: Update) -> bool:
        """Run ``update`` (a conditional update of the job that returns the state it left and
        the attempt); if it applied, record the change in the same transaction.

        Returns whether the update applied. Nothing is recorded when it did not.
        """
        row = connection.execute(update).one_or_none()
        if row is None:
            return False
        left, attempt = row
        if left != self.to.value:
            entry = insert(JobHistory).values(
                job_id=self.job_id,
                from_state=left,
                to_state=self.to.value,
                at=self.at,
                reason=self.reason,
                attempt=attempt,
            )
            connection.execute(entry)
        return True


def history_view(entries: Iterable[JobHistory]) -> list[dict[str, Any]]:
    """The JSON representation of a job's history, in the order given (oldest first)."""
    return [
        {
            "state": entry.to_state,
            "from": entry.from_state,
            "at": entry.at.isoformat().replace("+00:00", "Z"),
            "reason": entry.reason,
        }
        for entry in entries
    ]
