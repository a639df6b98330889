"""The store report from CSV files, offline:

    python -m yardmaster.report_worker.compute --store-status F --business-hours F \\
        --timezones F --out report.csv

Computes the store report from the three CSV files directly: no Redis, no database. The files
may use either version's column names (``day`` or ``dayOfWeek``), in any order. Cells are read
back from, and the report written in, the spreadsheet-safe form of :mod:`.core.cell_escape`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from yardmaster.report_worker.core.cell_escape import escape_text_columns, unescape_text
from yardmaster.report_worker.core.uptime import compute_report
from yardmaster.shared.imports import HeaderError, ImportTable, map_columns, read_header


def read_table(path: Path, table: ImportTable) -> pd.DataFrame:
    """A CSV file's columns renamed to the table's; raises HeaderError for a wrong file."""
    with open(path, encoding="utf-8") as handle:
        mapping = map_columns(table, read_header(handle.readline()))
    frame = pd.read_csv(path, dtype=str, usecols=list(mapping.values()), keep_default_na=False)
    frame = frame.rename(columns={file: column for column, file in mapping.items()})
    return frame.apply(lambda column: unescape_text(column.str.strip()))


def read_polls(path: Path) -> pd.DataFrame:
    """The polls, timestamps parsed (``... UTC`` with 0 to 6 fractional digits, or ISO 8601)."""
    polls = read_table(path, ImportTable.STORE_STATUS)
    stamps = polls["timestamp_utc"].str.removesuffix(" UTC")
    polls["timestamp_utc"] = pd.to_datetime(stamps, utc=True, format="ISO8601")
    return polls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m yardmaster.report_worker.compute",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--store-status", type=Path, required=True)
    parser.add_argument("--business-hours", type=Path, required=True)
    parser.add_argument("--timezones", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        started = time.perf_counter()
        polls = read_polls(args.store_status)
        hours = read_table(args.business_hours, ImportTable.BUSINESS_HOURS)
        zones = read_table(args.timezones, ImportTable.TIMEZONES)
        loaded = time.perf_counter()
        report = compute_report(polls, hours, zones)
        computed = time.perf_counter()
    except (OSError, HeaderError, ValueError) as exc:
        print(f"compute: {exc}", file=sys.stderr)
        return 1
    escape_text_columns(report).to_csv(args.out, index=False, float_format="%.2f")
    print(
        f"compute: {len(report):,} stores from {len(polls):,} polls -> {args.out} "
        f"(read {loaded - started:.2f} s, computed {computed - loaded:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
