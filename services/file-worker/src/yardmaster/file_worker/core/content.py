"""What a bucket file holds: processing minutes on the first line, then JSON store polls.

A file that is empty or whose first line is not a number is "not ready yet" (the original
simulator writes in place, so a reader can see it half-written), never an error that consumes it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field


class NotReadyError(ValueError):
    """The file is empty or half-written: try again later."""


class BadFileError(ValueError):
    """The file is complete but unusable: quarantine it with this reason."""


@dataclass(frozen=True)
class Poll:
    """One store poll carried by a file."""

    store_id: str
    status: str
    timestamp_utc: dt.datetime


@dataclass(frozen=True)
class FileContent:
    """A parsed bucket file."""

    minutes: float
    polls: list[Poll] = field(default_factory=list)


def parse(text: str) -> FileContent:
    """Parse a file's text; NotReadyError if incomplete, BadFileError if unusable."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise NotReadyError("empty")
    try:
        minutes = float(lines[0].strip())
    except ValueError:
        raise NotReadyError(f"first line is not a number: {lines[0][:40]!r}") from None
    if not math.isfinite(minutes) or minutes < 0:
        raise BadFileError(
            f"processing time must be a finite number of minutes >= 0, not {minutes}"
        )
    if len(lines) > 1 and not text.endswith("\n"):
        raise NotReadyError("the last line is not complete yet")
    return FileContent(
        minutes, [_poll(line, n) for n, line in enumerate(lines[1:], 2) if line.strip()]
    )


def _poll(line: str, number: int) -> Poll:
    try:
        record = json.loads(line)
        poll = Poll(
            str(record["store_id"]), str(record["status"]), _instant(record["timestamp_utc"])
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BadFileError(f"line {number} is not a store poll JSON object") from None
    if poll.status not in ("active", "inactive"):
        raise BadFileError(f"line {number}: status must be active or inactive")
    return poll


def _instant(text: str) -> dt.datetime:
    """``2023-01-25 10:00:00 UTC`` or ISO 8601, as an aware UTC datetime."""
    value = dt.datetime.fromisoformat(text.strip().removesuffix(" UTC").replace("Z", "+00:00"))
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
