"""The CSV import contract: which tables can be loaded, and the columns each file must have.

Shared because the API checks an upload's header at once (a 400 before any job exists) and
the report worker maps the same columns when it loads the rows.
"""

from __future__ import annotations

import csv
import io
from enum import StrEnum


class ImportTable(StrEnum):
    """A table a CSV file can be imported into."""

    STORE_STATUS = "store_status"
    BUSINESS_HOURS = "business_hours"
    TIMEZONES = "timezones"


class ImportMode(StrEnum):
    """``replace``: the table becomes the file; ``append``: the file's rows are added."""

    REPLACE = "replace"
    APPEND = "append"


#: Column of the table -> accepted names in a file (the data set's versions differ: day/dayOfWeek).
COLUMNS: dict[ImportTable, dict[str, tuple[str, ...]]] = {
    ImportTable.STORE_STATUS: {
        "store_id": ("store_id",),
        "status": ("status",),
        "timestamp_utc": ("timestamp_utc",),
    },
    ImportTable.BUSINESS_HOURS: {
        "store_id": ("store_id",),
        "day_of_week": ("dayOfWeek", "day", "day_of_week"),
        "start_time_local": ("start_time_local",),
        "end_time_local": ("end_time_local",),
    },
    ImportTable.TIMEZONES: {
        "store_id": ("store_id",),
        "timezone_str": ("timezone_str",),
    },
}


class HeaderError(ValueError):
    """A file's header lacks a required column (or is not CSV)."""


def read_header(first_line: str) -> list[str]:
    """The column names of a CSV header line."""
    try:
        row = next(csv.reader(io.StringIO(first_line)))
    except (csv.Error, StopIteration):
        raise HeaderError("the file has no CSV header line") from None
    return [name.strip().lstrip("\ufeff") for name in row]


def map_columns(table: ImportTable, header: list[str]) -> dict[str, str]:
    """Table column -> the file's column for it (any order, extra columns ignored).

    Raises :class:`HeaderError` naming the first missing column and what was found.
    """
    mapping: dict[str, str] = {}
    for column, accepted in COLUMNS[table].items():
        found = [name for name in accepted if name in header]
        if not found:
            wanted = " or ".join(accepted)
            found_names = ", ".join(header) or "(nothing)"
            raise HeaderError(
                f"{table} files need a {wanted} column; the header has: {found_names}"
            )
        mapping[column] = found[0]
    return mapping
