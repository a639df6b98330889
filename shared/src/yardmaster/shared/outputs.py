"""Where a job's outputs live, and how the partial outputs of an unfinished job are discarded.

Shared because both the API (stopping a paused job) and the workers (stopping a running
one, or cleaning up after a killed one) must remove exactly the same things.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import Connection, Table, delete

from yardmaster.shared.models import StagedBusinessHours, StagedTimezone

#: Where imports stage their rows until the whole file is good (imports into
#: ``store_status`` write into it, hidden until published; the sweeper deletes what they leave).
STAGING_TABLES: tuple[Table, ...] = tuple(
    model.__table__  # type: ignore[misc]
    for model in (StagedBusinessHours, StagedTimezone)
)


def result_dir(files_dir: Path, job_id: str) -> Path:
    """The folder of one job's result and partial outputs."""
    return files_dir / "results" / job_id


def upload_path(files_dir: Path, job_id: str) -> Path:
    """Where the API keeps the file uploaded for an import job."""
    return files_dir / "uploads" / f"{job_id}.csv"


def discard_partial_outputs(connection: Connection, files_dir: Path, job_id: str) -> None:
    """Delete whatever an unfinished job left: staged import rows (in the caller's
    transaction), its upload and its result folder. Missing pieces are fine."""
    for staging in STAGING_TABLES:
        connection.execute(delete(staging).where(staging.c.job_id == job_id))
    upload_path(files_dir, job_id).unlink(missing_ok=True)
    shutil.rmtree(result_dir(files_dir, job_id), ignore_errors=True)
