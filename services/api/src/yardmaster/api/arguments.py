"""Query-string arguments read strictly, so no odd value reaches the database."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

from flask import Flask, Response, request, url_for

from yardmaster.api.problems import problem

#: Query arguments that may be given more than once, by endpoint (the filters of GET /jobs).
REPEATABLE: Final = {"jobs.list_jobs": frozenset({"state", "kind"})}

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


def whole_number_arg(name: str, default: int) -> int:
    """The query argument ``name`` as a whole number from 1 to :data:`MAX_WHOLE`, ``default``
    when absent; ValueError naming it when it is anything else."""
    raw = request.args.get(name)
    if raw is None:
        return default
    value = whole_number(raw)
    if value is None:
        raise ValueError(f"{name} must be a whole number from 1 to {MAX_WHOLE}, not {raw!r}")
    return value


def page_link(endpoint: str, page: int, per_page: int) -> str:
    """The URL of another page of this listing, with the request's other arguments kept."""
    args = request.args.to_dict(flat=False)
    args.update(page=[str(page)], per_page=[str(per_page)])
    return f"{url_for(endpoint)}?{urlencode(args, doseq=True)}"


def refuse_repeated_arguments() -> Response | None:
    """400 for a query argument given twice that takes one value (``?owner=1&owner=2``):
    answering for one of them would be a guess."""
    repeatable = REPEATABLE.get(request.endpoint or "", frozenset())
    for name, values in request.args.lists():
        if len(values) > 1 and name not in repeatable:
            return problem(400, "Bad Request", f"{name} may be given once, not {len(values)} times")
    return None


def register(app: Flask) -> None:
    """Check every request's query arguments before its view runs."""
    app.before_request(refuse_repeated_arguments)
