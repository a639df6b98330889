"""Store data in and out: ``POST /imports`` (CSV upload) and ``POST /exports`` (CSV of polls)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, request

from yardmaster.api import schemas
from yardmaster.api.auth import owner_scope
from yardmaster.api.jobs import accepted, create_job, settings
from yardmaster.api.openapi import document, job_links
from yardmaster.api.problems import problem
from yardmaster.shared import outputs
from yardmaster.shared.imports import HeaderError, ImportMode, ImportTable, map_columns, read_header
from yardmaster.shared.jobs import JobKind
from yardmaster.shared.jobstore import new_job_id

blueprint = Blueprint("data", __name__)


@blueprint.post("/imports")
@document(
    form=schemas.ImportForm,
    ok={202: schemas.Job},
    errors=[400, 413],
    tags=["data"],
    links={202: job_links("$response.body#/id")},
)
def create_import() -> Response:
    """Multipart ``file`` + ``table`` (+ ``mode`` replace|append): 202 with the import job."""
    try:
        table = _choice("table", ImportTable, None)
        mode = _choice("mode", ImportMode, ImportMode.REPLACE)
    except ValueError as exc:
        return problem(400, "Bad Request", str(exc))
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return problem(400, "Bad Request", "send the CSV as the multipart field 'file'")
    job_id = new_job_id()
    path = outputs.upload_path(settings().files, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    upload.save(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            map_columns(table, read_header(handle.readline()))
    except (HeaderError, UnicodeDecodeError) as exc:
        path.unlink(missing_ok=True)
        reason = str(exc) if isinstance(exc, HeaderError) else "the file is not UTF-8 text"
        return problem(400, "Bad Request", reason)
    params = {"table": table.value, "mode": mode.value, "file_name": upload.filename}
    try:
        job = create_job(JobKind.IMPORT, params, job_id=job_id)
    except BaseException:  # no job (a busy database: 503): no file left behind without one
        path.unlink(missing_ok=True)
        raise
    return accepted(job)


def _choice(name: str, enum: type[ImportTable] | type[ImportMode], default: Any) -> Any:
    raw = request.form.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ValueError(
                f"field '{name}' is required: one of {', '.join(e.value for e in enum)}"
            )
        return default
    try:
        return enum(raw)
    except ValueError:
        raise ValueError(
            f"field '{name}' must be one of {', '.join(e.value for e in enum)}, not {raw!r}"
        ) from None


@blueprint.post("/exports")
@document(
    json=schemas.ExportBody,
    ok={202: schemas.Job},
    errors=[400],
    tags=["data"],
    links={202: job_links("$response.body#/id")},
)
def create_export() -> Response:
    """``{"from": ..., "till": ...}`` (ISO dates or times, UTC unless a zone is given): 202."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return problem(
            400, "Bad Request", 'send JSON like {"from": "2023-01-18", "till": "2023-01-25"}'
        )
    try:
        start, end = _instant(body, "from"), _instant(body, "till")
    except ValueError as exc:
        return problem(400, "Bad Request", str(exc))
    if start >= end:
        return problem(400, "Bad Request", "'from' must be before 'till'")
    params = {"from": start.isoformat(), "till": end.isoformat()}
    return accepted(create_job(JobKind.EXPORT, params, owner=owner_scope()))


def _instant(body: dict[str, Any], name: str) -> dt.datetime:
    raw = body.get(name)
    if not isinstance(raw, str):
        raise ValueError(
            f"'{name}' is required: an ISO 8601 date or time such as 2023-01-18T00:00:00Z"
        )
    try:
        value = dt.datetime.fromisoformat(raw.strip().replace(" UTC", "Z"))
    except ValueError:
        raise ValueError(f"'{name}' is not an ISO 8601 date or time: {raw!r}") from None
    try:
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first instant there is
        raise ValueError(f"'{name}' is out of range: {raw!r}") from None
