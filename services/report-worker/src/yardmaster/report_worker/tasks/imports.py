"""CSV import: validates and stages the file chunk by chunk, then makes it visible at once.

Each chunk's rows are written in the same transaction as the checkpoint (the byte offset of
the next line), so a paused, resumed or re-run import never stages a row twice, and no write
transaction lasts longer than a chunk.

- ``store_status`` (polls: millions of rows, and the table the file workers load into): the
  rows go into the table itself, tagged with the job, hidden from readers until the import
  publishes them in one short transaction (:mod:`.publication`). A stopped or failed import
  publishes nothing; the sweeper deletes its rows later.
- ``business_hours`` and ``timezones`` (a few rows per store): the rows go to a staging table
  (``staging_<table>``) and move over in one transaction when the import finishes
  (``replace`` empties the table first); stopping or failing deletes them.

Either way no row of a bad or stopped file is ever seen by a reader.

A file that is not what the table accepts (a line that is not UTF-8 or not CSV, a wrong number
of fields, a bad value, a store twice in ``timezones``) fails the job at once with
:class:`BadInputError`, naming the line: another attempt would meet the same file. Cells are
read back from the spreadsheet-safe form exports write (:mod:`..core.cell_escape`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Table, delete, func, insert, select

from yardmaster.report_worker.core.csv_rows import decode_lines
from yardmaster.report_worker.core.import_rows import (
    ERRORS_SHOWN,
    duplicate_keys_message,
    lines_holding,
    parse_chunk,
)
from yardmaster.report_worker.errors import BadInputError, TaskError
from yardmaster.report_worker.tasks.base import Result, Task
from yardmaster.report_worker.tasks.publication import BatchStart, publish_batch, register_batch
from yardmaster.shared import outputs
from yardmaster.shared.imports import HeaderError, ImportMode, ImportTable, map_columns, read_header
from yardmaster.shared.jobstore import Progress
from yardmaster.shared.models import (
    BusinessHours,
    StagedBusinessHours,
    StagedTimezone,
    StoreStatus,
    StoreTimezone,
)

#: Lines parsed and staged per step (a step stays well under the checkpoint interval).
CHUNK_LINES = 5000

#: Tables whose imports are staged aside and moved over when they finish.
STAGED_TARGETS: dict[ImportTable, tuple[Table, Table]] = {
    ImportTable.BUSINESS_HOURS: (BusinessHours.__table__, StagedBusinessHours.__table__),  # type: ignore[dict-item]
    ImportTable.TIMEZONES: (StoreTimezone.__table__, StagedTimezone.__table__),  # type: ignore[dict-item]
}


class ImportTask(Task):
    """``params = {"table": ..., "mode": "replace"|"append", "file_name": ...}``."""

    writes_in_bulk = True
    offset = 0
    line = 1
    rows = 0
    #: Set once the import's batch is registered (imports into ``store_status`` only).
    batch: BatchStart | None = None

    def restore(self, checkpoint: dict[str, Any] | None) -> None:
        self.table = ImportTable(self.job.params["table"])
        self.mode = ImportMode(self.job.params.get("mode", ImportMode.REPLACE))
        self.path = outputs.upload_path(self.context.files_dir, self.job.id)
        if not self.path.is_file():
            raise TaskError("the uploaded file is gone")
        self.size = self.path.stat().st_size
        with open(self.path, "rb") as handle:
            first = handle.readline()
            header_end = handle.tell()
        try:
            self.header = read_header(decode_lines([first], 1)[0])
            self.columns = map_columns(self.table, self.header)
        except HeaderError as exc:
            raise BadInputError(f"line 1: {exc}", 1) from None
        state = checkpoint or {"offset": header_end, "line": 1, "rows": 0}
        self.offset, self.line, self.rows = state["offset"], state["line"], state["rows"]
        if "cut_id" in state:
            self.batch = BatchStart(state["cut_id"], state["start_seq"])

    @property
    def in_place(self) -> bool:
        """True when the rows go straight into the table, hidden until published."""
        return self.table is ImportTable.STORE_STATUS

    def step(self, connection: Connection) -> bool:
        lines = self._read_lines()
        if not lines:
            return True
        frame = parse_chunk(self.table, self.header, lines, self.columns, first_line=self.line + 1)
        if self.in_place:
            if self.batch is None:
                self.batch = register_batch(connection, self.job.id)
            frame.insert(0, "import_job", self.job.id)
            stage_rows(connection, StoreStatus.__table__, frame)  # type: ignore[arg-type]
        else:
            frame.insert(0, "job_id", self.job.id)
            stage_rows(connection, STAGED_TARGETS[self.table][1], frame)
        self.line += len(lines)
        self.rows += len(frame)
        return self.offset >= self.size

    def _read_lines(self) -> list[bytes]:
        """The next chunk's lines, undecoded (a byte that is not UTF-8 is reported by line)."""
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            lines = []
            for _ in range(CHUNK_LINES):
                line = handle.readline()
                if not line:
                    break
                lines.append(line)
            self.offset = handle.tell()
        return lines

    def checkpoint(self) -> dict[str, Any]:
        batch = self.batch.as_checkpoint() if self.batch is not None else {}
        return {"offset": self.offset, "line": self.line, "rows": self.rows, **batch}

    def progress(self) -> Progress:
        fraction = self.offset / self.size if self.size else 1.0
        return Progress(fraction, f"{self.rows} rows checked and staged", self.rows)

    def finish(self, connection: Connection) -> Result:
        if self.in_place:
            if self.batch is None:  # a file with a header and no rows
                self.batch = register_batch(connection, self.job.id)
            replace = self.batch if self.mode is ImportMode.REPLACE else None
            publish_batch(connection, self.job.id, replace)
        else:
            self._refuse_duplicate_keys(connection)
            self._move_staged_rows(connection)
        return self._summary()

    def after_finish(self) -> None:
        self.path.unlink(missing_ok=True)

    def _move_staged_rows(self, connection: Connection) -> None:
        target, stage = STAGED_TARGETS[self.table]
        if self.mode is ImportMode.REPLACE:
            connection.execute(delete(target))
        columns = [c.name for c in target.columns if c.name != "id"]
        staged = select(*[stage.c[c] for c in columns]).where(stage.c.job_id == self.job.id)
        connection.execute(insert(target).from_select(columns, staged.order_by(stage.c.id)))
        connection.execute(delete(stage).where(stage.c.job_id == self.job.id))

    def _refuse_duplicate_keys(self, connection: Connection) -> None:
        """Raise :class:`BadInputError` naming the lines of a store the file lists twice, or
        (``append``) lists although the table has it: ``timezones`` holds one row per store."""
        if self.table is not ImportTable.TIMEZONES:
            return
        target, stage = STAGED_TARGETS[self.table]
        mine = stage.c.job_id == self.job.id
        twice = connection.scalars(
            select(stage.c.store_id)
            .where(mine)
            .group_by(stage.c.store_id)
            .having(func.count() > 1)
            .limit(ERRORS_SHOWN)
        ).all()
        if twice:
            raise BadInputError(*duplicate_keys_message(self._lines_holding(twice)))
        if self.mode is ImportMode.APPEND:
            taken = connection.scalars(
                select(stage.c.store_id)
                .join(target, target.c.store_id == stage.c.store_id)
                .where(mine)
                .limit(ERRORS_SHOWN)
            ).all()
            if taken:
                raise BadInputError(*_taken_keys_message(self._lines_holding(taken)))

    def _lines_holding(self, store_ids: Sequence[str]) -> dict[str, list[int]]:
        """Store id -> the lines of the upload holding it (a read of the whole file: only
        done for a file that is refused)."""
        column = self.header.index(self.columns["store_id"])
        with open(self.path, "rb") as handle:
            return lines_holding(handle, column, store_ids)

    def _summary(self) -> Result:
        directory = self.context.result_dir(self.job.id)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "import.json"
        summary = {"table": self.table.value, "mode": self.mode.value, "rows": self.rows}
        path.write_text(json.dumps(summary) + "\n")
        return Result(path, f"import-{self.job.id}.json", "application/json")


def stage_rows(connection: Connection, stage: Table, frame: pd.DataFrame) -> None:
    """Bulk-insert a parsed chunk into a staging table: COPY on PostgreSQL, one
    ``executemany`` of plain tuples on SQLite (both inside the caller's transaction)."""
    as_text = frame.copy()
    for column in as_text.columns:
        if isinstance(as_text[column].dtype, pd.DatetimeTZDtype):
            as_text[column] = as_text[column].dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        elif as_text[column].dtype != object:
            as_text[column] = as_text[column].astype(object)  # numpy scalars -> Python ints
    rows = list(as_text.itertuples(index=False, name=None))
    names = ", ".join(as_text.columns)
    raw = connection.connection.driver_connection
    assert raw is not None
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {stage.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in as_text.columns)
        cursor = raw.cursor()
        cursor.executemany(f"INSERT INTO {stage.name} ({names}) VALUES ({marks})", rows)
        cursor.close()


def _taken_keys_message(found: dict[str, list[int]]) -> tuple[str, int]:
    """Why an ``append`` of the stores of ``found`` (which the table has) was refused."""
    firsts = sorted((lines[0], key) for key, lines in found.items())
    shown = "; ".join(
        f"line {line}: store_id {key!r} already has a time zone" for line, key in firsts
    )
    advice = "append adds new stores only; replace swaps the table"
    return f"the file was not imported: {shown} ({advice})", firsts[0][0]
