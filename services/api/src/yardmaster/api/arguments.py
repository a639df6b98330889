"""Query-string arguments read strictly, so no odd value reaches the database."""

from __future__ import annotations

from typing import Final

#: The largest whole number a query argument may hold: a page number or an id (INTEGER).
MAX_WHOLE: Final = 2**31 - 1


def whole_number(raw: str, low: int = 1, high: int = MAX_WHOLE) -> int | None:
    """``raw`` as a whole number from ``low`` to ``high``, or None if it is not one.

    Only ASCII digits count (``int`` would also take other scripts' digits, and
    ``str.isdigit`` superscripts that ``int`` refuses); overlong values are refused before
    they are converted (a page number past 2**63 rows made the database driver fail).
    """
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(high)):
        return None
    value = int(raw)
    return value if low <= value <= high else None
