"""Writing files into the bucket: atomically (temporary name, then rename) or in place."""

from __future__ import annotations

import os
from pathlib import Path

from yardmaster.shared.bucket import is_bucket_file, oldest_first, partial_name


class BucketNotEmptyError(RuntimeError):
    """The bucket already holds schedule files from an earlier run."""


def refuse_used_bucket(directory: Path) -> None:
    """Raise :class:`BucketNotEmptyError` if ``directory`` already holds schedule files."""
    if not directory.exists():
        return
    existing = sorted(p.name for p in directory.iterdir() if is_bucket_file(p.name))
    if existing:
        raise BucketNotEmptyError(
            f"{directory} already holds {len(existing)} schedule file(s) (first: {existing[0]}); "
            "use an empty directory, or move those files away"
        )


def newest_file(directory: Path) -> str | None:
    """The newest schedule file in ``directory`` (names sort by time), if any."""
    if not directory.exists():
        return None
    existing = oldest_first(p.name for p in directory.iterdir())
    return existing[-1] if existing else None


def write_atomically(directory: Path, name: str, content: str) -> Path:
    """Write ``content`` under a name outside the pattern, flush it to disk, then rename.

    A watcher sees the file only once it is complete.
    """
    final = directory / name
    partial = directory / partial_name(name)
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, final)
    return final


def write_in_place(directory: Path, name: str, content: str) -> Path:
    """Write like the original simulator: open the final name, write, close (for tests)."""
    final = directory / name
    with open(final, "w", encoding="utf-8") as handle:
        handle.write(content)
    return final
