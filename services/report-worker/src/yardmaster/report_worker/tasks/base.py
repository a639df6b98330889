"""What every long job implements so the runner can checkpoint, pause, resume and stop it."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

# TaskError is re-exported here, where the runner and the tasks have always found it.
from yardmaster.report_worker.errors import TaskError as TaskError
from yardmaster.shared import outputs
from yardmaster.shared.jobstore import Progress
from yardmaster.shared.models import Job


@dataclass(frozen=True)
class TaskContext:
    """What a task may use: the database and its folders."""

    engine: Engine
    files_dir: Path
    #: Simulated work sleeps its execution time times this (benchmarks scale it down).
    work_time_scale: float = 1.0

    def result_dir(self, job_id: str) -> Path:
        """The folder holding one job's result and partial outputs."""
        return outputs.result_dir(self.files_dir, job_id)


@dataclass(frozen=True)
class Result:
    """A finished job's output file, served by ``GET /jobs/<id>/result``."""

    path: Path
    name: str
    media_type: str


def link_in_place(source: Path, target: Path) -> None:
    """Give ``source`` the name ``target`` too, atomically replacing any older ``target``:
    a finish that is retried links again, and the partial file stays for a restore until
    the finish has committed."""
    if target.exists() and target.samefile(source):
        return  # linked by an earlier try (renaming onto the same file would do nothing)
    staging = target.with_name(target.name + ".link")
    staging.unlink(missing_ok=True)
    os.link(source, staging)
    staging.replace(target)


class Task(ABC):
    """One job's work, cut into small steps between which it can be checkpointed.

    The runner calls :meth:`restore` once per segment, then :meth:`step` repeatedly inside a
    transaction that also saves :meth:`checkpoint`, so a step's output and the checkpoint that
    covers it commit together. Steps should take well under 0.1 s.
    """

    #: True for a task whose steps each write many rows: one step per transaction, so the
    #: write lock (SQLite has one for the whole file) is held only while a step writes, not
    #: while the next one reads and parses its input.
    writes_in_bulk = False

    def __init__(self, job: Job, context: TaskContext) -> None:
        self.job = job
        self.context = context

    @abstractmethod
    def restore(self, checkpoint: dict[str, Any] | None) -> None:
        """Continue from ``checkpoint`` (None: from the start)."""

    @abstractmethod
    def step(self, connection: Connection) -> bool:
        """Do one small unit of work; return True when nothing is left."""

    @abstractmethod
    def checkpoint(self) -> dict[str, Any]:
        """Where to continue from, as JSON-able values."""

    @abstractmethod
    def progress(self) -> Progress:
        """How far the job has come."""

    @abstractmethod
    def finish(self, connection: Connection) -> Result | None:
        """Complete the job inside the transaction that marks it finished.

        It may run more than once (a commit that failed is retried), so it must not destroy
        what a retry needs: irreversible file work belongs in :meth:`after_finish`."""

    def after_finish(self) -> None:
        """Tidy up once the finish has committed (delete inputs, partial files). A crash
        before this runs leaves a stray file at worst, never a job that cannot finish."""
        return None

    def cleanup(self, connection: Connection) -> None:
        """Remove partial outputs of a stopped or failed job (also run by the reaper)."""
        outputs.discard_partial_outputs(connection, self.context.files_dir, self.job.id)
