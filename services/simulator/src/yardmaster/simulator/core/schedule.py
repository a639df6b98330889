"""The simulator's schedule: which file appears when (pure: values in, values out)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass

from yardmaster.shared.bucket import is_bucket_file

#: The provider drops one file every 15 simulated minutes.
SLOT_MINUTES = 15
NAME_FORMAT = "%Y_%m_%d_%H_%M.txt"


class ScheduleError(ValueError):
    """A schedule file that cannot be used."""


@dataclass(frozen=True)
class ScheduledFile:
    """One file of the schedule: its name and how long it takes to process, in minutes."""

    name: str
    processing_minutes: float


@dataclass(frozen=True)
class Release:
    """A file and the moment, in real seconds after the simulator starts, it is written."""

    at_seconds: float
    file: ScheduledFile


def parse_schedule(text: str) -> list[ScheduledFile]:
    """Parse a ``filename,processing_minutes`` CSV; raise :class:`ScheduleError` on bad rows."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"filename", "processing_minutes"} - set(reader.fieldnames or ())
    if missing:
        raise ScheduleError(f"schedule lacks column(s): {', '.join(sorted(missing))}")
    files = [_parse_row(row, line) for line, row in enumerate(reader, start=2)]
    if not files:
        raise ScheduleError("schedule has no files")
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise ScheduleError("schedule names a file twice")
    return files


def _parse_row(row: dict[str, str], line: int) -> ScheduledFile:
    name = (row["filename"] or "").strip()
    if not is_bucket_file(name):
        raise ScheduleError(f"line {line}: {name!r} is not a name like 2018_06_28_02_15.txt")
    try:
        minutes = float(row["processing_minutes"])
    except (TypeError, ValueError):
        raise ScheduleError(f"line {line}: processing_minutes is not a number") from None
    if not minutes >= 0:
        raise ScheduleError(f"line {line}: processing_minutes must be 0 or more")
    return ScheduledFile(name, minutes)


def releases(
    files: list[ScheduledFile], seconds_in_min: float, days: int | None = 1
) -> Iterator[Release]:
    """When each file is written: file k after (k+1)·15 simulated minutes, like the original.

    With ``days`` > 1 (or ``None``: forever) the schedule repeats, each repetition named
    for the following day (``2018_06_29_00_00.txt`` after ``2018_06_28_23_45.txt``).
    """
    repetitions = itertools.count() if days is None else range(days)
    k = 0
    for day in repetitions:
        for file in files:
            k += 1
            yield Release(k * SLOT_MINUTES * seconds_in_min, shifted_by_days(file, day))


def shifted_by_days(file: ScheduledFile, days: int) -> ScheduledFile:
    """The same file, named for the slot ``days`` later."""
    if days == 0:
        return file
    slot = dt.datetime.strptime(file.name, NAME_FORMAT) + dt.timedelta(days=days)
    return ScheduledFile(slot.strftime(NAME_FORMAT), file.processing_minutes)


def file_content(file: ScheduledFile, stores: list[str] | None = None, seed: int = 0) -> str:
    """A file's content: its processing time in minutes on the first line, full precision.

    With ``stores``, the following lines are JSON store polls within the file's 15-minute slot
    (about 0.7 polls per store per hour, mostly active), deterministic for a given ``seed``.
    """
    head = f"{file.processing_minutes!r}\n"
    if not stores:
        return head
    rng = random.Random(f"{seed}:{file.name}")
    slot = dt.datetime.strptime(file.name, NAME_FORMAT)
    lines = []
    for store in stores:
        if rng.random() < 0.7 / 4:
            at = slot + dt.timedelta(seconds=rng.uniform(0, SLOT_MINUTES * 60))
            status = "active" if rng.random() < 0.95 else "inactive"
            lines.append(
                json.dumps(
                    {
                        "store_id": store,
                        "status": status,
                        "timestamp_utc": f"{at:%Y-%m-%d %H:%M:%S.%f} UTC",
                    }
                )
            )
    return head + "".join(line + "\n" for line in lines)
