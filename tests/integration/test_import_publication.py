"""Imports into store_status publish in place: what readers see before, at and after publishing.

The rules: an import's rows are hidden until it publishes; a ``replace`` replaces what the
table held when the import started (file-worker rows and imports published before it),
never the rows the file workers load while it runs; hidden rows are swept a chunk at a time
without changing what readers see.
"""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import Engine, func, insert, select, update

from yardmaster.report_worker.tasks import publication
from yardmaster.report_worker.tasks.publication import (
    BatchStart,
    publish_batch,
    register_batch,
    sweep_hidden_rows,
)
from yardmaster.shared.jobs import JobKind
from yardmaster.shared.jobstore import JobStore
from yardmaster.shared.migrate import upgrade_to_head
from yardmaster.shared.models import Job, StoreStatus, visible_store_status

_minutes = itertools.count()


def polls(engine: Engine, store: str, count: int, import_job: str | None = None) -> None:
    """``count`` polls of ``store``: a file worker's (untagged) or an import's rows."""
    base = dt.datetime(2023, 1, 20, tzinfo=dt.UTC)
    rows = [
        {
            "store_id": store,
            "status": "active",
            "timestamp_utc": base + dt.timedelta(minutes=next(_minutes)),
            "import_job": import_job,
        }
        for _ in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(StoreStatus), rows)


def seen(engine: Engine) -> dict[str, int]:
    """Store id -> polls a reader sees."""
    view = visible_store_status.c
    with engine.connect() as connection:
        counted = connection.execute(
            select(view.store_id, func.count()).group_by(view.store_id)
        ).all()
    return {store: count for store, count in counted}


def stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(StoreStatus)) or 0)


def start_import(engine: Engine, store: JobStore) -> tuple[str, BatchStart]:
    job = store.create(JobKind.IMPORT, {"table": "store_status"}, "yardmaster-default")
    with engine.begin() as connection:
        return job.id, register_batch(connection, job.id)


def publish(engine: Engine, job_id: str, replace: BatchStart | None = None) -> None:
    with engine.begin() as connection:
        publish_batch(connection, job_id, replace)


def end_job(engine: Engine, job_id: str, state: str) -> None:
    with engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == job_id).values(state=state))


def test_an_imports_rows_are_hidden_until_it_publishes_then_all_appear_at_once(
    engine: Engine,
) -> None:
    upgrade_to_head(engine)
    polls(engine, "filed", 3)
    job_id, _ = start_import(engine, JobStore(engine))
    polls(engine, "imported", 10, import_job=job_id)

    assert seen(engine) == {"filed": 3}
    publish(engine, job_id)
    assert seen(engine) == {"filed": 3, "imported": 10}


def test_replace_keeps_the_rows_file_workers_loaded_while_it_ran(engine: Engine) -> None:
    upgrade_to_head(engine)
    store = JobStore(engine)
    polls(engine, "before", 5)
    earlier, _ = start_import(engine, store)
    polls(engine, "earlier import", 4, import_job=earlier)
    publish(engine, earlier)

    job_id, start = start_import(engine, store)
    polls(engine, "replacing", 7, import_job=job_id)
    polls(engine, "during", 2)  # a file worker loads a file while the import runs
    meanwhile, _ = start_import(engine, store)  # an append that starts and publishes meanwhile
    polls(engine, "appended meanwhile", 3, import_job=meanwhile)
    publish(engine, meanwhile)
    publish(engine, job_id, replace=start)

    assert seen(engine) == {"replacing": 7, "during": 2, "appended meanwhile": 3}


def test_an_import_that_ended_unpublished_shows_nothing_and_its_rows_are_swept(
    engine: Engine,
) -> None:
    upgrade_to_head(engine)
    store = JobStore(engine)
    polls(engine, "kept", 3)
    stopped, _ = start_import(engine, store)
    polls(engine, "stopped", 12_000, import_job=stopped)
    running, _ = start_import(engine, store)
    polls(engine, "still running", 6, import_job=running)
    end_job(engine, stopped, "stopped")

    while sweep_hidden_rows(engine):
        pass
    assert seen(engine) == {"kept": 3}
    assert stored(engine) == 3 + 6  # the running import keeps its rows
    publish(engine, running)
    assert seen(engine) == {"kept": 3, "still running": 6}


def test_sweeping_replaced_rows_a_chunk_at_a_time_never_changes_what_readers_see(
    engine: Engine,
) -> None:
    upgrade_to_head(engine)
    store = JobStore(engine)
    polls(engine, "old", 3 * publication.SWEEP_CHUNK_ROWS + 17)
    old_import, _ = start_import(engine, store)
    polls(engine, "old import", 20, import_job=old_import)
    publish(engine, old_import)
    job_id, start = start_import(engine, store)
    polls(engine, "new", 40, import_job=job_id)
    publish(engine, job_id, replace=start)

    while sweep_hidden_rows(engine, seconds=0):
        assert seen(engine) == {"new": 40}
    assert stored(engine) == 40
    assert sweep_hidden_rows(engine) == 0


def test_an_empty_replace_empties_the_table_for_readers(engine: Engine) -> None:
    upgrade_to_head(engine)
    polls(engine, "old", 5)
    job_id, start = start_import(engine, JobStore(engine))

    publish(engine, job_id, replace=start)

    assert seen(engine) == {}
