"""The store report job: reads the three store tables, computes, writes the CSV.

Two stages, each checkpointed: compute (reads the tables and writes the CSV to a partial file;
one vectorised call of a few seconds, not interruptible inside) and publish (renames it into
place). A pause or stop is honoured between them; a resumed report does not compute again,
so its CSV is the one an uninterrupted run would have written. The CSV is spreadsheet-safe
(:mod:`..core.cell_escape`: a store id such as ``=1+2`` is written ``'=1+2``; numbers as numbers).
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
from sqlalchemy import Connection, select

from yardmaster.report_worker.core.cell_escape import escape_text_columns
from yardmaster.report_worker.core.uptime import compute_report
from yardmaster.report_worker.tasks.base import Result, Task, link_in_place
from yardmaster.shared.jobstore import Progress
from yardmaster.shared.models import BusinessHours, StoreTimezone, visible_store_status

#: What readers read: the polls, without those of unpublished or replaced imports.
POLLS = visible_store_status.name


def read_polls(connection: Connection) -> pd.DataFrame:
    """All polls, read in bulk: COPY to CSV on PostgreSQL, one plain cursor on SQLite.

    Both skip SQLAlchemy's per-row type conversion, which would dominate a 1.8 M-row report.
    """
    raw = connection.connection.driver_connection
    assert raw is not None
    if connection.dialect.name == "postgresql":
        buffer = io.BytesIO()
        query = f"COPY (SELECT store_id, status, timestamp_utc FROM {POLLS}) TO STDOUT WITH CSV"
        with raw.cursor() as cursor, cursor.copy(query) as copy:
            for block in copy:
                buffer.write(block)
        buffer.seek(0)
        polls = pd.read_csv(buffer, names=["store_id", "status", "timestamp_utc"], dtype=str)
    else:
        cursor = raw.cursor()
        cursor.execute(f"SELECT store_id, status, timestamp_utc FROM {POLLS}")
        polls = pd.DataFrame(cursor.fetchall(), columns=["store_id", "status", "timestamp_utc"])
        cursor.close()
    polls["timestamp_utc"] = pd.to_datetime(polls["timestamp_utc"], utc=True, format="ISO8601")
    return polls


def read_store_tables(connection: Connection) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The polls, business hours and time zones as DataFrames."""
    polls = read_polls(connection)
    hours = pd.read_sql(
        select(
            BusinessHours.store_id,
            BusinessHours.day_of_week,
            BusinessHours.start_time_local,
            BusinessHours.end_time_local,
        ),
        connection,
    )
    zones = pd.read_sql(select(StoreTimezone.store_id, StoreTimezone.timezone_str), connection)
    return polls, hours, zones


class ReportTask(Task):
    """``params = {}``: the report over whatever the store tables hold when it runs."""

    stage = "compute"
    stores = 0

    def restore(self, checkpoint: dict[str, Any] | None) -> None:
        state = checkpoint or {"stage": "compute", "stores": 0}
        self.stage, self.stores = state["stage"], state["stores"]
        self.directory = self.context.result_dir(self.job.id)
        self.partial = self.directory / "report.csv.partial"

    def step(self, connection: Connection) -> bool:
        if self.stage == "compute":
            polls, hours, zones = read_store_tables(connection)
            report = compute_report(polls, hours, zones)
            self.directory.mkdir(parents=True, exist_ok=True)
            escape_text_columns(report).to_csv(self.partial, index=False, float_format="%.2f")
            self.stores = len(report)
            self.stage = "publish"
            return False
        return True

    def checkpoint(self) -> dict[str, Any]:
        return {"stage": self.stage, "stores": self.stores}

    def progress(self) -> Progress:
        if self.stage == "compute":
            return Progress(0.0, "computing", 0)
        return Progress(0.95, f"{self.stores} stores computed", self.stores, self.stores)

    def finish(self, connection: Connection) -> Result:
        final = self.directory / "report.csv"
        link_in_place(self.partial, final)
        return Result(final, f"store-report-{self.job.id}.csv", "text/csv")

    def after_finish(self) -> None:
        self.partial.unlink(missing_ok=True)
