"""The spreadsheet-safe cell escape: no written cell starts a formula, and reading undoes
writing exactly, for any text (hypothesis) and for whole columns (vectorised)."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from yardmaster.report_worker.core.cell_escape import (
    FORMULA_TRIGGERS,
    escape_cell,
    escape_text,
    escape_text_columns,
    unescape_cell,
    unescape_text,
)

#: Text that starts with what matters most: triggers, quotes, or neither.
TEXT = st.one_of(
    st.text(),
    st.builds(
        lambda first, rest: first + rest,
        st.sampled_from([*FORMULA_TRIGGERS, "'", "''", "'=", "a", " ", '"']),
        st.text(),
    ),
)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (
            '=HYPERLINK("http://evil.example/?x","click")',
            '\'=HYPERLINK("http://evil.example/?x","click")',
        ),
        ("=1+2", "'=1+2"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'quoted", "''quoted"),
        ("'=x", "''=x"),
        ("plain", "plain"),
        ("8419537941919820732", "8419537941919820732"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_a_cell_that_a_spreadsheet_would_evaluate_gets_one_quote_in_front(
    value: str, written: str
) -> None:
    assert escape_cell(value) == written
    assert unescape_cell(written) == value


@pytest.mark.parametrize(
    ("cell", "read"),
    [
        ("'plain", "'plain"),  # a quote before an ordinary character is data
        ("'", "'"),
        ("''", "'"),
        ("'''", "''"),
        ("=1+2", "=1+2"),  # an unescaped formula is data too (imports take it as it is)
    ],
)
def test_reading_removes_only_the_quote_that_writing_adds(cell: str, read: str) -> None:
    assert unescape_cell(cell) == read


@given(TEXT)
def test_reading_a_written_cell_gives_back_exactly_what_was_written(value: str) -> None:
    assert unescape_cell(escape_cell(value)) == value


@given(TEXT)
def test_no_written_cell_begins_with_a_formula_trigger(value: str) -> None:
    assert escape_cell(value)[:1] not in FORMULA_TRIGGERS


@given(TEXT)
def test_writing_changes_a_cell_at_most_by_one_leading_quote(value: str) -> None:
    assert escape_cell(value) in (value, "'" + value)


@given(st.lists(TEXT))
def test_the_vectorised_column_escape_is_the_cell_escape(values: list[str]) -> None:
    column = pd.Series(values, dtype=object)

    written = escape_text(column)

    assert written.tolist() == [escape_cell(v) for v in values]
    assert unescape_text(written).tolist() == values
    assert column.tolist() == values  # the input column is left as it was


@given(st.lists(TEXT))
def test_a_written_cell_survives_a_csv_file_unchanged(values: list[str]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([escape_cell(v)] for v in values)

    rows = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))

    assert [unescape_cell(row[0]) if row else "" for row in rows] == values


def test_only_text_columns_are_escaped_numbers_stay_numbers() -> None:
    frame = pd.DataFrame(
        {
            "store_id": ["=1+2", "-7", "ok"],
            "uptime": [-3.5, 1.0, 2.25],
            "count": [-1, 0, 1],
            "mixed": pd.Series([-2, "@x", None], dtype=object),
            "missing": pd.Series(["+x", None, pd.NA], dtype="string"),
        }
    )

    written = escape_text_columns(frame)

    assert written["store_id"].tolist() == ["'=1+2", "'-7", "ok"]
    assert written["uptime"].tolist() == [-3.5, 1.0, 2.25]
    assert written["count"].tolist() == [-1, 0, 1]
    assert written["mixed"].tolist() == [-2, "'@x", None]
    assert written["missing"].tolist()[0] == "'+x"
    assert written["missing"].isna().tolist() == [False, True, True]
    assert written.to_csv(index=False).splitlines()[1].startswith("'=1+2,-3.5,-1,-2,'+x")
    assert frame["store_id"].tolist() == ["=1+2", "-7", "ok"]
