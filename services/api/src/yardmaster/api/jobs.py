"""Jobs over HTTP: list, read, pause, resume, stop, fetch the result, create simulated work."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, cast

from flask import Blueprint, Response, current_app, jsonify, request, send_file, url_for
from redis.exceptions import RedisError
from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError

from yardmaster.api import schemas
from yardmaster.api.arguments import MAX_WHOLE, page_link, whole_number_arg
from yardmaster.api.auth import current_principal, may_see, owner_scope
from yardmaster.api.openapi import RESULT_FILE, document, job_links
from yardmaster.api.problems import problem
from yardmaster.api.resources import resources
from yardmaster.shared import outputs, scheduling
from yardmaster.shared.jobbus import (
    Control,
    cancel_segment,
    enqueue_segment,
    job_view,
    publish_job,
    send_control,
)
from yardmaster.shared.jobhistory import history_view
from yardmaster.shared.jobs import Action, Decision, JobKind, JobState, Outcome
from yardmaster.shared.jobstore import JobStore, Page
from yardmaster.shared.models import Customer, Job, Site
from yardmaster.shared.outage import is_transient
from yardmaster.shared.placement import place_new_job
from yardmaster.shared.preemption import make_room
from yardmaster.shared.settings import Settings

blueprint = Blueprint("jobs", __name__)

MAX_PER_PAGE = 200


def store() -> JobStore:
    return JobStore(resources().engine)


def settings() -> Settings:
    value = current_app.config["SETTINGS"]
    assert isinstance(value, Settings)
    return value


def not_found(job_id: str) -> Response:
    return problem(404, "Not Found", f"no job {job_id}")


def accepted(job: Job, status: int = 202, **extra: Any) -> Response:
    """The job's representation (with ``extra`` members), with where to follow it."""
    response = jsonify({**job_view(job), **extra})
    response.status_code = status
    response.headers["Location"] = url_for("jobs.get_job", job_id=job.id)
    response.headers["ETag"] = f'"{job.state_version}"'
    return response


@blueprint.get("/jobs")
@document(query=schemas.JobsQuery, ok={200: schemas.JobPage}, errors=[400], tags=["jobs"])
def list_jobs() -> Response:
    """Jobs, newest first, filtered by ``state`` and ``kind`` (repeatable) and ``owner``."""
    try:
        page = whole_number_arg("page", 1)
        per_page = min(whole_number_arg("per_page", 50), MAX_PER_PAGE)
        states = _choices("state", JobState)
        kinds = _choices("kind", JobKind)
    except ValueError as exc:
        return problem(400, "Bad Request", str(exc))
    found = _visible_listing(states, kinds, page, per_page)
    body: dict[str, Any] = {
        "items": [job_view(job) for job in found.jobs],
        "total": found.total,
        "page": found.page,
        "per_page": found.per_page,
        "pages": max(1, math.ceil(found.total / found.per_page)),
        "next": page_link("jobs.list_jobs", page + 1, per_page) if found.has_next else None,
    }
    return jsonify(body)


def _visible_listing(states: list[str], kinds: list[str], page: int, per_page: int) -> Page:
    """The listing the caller may see: a customer's own jobs only (another ``owner``: none)."""
    requested, mine = request.args.get("owner"), owner_scope()
    if mine is not None and requested not in (None, mine):
        return Page([], 0, page, per_page)
    owner = requested if mine is None else mine
    return store().listing(states=states, kinds=kinds, owner=owner, page=page, per_page=per_page)


def _choices(name: str, enum: type[JobState] | type[JobKind]) -> list[str]:
    """The values of a repeatable filter; each must be one of ``enum``'s (no empty value)."""
    values = request.args.getlist(name)
    known = {member.value for member in enum}
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValueError(f"unknown {name} {unknown[0]!r}; one of: {', '.join(sorted(known))}")
    return values


@blueprint.get("/jobs/<job_id>")
@document(ok={200: schemas.JobDetail}, errors=[404], tags=["jobs"])
def get_job(job_id: str) -> Response:
    """One job: state, progress, timestamps, links, and its history of states."""
    job = store().get(job_id)
    if job is None or not may_see(job):
        return not_found(job_id)
    return accepted(job, 200, history=history_view(store().history(job_id)))


@blueprint.post("/jobs/<job_id>/<any(pause, resume, stop):action>")
@document(ok={200: schemas.Job, 202: schemas.Job}, errors=[404, 409], tags=["jobs"])
def control_job(job_id: str, action: str) -> Response:
    """Pause, resume or stop a job, as the transition table decides."""
    seen = store().get(job_id)
    if seen is None or not may_see(seen):
        return not_found(job_id)
    principal = current_principal()
    applied = store().apply(job_id, Action(action), by=principal.name if principal else None)
    if applied is None:
        return not_found(job_id)
    decision, job = applied
    if decision.outcome is Outcome.ILLEGAL:
        return conflict(job, f"cannot {action} a job that is {job.state}", decision)
    if decision.outcome is Outcome.TRANSITION:
        job = after_transition(job, Action(action))
    return accepted(job, decision.status)


def conflict(job: Job, detail: str, decision: Decision | None = None) -> Response:
    """409 with what the job is and what it allows."""
    view = job_view(job)
    response = problem(
        409,
        "Conflict",
        detail,
        current_state=job.state,
        state_version=job.state_version,
        allowed_actions=view["allowed_actions"],
    )
    if decision is not None and decision.retry_after:
        response.headers["Retry-After"] = str(decision.retry_after)
    return response


def after_transition(job: Job, action: Action) -> Job:
    """Carry out what the new state needs in Redis and on disk; return the job as it is now."""
    client = resources().redis
    state = JobState(job.state)
    if state in (JobState.PAUSING, JobState.STOPPING):
        send_control(client, job.id, Control.CHECK)
    elif state is JobState.RESUMING:
        job_store = store()
        job_store.set_segment(job.id, enqueue_segment(client, job, at_front=True))
    elif state in (JobState.PAUSED, JobState.STOPPED):
        cancel_segment(client, job.segment)
        if state is JobState.STOPPED:
            with resources().engine.begin() as connection:
                outputs.discard_partial_outputs(connection, settings().files, job.id)
    publish_job(client, job)
    return store().get(job.id) or job


@blueprint.get("/jobs/<job_id>/result")
@document(ok={200: None}, media={200: RESULT_FILE}, errors=[404, 409, 410], tags=["jobs"])
def job_result(job_id: str) -> Response:
    """The finished job's result file, downloaded under its proper name."""
    job = store().get(job_id)
    if job is None or not may_see(job):
        return not_found(job_id)
    if job.state != JobState.FINISHED:
        detail = f"the job is {job.state}; its result exists once it is finished"
        if job.error:
            detail += f" (error: {job.error})"
        return conflict(job, detail)
    if not job.result_path:
        return problem(404, "Not Found", "this job finished without a result file")
    path = result_file(job.id, _file_name(job.result_path))
    if path is None:
        return problem(410, "Gone", "the result file no longer exists")
    return send_file(
        path, mimetype=job.result_type, as_attachment=True, download_name=job.result_name
    )


def result_file(job_id: str, name: str) -> Path | None:
    """The file ``name`` of the job's result folder, if it is a regular file inside it.

    Resolved first, so neither ``..`` nor a symbolic link can lead a download elsewhere.
    """
    folder = outputs.result_dir(settings().files, job_id).resolve()
    path = (folder / name).resolve()
    return path if path.parent == folder and path.is_file() else None


def _file_name(result_path: str) -> str:
    """The result's file name only: the path recorded by the worker is never trusted as is."""
    return result_path.replace("\\", "/").rsplit("/", 1)[-1]


@blueprint.post("/work")
@document(
    json=schemas.WorkBody,
    ok={202: schemas.WorkCreated},
    errors=[400],
    tags=["jobs"],
    links={202: job_links("$response.body#/id")},
)
def create_work() -> Response:
    """Simulated work: ``{"execution_time": seconds, "customer": id, "site": id}``, or a list
    of such objects (all accepted, or none). ``customer`` and ``site`` go together."""
    body = request.get_json(silent=True)
    items = body if isinstance(body, list) else [body]
    if not items:
        return problem(400, "Bad Request", "no jobs given")
    many = isinstance(body, list)
    items, refused = _for_caller(items)
    if refused is not None:
        return refused
    with resources().engine.connect() as connection:
        errors = [
            e for i, item in enumerate(items) if (e := _work_error(connection, item, i, many))
        ]
    if errors:
        return problem(400, "Bad Request", errors[0], errors=errors)
    valid = [cast(dict[str, Any], item) for item in items]
    jobs = [
        create_job(
            JobKind.WORK,
            {"execution_time": float(i["execution_time"])},
            customer_id=i.get("customer"),
            site_id=i.get("site"),
        )
        for i in valid
    ]
    if many:
        response = jsonify(jobs=[job_view(job) for job in jobs])
        response.status_code = 202
        return response
    return accepted(jobs[0])


def _for_caller(items: list[Any]) -> tuple[list[Any], Response | None]:
    """A customer's work is its own: ``customer`` and ``site`` are filled in when left out;
    naming another customer is 403."""
    principal = current_principal()
    if principal is None or principal.customer_id is None:
        return items, None
    own = principal.customer_id
    if any(isinstance(item, dict) and item.get("customer", own) != own for item in items):
        detail = f"this token submits work for its own customer ({own}) only"
        return items, problem(403, "Forbidden", detail)
    with resources().engine.connect() as connection:
        site = connection.scalar(select(Customer.site_id).where(Customer.id == own))
    if site is None:
        return items, problem(403, "Forbidden", f"customer {own} of this token does not exist")
    return [{"customer": own, "site": site, **i} if isinstance(i, dict) else i for i in items], None


def _work_error(connection: Connection, item: Any, index: int, many: bool) -> str | None:
    where = f"item {index}: " if many else ""
    if not isinstance(item, dict):
        return f'{where}expected a JSON object like {{"execution_time": 2.5}}'
    unknown = sorted(set(item) - {"execution_time", "customer", "site"})
    if unknown:
        return f"{where}unknown field(s): {', '.join(unknown)}"
    value = item.get("execution_time")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{where}execution_time must be a number of seconds"
    try:
        seconds = float(value)
    except OverflowError:  # an integer beyond every float: out of range as well
        seconds = math.inf
    try:
        scheduling.job_class(seconds)
    except ValueError as exc:
        return f"{where}{exc}"
    return _customer_error(connection, item.get("customer"), item.get("site"), where)


def _customer_error(connection: Connection, customer: Any, site: Any, where: str) -> str | None:
    """Why ``customer`` and ``site`` cannot be a job's owner, or None."""
    if customer is None and site is None:
        return None
    if customer is None or site is None:
        return f"{where}customer and site go together: give both or neither"
    for name, value in (("customer", customer), ("site", site)):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{where}{name} must be the id (a whole number) of an existing {name}"
        if not 1 <= value <= MAX_WHOLE:  # no such id; the database would refuse the value
            return f"{where}no {name} {value}"
    if connection.scalar(select(Site.id).where(Site.id == site)) is None:
        return f"{where}no site {site}"
    owner_site = connection.scalar(select(Customer.site_id).where(Customer.id == customer))
    if owner_site is None:
        return f"{where}no customer {customer}"
    if owner_site != site:
        return f"{where}customer {customer} belongs to site {owner_site}, not to site {site}"
    return None


def create_job(
    kind: JobKind,
    params: dict[str, Any],
    *,
    customer_id: int | None = None,
    site_id: int | None = None,
    job_id: str | None = None,
    owner: str | None = None,
) -> Job:
    """Record a queued job where the scheduling policy places it, then enqueue its first
    segment (a lost enqueue is redone by the reaper, so the job is never lost).

    ``owner`` (who may see and control it) is the customer's id when a customer is given."""
    job_store = store()
    with resources().engine.connect() as connection:
        placement = place_new_job(
            connection, kind, params, customer_id, site_id, settings().scheduling
        )
    job = job_store.create(
        kind,
        params,
        placement.queue,
        owner=owner if customer_id is None else str(customer_id),
        site=None if site_id is None else str(site_id),
        priority=placement.priority,
        job_id=job_id,
        customer_id=customer_id,
        site_id=site_id,
        job_class=placement.job_class,
        tiers=(placement.volume, placement.activity),
    )
    client = resources().redis
    try:
        job_store.set_segment(job.id, enqueue_segment(client, job))
    except RedisError:  # the job row is durable: the reaper enqueues its segment later
        current_app.logger.warning("job %s recorded; its segment will be enqueued later", job.id)
    except SQLAlchemyError as exc:
        if not is_transient(exc):
            raise
        # The job exists, so the request succeeds; a segment the reaper adds for it finds
        # the job claimed by this one (or this one finds it claimed) and is skipped.
        current_app.logger.warning("job %s recorded, its segment's id not (%s)", job.id, exc)
    publish_job(client, job)
    if settings().scheduling == "priority" and scheduling.urgent(placement):
        try:
            make_room(resources().engine, client, job)
        except RedisError as exc:  # it still runs first as soon as a worker frees
            current_app.logger.warning("job %s: no pre-emption (%s)", job.id, exc)
    try:
        return job_store.get(job.id) or job
    except SQLAlchemyError as exc:  # created all the same: answer with what was written
        if not is_transient(exc):
            raise
        return job
