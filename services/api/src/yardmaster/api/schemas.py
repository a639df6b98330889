"""The shapes of the API's requests and answers, as pydantic models for the OpenAPI document.

The views build their JSON themselves and check their own input; these models describe it.
Answers allow members not listed here (clients must ignore what they do not know); request
bodies list every member the view accepts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from yardmaster.api.arguments import MAX_WHOLE
from yardmaster.shared.imports import ImportMode, ImportTable
from yardmaster.shared.jobs import Action, JobKind, JobState
from yardmaster.shared.scheduling import MAX_EXECUTION_SECONDS
from yardmaster.shared.turnqueue.core import ReleaseOutcome

Instant = Annotated[str, Field(description="ISO 8601, UTC, such as 2023-01-25T18:13:22Z")]
Id = Annotated[int, Field(ge=1, le=MAX_WHOLE)]
Page = Annotated[int, Field(ge=1, le=MAX_WHOLE, description="from 1")]
PerPage = Annotated[int, Field(ge=1, le=MAX_WHOLE, description="1 to 200 (more is read as 200)")]

# --- Health -----------------------------------------------------------------------------


class Alive(BaseModel):
    status: Literal["ok"]


class Check(BaseModel):
    ok: bool
    error: str | None = None
    revision: str | None = None
    state: Literal["busy"] | None = Field(
        None,
        description="busy: the database answers, but another transaction holds the lock "
        "writes need; requests that write may answer 503 with Retry-After meanwhile",
    )
    detail: str | None = None


class Ready(BaseModel):
    status: Literal["ready"]
    checks: dict[str, Check]


class ProcessRecord(BaseModel):
    """One live Yardmaster process, from its heartbeat (services add their own details)."""

    service: str
    instance: str
    host: str
    pid: int
    started_at: float = Field(description="Unix time")
    beat_at: float = Field(description="Unix time of the latest heartbeat")


class Processes(BaseModel):
    services: dict[str, list[ProcessRecord]]


# --- Jobs -------------------------------------------------------------------------------


class Progress(BaseModel):
    fraction: float
    message: str
    done: int
    total: int | None


class ResultFile(BaseModel):
    name: str | None
    type: str | None


class Job(BaseModel):
    """A job: what it is, where it is in its life, how far it got, and where to act on it."""

    id: str
    kind: JobKind
    owner: str | None = Field(description="the customer id, for jobs of a customer")
    site: str | None
    state: JobState
    state_version: int = Field(description="grows with every state change (the ETag)")
    allowed_actions: list[Action]
    params: dict[str, Any]
    progress: Progress
    customer_id: int | None
    site_id: int | None
    job_class: int | None
    volume_tier: str | None
    activity_tier: str | None
    queue: str
    priority: int
    promotions: int
    preemptions: int
    enqueued_at: Instant | None
    attempt: int
    max_attempts: int
    failures: int
    error: str | None
    result: ResultFile | None
    created_at: Instant
    started_at: Instant | None
    finished_at: Instant | None
    updated_at: Instant
    links: dict[str, str]


class HistoryEntry(BaseModel):
    """One change of a job's state; the first entry is its creation (``from`` null)."""

    model_config = ConfigDict(populate_by_name=True)

    state: JobState
    from_: JobState | None = Field(alias="from", description="the state left; null at creation")
    at: Instant
    reason: str | None = Field(
        description="why or by whom, when known: pause requested, worker rw-1 claimed it, ..."
    )


class JobDetail(Job):
    """A job as ``GET /jobs/<id>`` gives it: with its history of states, oldest first."""

    history: list[HistoryEntry]


class JobPage(BaseModel):
    items: list[Job]
    total: int
    page: int
    per_page: int
    pages: int
    next: str | None = Field(description="the next page's URL, or null on the last page")


class JobList(BaseModel):
    jobs: list[Job]


class JobsQuery(BaseModel):
    """Filters of ``GET /jobs``; ``state`` and ``kind`` may be repeated
    (``state=queued&state=running``)."""

    state: list[JobState] | None = None
    kind: list[JobKind] | None = None
    owner: str | None = Field(None, description="a customer id")
    page: Page = 1
    per_page: PerPage = 50


class JobEventsQuery(BaseModel):
    job: str | None = Field(None, description="only this job's events")


class WorkItem(BaseModel):
    """Simulated work of ``execution_time`` seconds, optionally for a customer of a site."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"dependentRequired": {"customer": ["site"], "site": ["customer"]}},
    )

    execution_time: float = Field(
        gt=0, le=MAX_EXECUTION_SECONDS, description="seconds of work; its class decides the queue"
    )
    customer: int | None = Field(None, description="a customer id (with site)")
    site: int | None = Field(None, description="the customer's site id (with customer)")


class WorkBody(RootModel[WorkItem | Annotated[list[WorkItem], Field(min_length=1)]]):
    """One piece of work, or a list of them (all accepted, or none)."""


class WorkCreated(RootModel[Job | JobList]):
    """The job, or (for a list) every job."""


# --- Reports and data -------------------------------------------------------------------


class ReportStarted(BaseModel):
    report_id: str
    status: Literal["Running"]
    job: str = Field(description="URL of the report's job")


class ReportProgress(BaseModel):
    fraction: float
    message: str


class ReportRunning(BaseModel):
    status: Literal["Running"]
    state: JobState
    progress: ReportProgress


class ReportEnded(BaseModel):
    status: Literal["Failed", "Stopped"]
    error: str | None


class ReportComplete(BaseModel):
    status: Literal["Complete"]
    rows: int
    csv_url: str


class ReportStatus(RootModel[ReportRunning | ReportEnded | ReportComplete]):
    """How the report is doing (the CSV itself unless JSON is asked for, once complete)."""


class ReportQuery(BaseModel):
    report_id: str = Field(min_length=1, description="what /trigger_report returned")


class ImportForm(BaseModel):
    """A CSV upload (multipart/form-data)."""

    file: bytes = Field(description="the CSV file, UTF-8, with a header row")
    table: ImportTable
    mode: ImportMode = ImportMode.REPLACE


class ExportBody(BaseModel):
    """The polls to export: ISO 8601 dates or times, UTC unless a zone is given."""

    from_: str = Field(alias="from", examples=["2023-01-18"])
    till: str = Field(examples=["2023-01-25T00:00:00Z"])


# --- Files ------------------------------------------------------------------------------


class LedgerFile(BaseModel):
    bucket: str
    name: str
    state: Literal["loaded", "done", "quarantined"]
    worker: str | None
    minutes: float | None
    rows: int
    error: str | None
    started_at: Instant | None
    finished_at: Instant | None
    attempts: int | None = Field(description="claims so far (null when Redis is unreachable)")


class FilePage(BaseModel):
    items: list[LedgerFile]
    total: int
    page: int
    per_page: int


class ArrivingFile(BaseModel):
    name: str


class ArrivingFiles(BaseModel):
    items: list[ArrivingFile] = Field(description="the oldest 100 files no worker has loaded")
    total: int
    bucket_visible: bool = Field(description="false when the bucket is not mounted here")


class FilesQuery(BaseModel):
    state: Literal["loaded", "done", "quarantined"] | None = None
    worker: str | None = None
    page: Page = 1


class Workers(BaseModel):
    workers: list[ProcessRecord]


# --- Directory --------------------------------------------------------------------------


class Site(BaseModel):
    id: int
    name: str
    domain: str
    url: str
    description: str
    created_at: Instant
    updated_at: Instant
    active_records: int
    volume_tier: str
    links: dict[str, str]


class Customer(BaseModel):
    id: int
    site_id: int
    name: str
    email: str
    phone: str
    address: str
    country: str
    state: str
    city: str
    pincode: str
    dob: str | None
    is_active: bool
    created_at: Instant
    updated_at: Instant
    queued_jobs: int
    activity_tier: str
    volume_tier: str
    links: dict[str, str]


class SitePage(BaseModel):
    items: list[Site]
    total: int
    page: int
    per_page: int
    pages: int
    next: str | None


class CustomerPage(BaseModel):
    items: list[Customer]
    total: int
    page: int
    per_page: int
    pages: int
    next: str | None


class SiteList(BaseModel):
    items: list[Site]


class CustomerList(BaseModel):
    items: list[Customer]


class SitesCreated(RootModel[Site | SiteList]):
    """The site, or (for a list) every site."""


class CustomersCreated(RootModel[Customer | CustomerList]):
    """The customer, or (for a list) every customer."""


def one_or_many(model: type[BaseModel], name: str) -> type[BaseModel]:
    """A body holding one ``model`` object, or a non-empty list of them (all or none)."""
    root = RootModel[model | Annotated[list[model], Field(min_length=1)]]  # type: ignore[valid-type]
    doc = f"One {model.__name__}, or a list of them (all created, or none)."
    return type(name, (root,), {"__doc__": doc, "__module__": __name__})


class PageQuery(BaseModel):
    page: Page = 1
    per_page: PerPage = 50


class CustomersQuery(PageQuery):
    site_id: Id | None = None
    active: Literal["true", "false"] | None = None


# --- Turn queue -------------------------------------------------------------------------


class QueueToken(BaseModel):
    token: str = Field(description="a letter and two digits, like A07 (public)")
    claim: str = Field(
        description="the secret that proves this turn is yours (256 random bits), shown only "
        "to you: send it with the token to redeem and release"
    )
    ticket: int = Field(description="this issue's public sequence number (grants nothing)")
    position: int = Field(description="1 at the head")
    status: Literal["ok"]


class TurnBody(BaseModel):
    """The token and its claim, as a form or as JSON (never in the URL)."""

    token: str = Field(examples=["A07"])
    claim: str = Field(
        description="the claim the token came with (missing: 403; wrong: 403 and a strike, "
        "the fifth bans)"
    )
    ticket: Any = Field(None, description="ignored: a ticket grants nothing")


class Redeemed(BaseModel):
    status: Literal["success"]
    image_url: str
    view_until: float | None = Field(description="Unix time the viewing window ends")


class Released(BaseModel):
    status: Literal[ReleaseOutcome.RELEASED, ReleaseOutcome.NOT_VIEWING]


class QueueSnapshot(BaseModel):
    waiting: list[str] = Field(description="tokens, head first")
    head_deadline: float | None
    viewer: str | None
    view_until: float | None
    last_event_id: int


# --- The service ------------------------------------------------------------------------


class Index(BaseModel):
    """What this service is and where to go next (API clients asking ``/`` for JSON)."""

    service: str
    links: dict[str, str]


class WhoAmI(BaseModel):
    access: Literal["open", "tokens"] = Field(description="tokens: YARDMASTER_API_TOKENS is set")
    principal: str | None = Field(description="admin or customer-<id>; null without a token")


class SignedUrlBody(BaseModel):
    path: str = Field(
        max_length=2048,
        pattern=r'^/([!"$-.0-~][!"$-~]*)?$',  # as signing.checked_target: printable, no #
        description="a path and query on this server to GET, percent-encoded, such as "
        "/jobs/<id>/result or /jobs/events?job=<id>",
        examples=["/jobs/events"],
    )


class SignedUrl(BaseModel):
    url: str = Field(
        description="the path and query plus a signature argument: GET it with no header, "
        "until it expires (when the API runs open, the path as given)"
    )
    expires_at: Instant | None = Field(description="null when the API runs open")
    expires_in: float | None = Field(description="seconds from now; null when the API runs open")
