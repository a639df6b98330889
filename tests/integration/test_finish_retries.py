"""A job's finish may be tried twice: a commit that fails (a dropped PostgreSQL connection, a
worker killed before the commit) rolls it back, and the next try, by the same task or by a new
attempt restored from the last checkpoint, still finds every input it needs. Files are only
deleted once the finish has committed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from yardmaster.report_worker.tasks import TASKS, Task, TaskContext
from yardmaster.shared import outputs
from yardmaster.shared.jobs import JobKind
from yardmaster.shared.jobstore import JobStore, new_job_id
from yardmaster.shared.migrate import upgrade_to_head
from yardmaster.shared.models import Job, StoreStatus, visible_store_status

POLLS = 12_000


@pytest.fixture
def context(engine: Engine, tmp_path: Path) -> TaskContext:
    upgrade_to_head(engine)
    return TaskContext(engine, tmp_path / "files")


def write_polls(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        handle.write("store_id,status,timestamp_utc\n")
        for n in range(POLLS):
            handle.write(f"s{n % 50},active,2023-01-2{n % 7} 10:{n % 60:02d}:00.000000 UTC\n")


def new_job(engine: Engine, kind: JobKind, params: dict[str, str], job_id: str) -> Job:
    return JobStore(engine).create(kind, params, "default", job_id=job_id)


def run_to_the_end(task: Task, engine: Engine) -> dict[str, object]:
    """Every step, each committed with nothing else (the checkpoints stay in memory)."""
    done = False
    while not done:
        with engine.begin() as connection:
            done = task.step(connection)
    return task.checkpoint()


def finish_that_never_commits(task: Task, engine: Engine) -> None:
    """The finish runs, then its transaction is lost (the worker died, the connection dropped)."""
    with engine.connect() as connection:
        connection.begin()
        task.finish(connection)
        connection.rollback()


def finish_from(task_class: type[Task], job: Job, context: TaskContext, checkpoint: dict) -> Path:
    """A new attempt restored from the last checkpoint finishes the job; its result's path."""
    task = task_class(job, context)
    task.restore(checkpoint)
    run_to_the_end(task, context.engine)
    with context.engine.begin() as connection:
        result = task.finish(connection)
    task.after_finish()
    assert result is not None
    return result.path


def count(engine: Engine, table: object) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("same_task", [True, False], ids=["retried commit", "new attempt"])
def test_an_import_whose_finish_did_not_commit_finishes_on_the_next_try(
    context: TaskContext, engine: Engine, same_task: bool
) -> None:
    job_id = new_job_id()
    upload = outputs.upload_path(context.files_dir, job_id)
    write_polls(upload)
    params = {"table": "store_status", "mode": "append", "file_name": "polls.csv"}
    job = new_job(engine, JobKind.IMPORT, params, job_id)
    task = TASKS[JobKind.IMPORT](job, context)
    task.restore(None)
    checkpoint = run_to_the_end(task, engine)

    finish_that_never_commits(task, engine)
    assert upload.is_file(), "the upload is kept until the finish commits"
    assert count(engine, visible_store_status) == 0

    if same_task:
        with engine.begin() as connection:
            task.finish(connection)
        task.after_finish()
    else:
        finish_from(TASKS[JobKind.IMPORT], job, context, checkpoint)

    assert count(engine, visible_store_status) == count(engine, StoreStatus) == POLLS
    assert not upload.exists(), "the upload goes once the import has committed"


@pytest.mark.parametrize("kind", [JobKind.EXPORT, JobKind.REPORT])
def test_an_output_whose_finish_did_not_commit_is_published_whole_by_the_next_attempt(
    context: TaskContext, engine: Engine, kind: JobKind
) -> None:
    params = {"from": "2023-01-01T00:00:00+00:00", "till": "2023-02-01T00:00:00+00:00"}
    job = new_job(engine, kind, params if kind is JobKind.EXPORT else {}, new_job_id())
    task = TASKS[kind](job, context)
    task.restore(None)
    checkpoint = run_to_the_end(task, engine)
    finish_that_never_commits(task, engine)

    result = finish_from(TASKS[kind], job, context, checkpoint)

    assert result.read_text().startswith(("store_id,", "store_id\n"))
    assert not list(result.parent.glob("*.partial")), "the partial file goes after the commit"
    assert not list(result.parent.glob("*.link"))
