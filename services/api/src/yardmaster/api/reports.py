"""The store report endpoints of the brief: ``POST /trigger_report`` and ``GET /get_report``.

A report is a job of kind report; these endpoints are a thin, brief-shaped view of it.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, send_file, url_for

from yardmaster.api import schemas
from yardmaster.api.auth import may_see, owner_scope
from yardmaster.api.jobs import create_job, result_file, store
from yardmaster.api.openapi import CSV, document, report_links
from yardmaster.api.problems import problem
from yardmaster.shared.jobs import JobKind, JobState

blueprint = Blueprint("reports", __name__)


@blueprint.post("/trigger_report")
@document(
    ok={202: schemas.ReportStarted},
    tags=["reports"],
    links={202: report_links("$response.body#/report_id")},
)
def trigger_report() -> Response:
    """Start computing a report over the current data: 202 ``{"report_id": ...}``."""
    job = create_job(JobKind.REPORT, {}, owner=owner_scope())
    response = jsonify(
        report_id=job.id, status="Running", job=url_for("jobs.get_job", job_id=job.id)
    )
    response.status_code = 202
    response.headers["Location"] = url_for("reports.get_report", report_id=job.id)
    return response


@blueprint.get("/get_report")
@document(
    query=schemas.ReportQuery,
    ok={200: schemas.ReportStatus},
    media={200: CSV},
    errors=[400, 404, 410],
    tags=["reports"],
)
def get_report() -> Response:
    """``Running`` (with progress), the CSV once complete, or ``Failed`` with the error."""
    report_id = request.args.get("report_id", "")
    if not report_id:
        return problem(400, "Bad Request", "give the report_id that /trigger_report returned")
    job = store().get(report_id)
    if job is None or job.kind != JobKind.REPORT or not may_see(job):
        return problem(404, "Not Found", f"no report {report_id}")
    state = JobState(job.state)
    if state is JobState.FAILED:
        return jsonify(status="Failed", error=job.error)
    if state is JobState.STOPPED:
        return jsonify(status="Stopped", error="the report was stopped before it completed")
    if state is not JobState.FINISHED:
        return jsonify(
            status="Running",
            state=job.state,
            progress={"fraction": job.progress_fraction, "message": job.progress_message},
        )
    path = result_file(job.id, "report.csv")
    if path is None:
        return problem(410, "Gone", "the report file no longer exists")
    if request.accept_mimetypes.best_match(["text/csv", "application/json"]) == "application/json":
        rows = max(0, sum(1 for _ in path.open(encoding="utf-8")) - 1)
        return jsonify(
            status="Complete", rows=rows, csv_url=url_for("jobs.job_result", job_id=job.id)
        )
    response = send_file(
        path, mimetype="text/csv", as_attachment=True, download_name=job.result_name or "report.csv"
    )
    response.headers["X-Report-Status"] = "Complete"
    return response
