"""An import file's lines become rows of the table's columns by line number, or are refused
with the first bad line and a plain reason (never a parser's or a database's words)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yardmaster.report_worker.core.csv_rows import read_frame, read_rows
from yardmaster.report_worker.core.import_rows import (
    duplicate_keys_message,
    lines_holding,
    parse_chunk,
)
from yardmaster.report_worker.errors import BadInputError, TaskError
from yardmaster.shared.imports import ImportTable, map_columns

HEADER = ["store_id", "status", "timestamp_utc"]
COLUMNS = map_columns(ImportTable.STORE_STATUS, HEADER)
POLL = b"4711,active,2023-01-22 12:09:39.388884 UTC\n"


def parse(*lines: bytes, first_line: int = 2) -> dict[str, list[object]]:
    frame = parse_chunk(ImportTable.STORE_STATUS, HEADER, list(lines), COLUMNS, first_line)
    return {"line": frame.index.tolist(), "store_id": frame["store_id"].tolist()}


def refusal(*lines: bytes, first_line: int = 2) -> BadInputError:
    with pytest.raises(BadInputError) as caught:
        parse(*lines, first_line=first_line)
    return caught.value


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (
            b'4711,"active,2023-01-22 12:09:39 UTC\n',
            "line 3: a quoted field is not closed on its line",
        ),
        (b'"4711"x,active,2023-01-22 12:09:39 UTC\n', "line 3: text after the closing quote"),
        (b"4711,active,2023-01-22 12:09:39 UTC,x\n", "line 3: 4 fields, expected 3"),
        (b"4711,active\n", "line 3: 2 fields, expected 3"),
        (b"4711\n", "line 3: 1 field, expected 3"),
        (
            b"caf\xe9,active,2023-01-22 12:09:39 UTC\n",
            "line 3: not UTF-8 text (byte 0xe9 at position 4)",
        ),
        (b"47\x0011,active,2023-01-22 12:09:39 UTC\n", "line 3: holds a NUL character"),
        (b"4711,act\rive,2023-01-22 12:09:39 UTC\n", "line 3: a carriage return inside a field"),
        (b"4711,maybe,2023-01-22 12:09:39 UTC\n", "line 3: status must be active or inactive"),
    ],
)
def test_a_bad_line_is_refused_by_number_with_a_plain_reason(bad: bytes, reason: str) -> None:
    error = refusal(POLL, bad, POLL)

    assert reason in str(error)
    assert error.line == 3
    assert isinstance(error, TaskError)  # the runner fails the job at once, no retry


def test_a_quote_left_open_is_blamed_on_its_own_line_not_where_the_parser_gave_up() -> None:
    error = refusal(POLL, b'4711,"active,2023-01-22 12:09:39 UTC\n', *[POLL] * 50)

    assert str(error) == "line 3: a quoted field is not closed on its line"


def test_line_numbers_count_from_the_chunks_first_line_and_skip_blank_lines() -> None:
    assert parse(POLL, b"\n", b"\r\n", POLL.replace(b"\n", b"\r\n"), first_line=5001) == {
        "line": [5001, 5004],
        "store_id": ["4711", "4711"],
    }


def test_cells_are_read_back_from_their_spreadsheet_safe_form() -> None:
    rows = parse(
        b"'=1+2,active,2023-01-22 12:09:39 UTC\n",
        b"''x,active,2023-01-22 12:09:39 UTC\n",
        b"'plain,active,2023-01-22 12:09:39 UTC\n",
        b'"\'=HYPERLINK(""http://x/"",""y"")",active,2023-01-22 12:09:39 UTC\n',
        b"=raw,active,2023-01-22 12:09:39 UTC\n",
    )

    assert rows["store_id"] == ["=1+2", "'x", "'plain", '=HYPERLINK("http://x/","y")', "=raw"]


def test_the_lines_of_a_repeated_key_are_found_and_named() -> None:
    lines = [b"store_id,timezone_str\n", b"a,UTC\n", b"'=b,UTC\n", b"c,UTC\n", b"=b,UTC\n"]

    found = lines_holding(lines, 0, ["=b", "c"])

    assert found == {"=b": [3, 5], "c": [4]}
    assert duplicate_keys_message(found) == (
        "the file was not imported: line 5: store_id '=b' is already on line 3"
        " (a store has one time zone)",
        5,
    )


FIELD = st.text(
    st.characters(blacklist_characters='",\r\n', blacklist_categories=("Cs",), min_codepoint=1)
)


@given(st.lists(st.tuples(FIELD, FIELD, FIELD) | st.just(()), max_size=30))
def test_the_fast_reading_of_lines_without_quotes_is_the_csv_modules(
    rows: list[tuple[str, ...]],
) -> None:
    lines = [",".join(row) + "\n" for row in rows]

    fast = read_frame(lines, 2, 3)
    numbers, exact = read_rows(lines, 2, 3)

    assert fast.index.tolist() == numbers
    assert fast.to_numpy().tolist() == exact


def test_a_line_of_spaces_is_a_line_with_one_field_not_a_blank_line() -> None:
    assert "line 3: 1 field, expected 3" in str(refusal(POLL, b"   \n"))


def test_a_header_may_repeat_a_column_the_table_does_not_use() -> None:
    header = [*HEADER, "note", "note"]
    line = POLL.replace(b"\n", b",a,b\n")

    frame = parse_chunk(ImportTable.STORE_STATUS, header, [line], COLUMNS, 2)

    assert frame["store_id"].tolist() == ["4711"]
