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
"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Table, delete, insert, select

from yardmaster.report_worker.tasks.base import Result, Task, TaskError
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
#: At most this many bad lines are reported when a file is refused.
ERRORS_SHOWN = 5

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
        with open(self.path, encoding="utf-8", newline="") as handle:
            self.header_line = handle.readline()
            header_end = handle.tell()
        try:
            self.columns = map_columns(self.table, read_header(self.header_line))
        except HeaderError as exc:
            raise TaskError(str(exc)) from None
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
        frame = parse_chunk(
            self.table, self.header_line, lines, self.columns, first_line=self.line + 1
        )
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

    def _read_lines(self) -> list[str]:
        with open(self.path, encoding="utf-8", newline="") as handle:
            handle.seek(self.offset)
            lines = []
            for _ in range(CHUNK_LINES):
                text = handle.readline()
                if not text:
                    break
                lines.append(text)
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


def parse_chunk(
    table: ImportTable, header_line: str, lines: list[str], columns: dict[str, str], first_line: int
) -> pd.DataFrame:
    """Parse and validate CSV lines (numbered from ``first_line``) into the table's columns.

    Raises :class:`TaskError` listing the first bad lines by number.
    """
    raw = pd.read_csv(io.StringIO(header_line + "".join(lines)), dtype=str, keep_default_na=False)
    raw.index = pd.RangeIndex(first_line, first_line + len(raw))
    frame = pd.DataFrame({column: raw[name].str.strip() for column, name in columns.items()})
    errors = _VALIDATORS[table](frame)
    if errors:
        shown = "; ".join(f"line {n}: {why}" for n, why in errors[:ERRORS_SHOWN])
        raise TaskError(
            f"the file was not imported: {len(errors)} bad line(s) in this part, first: {shown}"
        )
    return frame


def _bad(mask: pd.Series, why: str) -> list[tuple[int, str]]:
    return [(int(n), why) for n in mask[mask].index]


def _store_ids(frame: pd.DataFrame) -> list[tuple[int, str]]:
    return _bad(
        (frame["store_id"] == "") | (frame["store_id"].str.len() > 64),
        "store_id is empty or too long",
    )


def _validate_store_status(frame: pd.DataFrame) -> list[tuple[int, str]]:
    frame["status"] = frame["status"].str.lower()
    stamps = frame["timestamp_utc"].str.removesuffix(" UTC").str.removesuffix("Z")
    parsed = pd.to_datetime(stamps, utc=True, format="ISO8601", errors="coerce")
    frame["timestamp_utc"] = parsed
    errors = _store_ids(frame)
    errors += _bad(
        ~frame["status"].isin(["active", "inactive"]), "status must be active or inactive"
    )
    errors += _bad(parsed.isna(), "timestamp_utc is not a time like 2023-01-22 12:09:39.388884 UTC")
    return sorted(errors)


def _validate_business_hours(frame: pd.DataFrame) -> list[tuple[int, str]]:
    day = pd.to_numeric(frame["day_of_week"], errors="coerce")
    frame["day_of_week"] = day.fillna(-1).astype(int)  # bad days are reported below
    errors = _store_ids(frame) + _bad(~day.isin(range(7)), "day must be 0 (Monday) to 6")
    for column in ("start_time_local", "end_time_local"):
        times = pd.to_datetime(frame[column], format="mixed", errors="coerce")
        bad = times.isna() | ~frame[column].str.fullmatch(r"\d{1,2}:\d{2}(:\d{2}(\.\d{1,6})?)?")
        errors += _bad(bad, f"{column} is not a time like 09:30:00")
        frame[column] = times.dt.strftime("%H:%M:%S.%f")
    return sorted(errors)


def _validate_timezones(frame: pd.DataFrame) -> list[tuple[int, str]]:
    from zoneinfo import available_timezones

    known = available_timezones()
    return sorted(
        _store_ids(frame)
        + _bad(~frame["timezone_str"].isin(known), "timezone_str is not an IANA time zone")
    )


_VALIDATORS = {
    ImportTable.STORE_STATUS: _validate_store_status,
    ImportTable.BUSINESS_HOURS: _validate_business_hours,
    ImportTable.TIMEZONES: _validate_timezones,
}
