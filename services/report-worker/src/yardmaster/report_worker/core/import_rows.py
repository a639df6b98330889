"""An import file's rows, parsed and checked a chunk of lines at a time: values in, a
DataFrame of the table's columns (indexed by line number) out, or :class:`BadInputError`.

Every cell is stripped of surrounding spaces and read back from the spreadsheet-safe form
exports write (:func:`..cell_escape.unescape_cell`), then checked against its column.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Collection, Iterable

import pandas as pd

from yardmaster.report_worker.core.cell_escape import QUOTE, unescape_cell, unescape_text
from yardmaster.report_worker.core.csv_rows import decode_lines, read_frame
from yardmaster.report_worker.errors import BadInputError
from yardmaster.shared.imports import ImportTable

#: At most this many bad lines are reported when a file is refused.
ERRORS_SHOWN = 5
#: The longest store id the tables hold (``models.STORE_ID_LENGTH``; core imports no ORM).
STORE_ID_LENGTH = 64

Problems = list[tuple[int, str]]


def parse_chunk(
    table: ImportTable,
    header: list[str],
    lines: list[bytes],
    columns: dict[str, str],
    first_line: int,
) -> pd.DataFrame:
    """The table's columns of CSV ``lines`` (numbered from ``first_line``), checked.

    ``header`` is the file's column names, ``columns`` maps the table's columns to them.
    Raises :class:`BadInputError` for the first line that is not CSV with the header's
    fields, or listing the first lines whose values the table cannot hold.
    """
    text = decode_lines(lines, first_line)
    fields = read_frame(text, first_line, len(header))
    frame = pd.DataFrame(
        {column: fields[header.index(name)].str.strip() for column, name in columns.items()}
    )
    if any(QUOTE in line for line in text):  # else nothing to unescape (the usual chunk)
        frame = frame.apply(unescape_text)
    problems = _VALIDATORS[table](frame)
    if problems:
        shown = "; ".join(f"line {n}: {why}" for n, why in problems[:ERRORS_SHOWN])
        raise BadInputError(
            f"the file was not imported: {len(problems)} bad line(s) in this part, first: {shown}",
            problems[0][0],
        )
    return frame


def cell_value(cell: str) -> str:
    """What the import stores for a cell of text (as :func:`parse_chunk` reads it)."""
    return unescape_cell(cell.strip())


def lines_holding(
    lines: Iterable[bytes], column: int, values: Collection[str]
) -> dict[str, list[int]]:
    """Value -> the numbers of the lines (the header is line 1) whose field ``column`` holds
    it, for each of ``values`` found; for a file that parses (the lines after the header)."""
    wanted = set(values)
    found: dict[str, list[int]] = {}
    for number, line in enumerate(lines, 1):
        if number == 1:
            continue
        row = next(csv.reader([line.decode("utf-8")]), [])
        if row and (value := cell_value(row[column])) in wanted:
            found.setdefault(value, []).append(number)
    return found


def duplicate_keys_message(found: dict[str, list[int]]) -> tuple[str, int]:
    """Why a file listing each key of ``found`` on several lines was refused, and its first
    repeated line."""
    repeats = sorted((lines[1], lines[0], key) for key, lines in found.items() if len(lines) > 1)
    shown = "; ".join(
        f"line {again}: store_id {key!r} is already on line {first}"
        for again, first, key in repeats[:ERRORS_SHOWN]
    )
    return f"the file was not imported: {shown} (a store has one time zone)", repeats[0][0]


def _bad(mask: pd.Series, why: str) -> Problems:
    return [(int(n), why) for n in mask[mask].index]


def _store_ids(frame: pd.DataFrame) -> Problems:
    return _bad(
        (frame["store_id"] == "") | (frame["store_id"].str.len() > STORE_ID_LENGTH),
        "store_id is empty or too long",
    )


def _validate_store_status(frame: pd.DataFrame) -> Problems:
    frame["status"] = frame["status"].str.lower()
    stamps = frame["timestamp_utc"].str.removesuffix(" UTC").str.removesuffix("Z")
    parsed = pd.to_datetime(stamps, utc=True, format="ISO8601", errors="coerce")
    frame["timestamp_utc"] = parsed
    problems = _store_ids(frame)
    problems += _bad(
        ~frame["status"].isin(["active", "inactive"]), "status must be active or inactive"
    )
    problems += _bad(
        parsed.isna(), "timestamp_utc is not a time like 2023-01-22 12:09:39.388884 UTC"
    )
    return sorted(problems)


def _validate_business_hours(frame: pd.DataFrame) -> Problems:
    day = pd.to_numeric(frame["day_of_week"], errors="coerce")
    frame["day_of_week"] = day.fillna(-1).astype(int)  # bad days are reported below
    problems = _store_ids(frame) + _bad(~day.isin(range(7)), "day must be 0 (Monday) to 6")
    for column in ("start_time_local", "end_time_local"):
        times = pd.to_datetime(frame[column], format="mixed", errors="coerce")
        bad = times.isna() | ~frame[column].str.fullmatch(r"\d{1,2}:\d{2}(:\d{2}(\.\d{1,6})?)?")
        problems += _bad(bad, f"{column} is not a time like 09:30:00")
        frame[column] = times.dt.strftime("%H:%M:%S.%f")
    return sorted(problems)


def _validate_timezones(frame: pd.DataFrame) -> Problems:
    from zoneinfo import available_timezones

    known = available_timezones()
    return sorted(
        _store_ids(frame)
        + _bad(~frame["timezone_str"].isin(known), "timezone_str is not an IANA time zone")
    )


_VALIDATORS: dict[ImportTable, Callable[[pd.DataFrame], Problems]] = {
    ImportTable.STORE_STATUS: _validate_store_status,
    ImportTable.BUSINESS_HOURS: _validate_business_hours,
    ImportTable.TIMEZONES: _validate_timezones,
}
