"""Imports into ``store_status`` publish in place: one short transaction, however big the file.

An import writes its rows straight into ``store_status``, tagged with its job id, chunk by
chunk in short transactions; readers read the ``visible_store_status`` view, which hides a
batch until it is published. Publishing is one update of two small rows, so no write
transaction ever lasts longer than a chunk (SQLite has one writer for the whole file: a long
one would stall every file worker and the API).

``replace`` replaces what the table held when the import *started*: the file workers' rows
up to that moment and the imports published before it. Rows the file workers load while it
runs, and imports published meanwhile, stay. Hidden rows are deleted afterwards, a chunk per
transaction, by :func:`sweep_hidden_rows` (the reaper calls it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update

from yardmaster.shared.jobs import JobState
from yardmaster.shared.jobstore import utcnow
from yardmaster.shared.models import ImportBatch, ImportFloor, Job, StoreStatus

log = logging.getLogger(__name__)

TABLE = StoreStatus.__tablename__
#: Rows deleted per sweeping transaction (tens of milliseconds of SQLite's write lock).
SWEEP_CHUNK_ROWS = 5000
#: Sweeping time per reaper pass: the half second between passes is left to other writers
#: (SQLite's writers do not queue: back-to-back transactions would starve everyone else).
SWEEP_SECONDS = 0.2
#: An import that ended without publishing leaves hidden rows behind: these states.
ENDED_UNPUBLISHED = (JobState.FAILED.value, JobState.STOPPED.value)


@dataclass(frozen=True)
class BatchStart:
    """What the table held when an import began: its ``replace`` hides exactly that."""

    cut_id: int
    start_seq: int

    def as_checkpoint(self) -> dict[str, Any]:
        return {"cut_id": self.cut_id, "start_seq": self.start_seq}


def register_batch(connection: Connection, job_id: str) -> BatchStart:
    """Record a new import's batch (in the transaction of its first rows)."""
    cut_id = connection.scalar(select(func.max(StoreStatus.id))) or 0
    start_seq = connection.scalar(
        select(ImportFloor.last_seq).where(ImportFloor.table_name == TABLE)
    )
    connection.execute(
        insert(ImportBatch).values(job_id=job_id, table_name=TABLE, created_at=utcnow())
    )
    return BatchStart(int(cut_id), int(start_seq or 0))


def publish_batch(connection: Connection, job_id: str, replace: BatchStart | None) -> int:
    """Make the batch visible (and, for ``replace``, hide what it replaces); its sequence.

    The floor row is updated first, so concurrent publications queue on its lock.
    """
    seq = connection.scalar(
        update(ImportFloor)
        .where(ImportFloor.table_name == TABLE)
        .values(last_seq=ImportFloor.last_seq + 1)
        .returning(ImportFloor.last_seq)
    )
    if replace is not None:
        larger = func.max if connection.dialect.name == "sqlite" else func.greatest
        connection.execute(
            update(ImportFloor)
            .where(ImportFloor.table_name == TABLE)
            .values(
                floor_id=larger(ImportFloor.floor_id, replace.cut_id),
                floor_seq=larger(ImportFloor.floor_seq, replace.start_seq),
            )
        )
    assert seq is not None, f"no import_floors row for {TABLE}: run the migrations"
    connection.execute(update(ImportBatch).where(ImportBatch.job_id == job_id).values(seq=seq))
    return int(seq)


def sweep_hidden_rows(engine: Engine, seconds: float = SWEEP_SECONDS) -> int:
    """Delete rows no reader can see any more, one chunk per transaction, for about
    ``seconds`` (the reaper calls this every pass: other writers get the gaps between);
    the number of rows deleted."""
    deadline = time.monotonic() + seconds
    deleted = 0
    while True:
        with engine.begin() as connection:
            removed = _sweep_one_chunk(connection)
        deleted += removed
        if removed == 0 or time.monotonic() >= deadline:
            break
    if deleted:
        log.info("swept %d hidden %s rows", deleted, TABLE)
    return deleted


def _sweep_one_chunk(connection: Connection) -> int:
    floor = connection.execute(select(ImportFloor).where(ImportFloor.table_name == TABLE)).one()
    if floor.swept_id < floor.floor_id:
        hidden = (
            select(StoreStatus.id)
            .where(StoreStatus.import_job.is_(None), StoreStatus.id <= floor.floor_id)
            .order_by(StoreStatus.id)
            .limit(SWEEP_CHUNK_ROWS)
        )
        removed = _delete_ids(connection, hidden)
        if removed < SWEEP_CHUNK_ROWS:
            connection.execute(
                update(ImportFloor)
                .where(ImportFloor.table_name == TABLE)
                .values(swept_id=floor.floor_id)
            )
        if removed:
            return removed
    job_id = connection.scalar(_hidden_batches(floor.floor_seq).limit(1))
    if job_id is None:
        return 0
    removed = _delete_ids(
        connection,
        select(StoreStatus.id).where(StoreStatus.import_job == job_id).limit(SWEEP_CHUNK_ROWS),
    )
    if removed < SWEEP_CHUNK_ROWS:
        connection.execute(delete(ImportBatch).where(ImportBatch.job_id == job_id))
    return max(removed, 1)  # a batch row went: there may be more


def _hidden_batches(floor_seq: int) -> Any:
    """Batches whose rows nobody will see: replaced, or of an import that ended unpublished."""
    return (
        select(ImportBatch.job_id)
        .outerjoin(Job, Job.id == ImportBatch.job_id)
        .where(
            ImportBatch.table_name == TABLE,
            or_(
                ImportBatch.seq <= floor_seq,
                and_(
                    ImportBatch.seq.is_(None),
                    or_(Job.id.is_(None), Job.state.in_(ENDED_UNPUBLISHED)),
                ),
            ),
        )
    )


def _delete_ids(connection: Connection, ids: Any) -> int:
    result = connection.execute(delete(StoreStatus).where(StoreStatus.id.in_(ids)))
    return int(result.rowcount or 0)
