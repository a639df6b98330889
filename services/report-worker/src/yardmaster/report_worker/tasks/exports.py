"""CSV export of store polls in a time range, written in keyset pages to a partial file.

The checkpoint is the last exported row id and the partial file's committed size; a resumed
export truncates the file to that size first, so rows written after the last checkpoint (by
an attempt that died) are never duplicated. Finishing links the file into place under its
final name (a retried finish links it again); the partial name goes once the finish commits.

The file is spreadsheet-safe (:mod:`..core.cell_escape`: a store id such as ``=1+2`` is written
``'=1+2``), and ``POST /imports`` reads it back unchanged.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, func, select

from yardmaster.report_worker.core.cell_escape import escape_text
from yardmaster.report_worker.tasks.base import Result, Task, link_in_place
from yardmaster.shared.jobstore import Progress
from yardmaster.shared.models import visible_store_status

#: The polls readers see (not those of unpublished or replaced imports).
POLLS = visible_store_status.c

#: Rows per step.
PAGE_ROWS = 5000
HEADER = ("store_id", "status", "timestamp_utc")


def format_timestamps(values: Sequence[dt.datetime]) -> pd.Series:
    """The data set's own format, which imports accept back: ``2023-01-22 12:09:39.388884 UTC``
    (naive times are UTC already; aware ones are converted)."""
    instants = pd.to_datetime(pd.Series(values, dtype=object), utc=True)
    micros = instants.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    iso = pd.Series(np.datetime_as_string(micros, unit="us"), dtype=object)
    return iso.str.replace("T", " ", regex=False) + " UTC"


def polls_csv(stores: Sequence[str], statuses: Sequence[str], stamps: Sequence[dt.datetime]) -> str:
    """CSV lines of polls, spreadsheet-safe: the text columns escaped (vectorised)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(
        zip(
            escape_text(pd.Series(stores, dtype=object)).tolist(),
            escape_text(pd.Series(statuses, dtype=object)).tolist(),
            format_timestamps(stamps).tolist(),
            strict=True,
        )
    )
    return buffer.getvalue()


class ExportTask(Task):
    """``params = {"from": ISO time, "till": ISO time}``: polls with from <= time < till."""

    last_id = 0
    written = 0
    rows = 0
    total = 0

    def restore(self, checkpoint: dict[str, Any] | None) -> None:
        self.start = dt.datetime.fromisoformat(self.job.params["from"])
        self.end = dt.datetime.fromisoformat(self.job.params["till"])
        directory = self.context.result_dir(self.job.id)
        directory.mkdir(parents=True, exist_ok=True)
        self.partial = directory / "export.csv.partial"
        if checkpoint is None:
            self.partial.write_text(",".join(HEADER) + "\n", encoding="utf-8")
            self.written = self.partial.stat().st_size
            with self.context.engine.connect() as connection:
                self.total = connection.scalar(select(func.count()).where(*self._in_range())) or 0
        else:
            self.last_id, self.written = checkpoint["last_id"], checkpoint["written"]
            self.rows, self.total = checkpoint["rows"], checkpoint["total"]
            with open(self.partial, "r+b") as handle:
                handle.truncate(self.written)

    def _in_range(self) -> list[Any]:
        return [POLLS.timestamp_utc >= self.start, POLLS.timestamp_utc < self.end]

    def step(self, connection: Connection) -> bool:
        page = connection.execute(
            select(POLLS.id, POLLS.store_id, POLLS.status, POLLS.timestamp_utc)
            .where(*self._in_range(), POLLS.id > self.last_id)
            .order_by(POLLS.id)
            .limit(PAGE_ROWS)
        ).all()
        if page:
            _, stores, statuses, stamps = zip(*page, strict=True)
            with open(self.partial, "a", encoding="utf-8") as handle:
                handle.write(polls_csv(stores, statuses, stamps))
            self.written = self.partial.stat().st_size
            self.last_id = page[-1].id
            self.rows += len(page)
        return len(page) < PAGE_ROWS

    def checkpoint(self) -> dict[str, Any]:
        return {
            "last_id": self.last_id,
            "written": self.written,
            "rows": self.rows,
            "total": self.total,
        }

    def progress(self) -> Progress:
        fraction = self.rows / self.total if self.total else 1.0
        return Progress(
            fraction, f"{self.rows} of {self.total} rows written", self.rows, self.total
        )

    def finish(self, connection: Connection) -> Result:
        final = self.partial.with_name("export.csv")
        link_in_place(self.partial, final)
        stamp = f"{self.start:%Y%m%dT%H%M%S}-{self.end:%Y%m%dT%H%M%S}"
        return Result(final, f"store-status-{stamp}.csv", "text/csv")

    def after_finish(self) -> None:
        self.partial.unlink(missing_ok=True)
