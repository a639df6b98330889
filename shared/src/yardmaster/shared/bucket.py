"""The bucket contract between the simulator and the file workers: which names are files."""

from __future__ import annotations

import re
from collections.abc import Iterable

#: A scheduled file is named for its 15-minute slot: ``2018_06_28_02_15.txt``.
FILE_NAME_PATTERN = re.compile(r"^\d{4}_\d{2}_\d{2}_\d{2}_\d{2}\.txt$")


def is_bucket_file(name: str) -> bool:
    """True for a name a file worker must process (anything else is ignored)."""
    return FILE_NAME_PATTERN.fullmatch(name) is not None


def oldest_first(names: Iterable[str]) -> list[str]:
    """The bucket files among ``names``, oldest slot first (names sort by time)."""
    return sorted(name for name in names if is_bucket_file(name))


def partial_name(name: str) -> str:
    """Where a writer puts ``name`` while writing it: outside the pattern, so never claimed."""
    return f".{name}.partial"
