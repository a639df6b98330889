"""The rows of a CSV chunk, each with its line number, or the first line that is not CSV.

A chunk is a run of whole lines of a file (as bytes, each ending in its newline), numbered
from ``first_line``. A line is bad input when it is not UTF-8, holds a NUL character, does
not parse as CSV (a quote that is not closed on its line, text after a closing quote), or has
another number of fields than the header. No cell spans lines: no column can hold a line
break, and a file is read a chunk of lines at a time. Blank lines are skipped.

Most chunks have no quote at all (the data set's files never do): their fields are counted
and split by pandas' C parser. A chunk with a quote, or one pandas reads otherwise than line
by line, is read by the :mod:`csv` module, one row at a time, which also finds the bad line.
"""

from __future__ import annotations

import csv
import io

import pandas as pd

from yardmaster.report_worker.errors import BadInputError


def decode_lines(lines: list[bytes], first_line: int) -> list[str]:
    """Each line as text; raises :class:`BadInputError` naming the first line that is not
    UTF-8 or holds a NUL character."""
    try:
        text = [line.decode("utf-8") for line in lines]
    except UnicodeDecodeError:
        for number, line in enumerate(lines, first_line):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = line[exc.start]
                raise BadInputError(
                    f"line {number}: not UTF-8 text (byte 0x{byte:02x} at position "
                    f"{exc.start + 1}); save the file as UTF-8",
                    number,
                ) from None
        raise  # not reached: one of the lines failed above
    for number, decoded in enumerate(text, first_line):
        if "\x00" in decoded:
            raise BadInputError(f"line {number}: holds a NUL character", number)
    return text


def read_frame(lines: list[str], first_line: int, fields: int) -> pd.DataFrame:
    """The ``fields`` fields of the non-blank ``lines`` as text columns 0, 1, ..., indexed by
    line number; raises :class:`BadInputError` naming the first malformed line."""
    # (pandas would also drop a byte order mark starting the chunk: here it is a cell's)
    plain = not any('"' in line for line in lines)
    if plain and not (lines and lines[0].startswith("\ufeff")):
        frame = _read_plain(lines, first_line, fields)
        if frame is not None:
            return frame
    numbers, rows = read_rows(lines, first_line, fields)
    cells = list(zip(*rows, strict=True)) if rows else [()] * fields
    index = pd.Index(numbers, dtype="int64")
    return pd.DataFrame(
        {i: pd.Series(cells[i], index=index, dtype="str") for i in range(fields)}, index=index
    )


def _read_plain(lines: list[str], first_line: int, fields: int) -> pd.DataFrame | None:
    """:func:`read_frame` of lines without quotes (fields are what the commas separate), or
    None when pandas does not read them one row per line (a carriage return inside a line)."""
    for at, line in enumerate(lines):
        if line.count(",") != fields - 1 and line.rstrip("\r\n"):
            number = first_line + at
            found = _fields(line.count(",") + 1)
            raise BadInputError(f"line {number}: {found}, expected {fields}", number)
    frame = pd.read_csv(
        io.StringIO("".join(lines)),
        header=None,
        names=range(fields),
        dtype=str,
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
    )
    if len(frame) == len(lines):
        frame.index = pd.RangeIndex(first_line, first_line + len(lines))
        return frame
    numbers = [first_line + at for at, line in enumerate(lines) if line.rstrip("\r\n")]
    if len(frame) != len(numbers):
        return None
    frame.index = pd.Index(numbers, dtype="int64")
    return frame


def read_rows(lines: list[str], first_line: int, fields: int) -> tuple[list[int], list[list[str]]]:
    """The line numbers and fields of the non-blank lines, each with exactly ``fields`` fields
    (the :mod:`csv` module's reading, row by row). Raises :class:`BadInputError` naming the
    first malformed line."""
    numbers: list[int] = []
    rows: list[list[str]] = []
    reader = csv.reader(lines, strict=True)
    line = first_line
    try:
        for row in reader:
            if reader.line_num != line - first_line + 1:  # the row ran on past its line
                raise BadInputError(_unclosed_quote(line), line)
            if row:
                if len(row) != fields:
                    raise BadInputError(
                        f"line {line}: {_fields(len(row))}, expected {fields}", line
                    )
                numbers.append(line)
                rows.append(row)
            line += 1
    except csv.Error as exc:
        raise BadInputError(_not_csv(line, lines[line - first_line], str(exc)), line) from None
    return numbers, rows


def _not_csv(line: int, text: str, error: str) -> str:
    """Why ``text`` (line ``line``) is not CSV, in plain words rather than the parser's."""
    if text.count('"') % 2:
        return _unclosed_quote(line)
    if error.startswith("new-line character"):
        return f"line {line}: a carriage return inside a field that is not quoted"
    if "expected after" in error:
        return f"line {line}: text after the closing quote of a field"
    return f"line {line}: not CSV ({error})"


def _unclosed_quote(line: int) -> str:
    return f"line {line}: a quoted field is not closed on its line"


def _fields(count: int) -> str:
    return "1 field" if count == 1 else f"{count} fields"
