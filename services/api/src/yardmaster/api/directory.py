"""Sites and their customers (user records) over HTTP: list, create (one, or many at once),
read, replace (PUT), update (PATCH) and delete.

Every write runs in one transaction: a bulk create makes every item or none. Checks that
depend on other rows (a site name taken, a customer's site missing, a site that still has
customers, a customer with unfinished jobs) run in that transaction before any write; a
concurrent change that slips between a check and the write trips a database constraint, and
the request is then decided once more, so it is answered as if it had come second.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, TypeVar

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)
from pydantic_core import ErrorDetails
from redis.exceptions import RedisError
from sqlalchemy import Connection, Select, false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest

from yardmaster.api import schemas
from yardmaster.api.arguments import page_link, whole_number_arg
from yardmaster.api.auth import current_principal
from yardmaster.api.live.revocation import announce_deactivated
from yardmaster.api.openapi import customer_links, document, site_links
from yardmaster.api.problems import problem
from yardmaster.api.resources import resources
from yardmaster.shared.directory import active_records, queued_jobs
from yardmaster.shared.holds import Holds, enqueue_released, park_held
from yardmaster.shared.jobs import JobState
from yardmaster.shared.jobstore import JobStore, utcnow
from yardmaster.shared.models import Customer, Job, Site
from yardmaster.shared.scheduling import activity_tier, volume_tier

blueprint = Blueprint("directory", __name__)

DEFAULT_PER_PAGE: Final = 50
MAX_PER_PAGE: Final = 200
#: The largest id an INTEGER column holds on every backend: larger ids are simply unknown.
MAX_ID: Final = 2**31 - 1
#: How many values one ``IN (...)`` query carries at most (SQLite limits bound parameters).
IN_CHUNK: Final = 500
#: States of a job that is not over yet: its customer cannot be deleted.
UNFINISHED_STATES: Final = tuple(state.value for state in JobState if not state.terminal)
#: Members of a representation that a client cannot set.
READ_ONLY: Final = frozenset(
    {
        "id",
        "created_at",
        "updated_at",
        "links",
        "active_records",
        "volume_tier",
        "queued_jobs",
        "activity_tier",
    }
)


# --- Refusals ---------------------------------------------------------------------------


class RefusedError(Exception):
    """A request answered with a problem document; raised so the transaction rolls back."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


@blueprint.errorhandler(RefusedError)
def _refused(exc: RefusedError) -> Response:
    return exc.response


@dataclass(frozen=True)
class FieldError:
    """One reason a body was refused: which item (bulk only), which field, and why."""

    index: int | None
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.index is not None:
            body = {"index": self.index, **body}
        return body

    def describe(self) -> str:
        where = f"item {self.index}: " if self.index is not None else ""
        return f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"


def bad_request(detail: str) -> RefusedError:
    return RefusedError(problem(400, "Bad Request", detail))


def invalid(errors: Sequence[FieldError]) -> RefusedError:
    """400 listing every error; the first one is the readable ``detail``."""
    ordered = sorted(errors, key=lambda e: -1 if e.index is None else e.index)
    return RefusedError(
        problem(400, "Bad Request", ordered[0].describe(), errors=[e.as_dict() for e in ordered])
    )


def not_found(what: str, ident: int) -> RefusedError:
    return RefusedError(problem(404, "Not Found", f"no {what} {ident}"))


# --- Validation -------------------------------------------------------------------------

EMAIL: Final = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
PHONE: Final = re.compile(r"[0-9 +()\-]*[0-9][0-9 +()\-]*")
URL: Final = re.compile(r"https?://\S+", re.IGNORECASE)
ISO_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _not_blank(value: str) -> str:
    if not value:
        raise ValueError("must not be blank")
    return value


def _email(value: str) -> str:
    if value and not EMAIL.fullmatch(value):
        raise ValueError("must look like an email address, such as name@example.com")
    return value


def _phone(value: str) -> str:
    if value and not PHONE.fullmatch(value):
        raise ValueError("may hold only digits, spaces, +, - and parentheses")
    return value


def _url(value: str) -> str:
    if value and not URL.fullmatch(value):
        raise ValueError("must start with http:// or https://")
    return value


def _date(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD, or null")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a date of the calendar") from None


def _not_future(value: dt.date | None) -> dt.date | None:
    if value is not None and value > utcnow().date():
        raise ValueError("must not be in the future")
    return value


Name = Annotated[StrictStr, Field(max_length=128), AfterValidator(_not_blank)]
Domain = Annotated[StrictStr, Field(max_length=255)]
Url = Annotated[StrictStr, Field(max_length=512), AfterValidator(_url)]
Text = StrictStr
SiteId = Annotated[StrictInt, Field(ge=1)]
Email = Annotated[StrictStr, Field(max_length=254), AfterValidator(_email)]
Phone = Annotated[StrictStr, Field(max_length=32), AfterValidator(_phone)]
Region = Annotated[StrictStr, Field(max_length=64)]
Pincode = Annotated[StrictStr, Field(max_length=16)]
Dob = Annotated[dt.date | None, BeforeValidator(_date), AfterValidator(_not_future)]


class _Input(BaseModel):
    """A request body: no unknown members; strings are trimmed of surrounding whitespace."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SitePatch(_Input):
    """The fields of a site, each optional (PATCH). Defaults are never validated or used."""

    name: Name = ""
    domain: Domain = ""
    url: Url = ""
    description: Text = ""


class SiteInput(SitePatch):
    """A whole site (POST, PUT): ``name`` required, the rest empty unless given."""

    name: Name


class CustomerPatch(_Input):
    """The fields of a customer, each optional (PATCH). Defaults are never validated or used."""

    site_id: SiteId = 0
    name: Name = ""
    email: Email = ""
    phone: Phone = ""
    address: Text = ""
    country: Region = ""
    state: Region = ""
    city: Region = ""
    pincode: Pincode = ""
    dob: Dob = None
    is_active: StrictBool = True


class CustomerInput(CustomerPatch):
    """A whole customer (POST, PUT): ``site_id`` and ``name`` required, the rest defaulted."""

    site_id: SiteId
    name: Name


M = TypeVar("M", bound=_Input)

MESSAGES: Final = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "bool_type": "must be true or false",
    "string_too_long": "must be at most {max_length} characters",
    "greater_than_equal": "must be at least {ge}",
}


def _message(error: ErrorDetails, model: type[_Input], entity: str) -> str:
    kind, context = error["type"], error.get("ctx") or {}
    field = str(error["loc"][0]) if error["loc"] else ""
    if kind == "extra_forbidden":
        if field in READ_ONLY:
            return "is read-only"
        return f"is not a field of a {entity}; the fields are {', '.join(model.model_fields)}"
    if kind == "value_error":
        return str(context.get("error", error["msg"]))
    template = MESSAGES.get(kind)
    return template.format(**context) if template else error["msg"]


def validate(
    model: type[M], data: Any, entity: str, index: int | None = None
) -> tuple[M | None, list[FieldError]]:
    """``data`` as a ``model``, or the reasons it is not one."""
    if not isinstance(data, dict):
        return None, [FieldError(index, None, f"expected a JSON object: the fields of a {entity}")]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, [
            FieldError(
                index,
                ".".join(str(part) for part in error["loc"]) or None,
                _message(error, model, entity),
            )
            for error in exc.errors()
        ]


def json_body() -> Any:
    """The request's JSON body, or a 400 for anything else."""
    if not request.is_json:
        raise bad_request("send a JSON body with the header Content-Type: application/json")
    try:
        return request.get_json()
    except BadRequest:
        raise bad_request("the body is empty or not valid JSON") from None


def given_fields(model: type[M], entity: str) -> dict[str, Any]:
    """The fields of a PUT (every field, defaults filled in) or PATCH (only those sent)."""
    body = json_body()
    if isinstance(body, list):
        raise bad_request(f"expected one JSON object: the fields of a {entity}")
    value, errors = validate(model, body, entity)
    if value is None:
        raise invalid(errors)
    return value.model_dump(exclude_unset=request.method == "PATCH")


def assign(row: Site | Customer, fields: dict[str, Any]) -> None:
    """Set ``fields`` on ``row``; ``updated_at`` moves only if something changed."""
    changed = {k: v for k, v in fields.items() if getattr(row, k) != v}
    for key, value in changed.items():
        setattr(row, key, value)
    if changed:
        row.updated_at = utcnow()


# --- Transactions -----------------------------------------------------------------------


def in_transaction(work: Callable[[Session], Response]) -> Response:
    """Run ``work`` in one transaction and commit. A constraint violation means a concurrent
    change came between ``work``'s checks and its writes: decide once more, seeing it."""
    for _ in range(2):
        try:
            with Session(resources().engine, expire_on_commit=False) as session, session.begin():
                return work(session)
        except IntegrityError as exc:
            current_app.logger.warning("constraint violated, deciding again: %s", exc.orig)
    return problem(409, "Conflict", "a concurrent change conflicted with this request; retry it")


def existing(session: Session, column: Any, values: Iterable[Any]) -> dict[Any, int]:
    """Which of ``values`` occur in ``column`` (of sites or customers), with their row's id."""
    wanted, found = sorted(set(values)), {}
    table = column.class_
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start : start + IN_CHUNK]
        rows = session.execute(select(column, table.id).where(column.in_(chunk)))
        found.update({value: ident for value, ident in rows})
    return found


def known_ids(ids: Iterable[int]) -> list[int]:
    """The ids that could exist (an INTEGER column holds no larger one)."""
    return [i for i in ids if 1 <= i <= MAX_ID]


# --- Representations --------------------------------------------------------------------


def _iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class Views:
    """Representations read on one connection; a site's record count is read once."""

    def __init__(self, session: Session) -> None:
        self.connection = session.connection()
        self._records: dict[int, int] = {}

    def records(self, site_id: int) -> int:
        if site_id not in self._records:
            self._records[site_id] = active_records(self.connection, site_id)
        return self._records[site_id]

    def site(self, site: Site) -> dict[str, Any]:
        records = self.records(site.id)
        return {
            "id": site.id,
            "name": site.name,
            "domain": site.domain,
            "url": site.url,
            "description": site.description,
            "created_at": _iso(site.created_at),
            "updated_at": _iso(site.updated_at),
            "active_records": records,
            "volume_tier": volume_tier(records).value,
            "links": {"self": f"/sites/{site.id}", "customers": f"/customers?site_id={site.id}"},
        }

    def customer(self, customer: Customer) -> dict[str, Any]:
        queued = queued_jobs(self.connection, customer.id)
        return {
            "id": customer.id,
            "site_id": customer.site_id,
            "name": customer.name,
            "email": customer.email,
            "phone": customer.phone,
            "address": customer.address,
            "country": customer.country,
            "state": customer.state,
            "city": customer.city,
            "pincode": customer.pincode,
            "dob": customer.dob.isoformat() if customer.dob is not None else None,
            "is_active": customer.is_active,
            "created_at": _iso(customer.created_at),
            "updated_at": _iso(customer.updated_at),
            "queued_jobs": queued,
            "activity_tier": activity_tier(queued).value,
            "volume_tier": volume_tier(self.records(customer.site_id)).value,
            "links": {
                "self": f"/customers/{customer.id}",
                "site": f"/sites/{customer.site_id}",
                "jobs": f"/jobs?owner={customer.id}",
            },
        }


def created(view: dict[str, Any], location: str) -> Response:
    response = jsonify(view)
    response.status_code = 201
    response.headers["Location"] = location
    return response


def created_many(views: list[dict[str, Any]]) -> Response:
    response = jsonify(items=views)
    response.status_code = 201
    return response


# --- Listing ----------------------------------------------------------------------------


def _positive_int(name: str, default: int) -> int:
    try:
        return whole_number_arg(name, default)
    except ValueError as exc:
        raise bad_request(str(exc)) from None


def pagination() -> tuple[int, int]:
    """``page`` (from 1) and ``per_page`` (1 to 200; more is read as 200)."""
    return _positive_int("page", 1), min(_positive_int("per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)


def listing(
    query: Select[Any],
    represent: Callable[[Views, Any], dict[str, Any]],
    endpoint: str,
) -> Response:
    """One page of ``query`` (ordered by id) in the body ``GET /jobs`` answers with."""
    page, per_page = pagination()
    with Session(resources().engine) as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.offset((page - 1) * per_page).limit(per_page)).all()
        views = Views(session)
        items = [represent(views, row) for row in rows]
    has_next = page * per_page < total
    body: dict[str, Any] = {
        "items": items,
        "total": total,
        "page": page,
        "per_page": per_page,
        "pages": max(1, math.ceil(total / per_page)),
        "next": page_link(endpoint, page + 1, per_page) if has_next else None,
    }
    return jsonify(body)


# --- Sites ------------------------------------------------------------------------------


def get_site_row(session: Session, site_id: int) -> Site:
    site = session.get(Site, site_id) if site_id <= MAX_ID else None
    if site is None:
        raise not_found("site", site_id)
    return site


def name_taken(name: str, site_id: int) -> str:
    return f"a site named {name!r} already exists (id {site_id})"


@blueprint.get("/sites")
@document(query=schemas.PageQuery, ok={200: schemas.SitePage}, errors=[400], tags=["directory"])
def list_sites() -> Response:
    """Sites by id, a page at a time."""
    return listing(select(Site).order_by(Site.id), Views.site, "directory.list_sites")


@blueprint.post("/sites")
@document(
    json=schemas.one_or_many(SiteInput, "SitesBody"),
    ok={201: schemas.SitesCreated},
    errors=[400, 409],
    tags=["directory"],
    links={201: site_links("$response.body#/id")},
)
def create_sites() -> Response:
    """One site (a JSON object) or several (a JSON list): all of them, or none."""
    body = json_body()
    if not isinstance(body, list):
        site, errors = validate(SiteInput, body, "site")
        if site is None:
            raise invalid(errors)
        return in_transaction(lambda session: _create_site(session, site))
    if not body:
        raise bad_request("the list is empty: give at least one site")
    checked = [validate(SiteInput, item, "site", index) for index, item in enumerate(body)]
    errors = [error for _, item_errors in checked for error in item_errors]
    return in_transaction(
        lambda session: _create_sites(session, [site for site, _ in checked], errors)
    )


def _new_site(fields: SiteInput) -> Site:
    now = utcnow()
    return Site(**fields.model_dump(), created_at=now, updated_at=now)


def _create_site(session: Session, fields: SiteInput) -> Response:
    if taken := existing(session, Site.name, [fields.name]):
        raise RefusedError(problem(409, "Conflict", name_taken(fields.name, taken[fields.name])))
    site = _new_site(fields)
    session.add(site)
    session.flush()
    return created(Views(session).site(site), url_for(".get_site", site_id=site.id))


def _create_sites(
    session: Session, sites: list[SiteInput | None], errors: list[FieldError]
) -> Response:
    errors = list(errors)  # this transaction may be run twice
    taken = existing(session, Site.name, [site.name for site in sites if site is not None])
    first_index: dict[str, int] = {}
    for index, site in enumerate(sites):
        if site is None:
            continue
        if site.name in taken:
            errors.append(FieldError(index, "name", name_taken(site.name, taken[site.name])))
        elif site.name in first_index:
            message = f"{site.name!r} is also the name of item {first_index[site.name]}"
            errors.append(FieldError(index, "name", message))
        else:
            first_index[site.name] = index
    if errors:
        raise invalid(errors)
    rows = [_new_site(site) for site in sites if site is not None]
    session.add_all(rows)
    session.flush()
    views = Views(session)
    return created_many([views.site(row) for row in rows])


@blueprint.get("/sites/<int:site_id>")
@document(ok={200: schemas.Site}, errors=[404], tags=["directory"])
def get_site(site_id: int) -> Response:
    """One site, with its active record count and volume tier."""
    with Session(resources().engine) as session:
        return jsonify(Views(session).site(get_site_row(session, site_id)))


@blueprint.route("/sites/<int:site_id>", methods=["PUT", "PATCH"])
@document(json=SitePatch, ok={200: schemas.Site}, errors=[400, 404, 409], tags=["directory"])
def update_site(site_id: int) -> Response:
    """PUT replaces every field (``name`` required); PATCH changes only the fields sent."""
    fields = given_fields(SiteInput if request.method == "PUT" else SitePatch, "site")

    def work(session: Session) -> Response:
        site = get_site_row(session, site_id)
        name = fields.get("name", site.name)
        if name != site.name and (taken := existing(session, Site.name, [name])):
            raise RefusedError(problem(409, "Conflict", name_taken(name, taken[name])))
        assign(site, fields)
        session.flush()
        return jsonify(Views(session).site(site))

    return in_transaction(work)


@blueprint.delete("/sites/<int:site_id>")
@document(ok={204: None}, errors=[404, 409], tags=["directory"])
def delete_site(site_id: int) -> Response:
    """Delete a site that has no customers left."""

    def work(session: Session) -> Response:
        site = get_site_row(session, site_id)
        count = session.scalar(
            select(func.count()).select_from(Customer).where(Customer.site_id == site_id)
        )
        if count:
            raise RefusedError(
                problem(
                    409,
                    "Conflict",
                    f"site {site_id} still has {count} customer(s): delete them or move them "
                    "to another site first",
                    customers=count,
                    links={"customers": f"/customers?site_id={site_id}"},
                )
            )
        session.delete(site)
        return Response(status=204)

    return in_transaction(work)


# --- Customers --------------------------------------------------------------------------


def get_customer_row(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id) if customer_id <= MAX_ID else None
    if customer is None:
        raise not_found("customer", customer_id)
    return customer


def no_site(index: int | None, site_id: int) -> FieldError:
    return FieldError(index, "site_id", f"there is no site {site_id}")


@blueprint.get("/customers")
@document(
    query=schemas.CustomersQuery,
    ok={200: schemas.CustomerPage},
    errors=[400],
    tags=["directory"],
)
def list_customers() -> Response:
    """Customers by id, a page at a time; filtered by ``site_id`` and ``active=true|false``."""
    query = select(Customer).order_by(Customer.id)
    if request.args.get("site_id") is not None:
        site_id = _positive_int("site_id", 0)
        query = query.where(Customer.site_id == site_id if site_id <= MAX_ID else false())
    active = request.args.get("active")
    if active is not None:
        if active not in ("true", "false"):
            raise bad_request(f"active must be true or false, not {active!r}")
        query = query.where(Customer.is_active.is_(active == "true"))
    return listing(query, Views.customer, "directory.list_customers")


@blueprint.post("/customers")
@document(
    json=schemas.one_or_many(CustomerInput, "CustomersBody"),
    ok={201: schemas.CustomersCreated},
    errors=[400, 409],
    tags=["directory"],
    links={201: customer_links("$response.body#/id")},
)
def create_customers() -> Response:
    """One customer (a JSON object) or several (a JSON list): all of them, or none."""
    body = json_body()
    if not isinstance(body, list):
        customer, errors = validate(CustomerInput, body, "customer")
        if customer is None:
            raise invalid(errors)
        return in_transaction(lambda session: _create_customers(session, [customer], [], False))
    if not body:
        raise bad_request("the list is empty: give at least one customer")
    checked = [validate(CustomerInput, item, "customer", index) for index, item in enumerate(body)]
    errors = [error for _, item_errors in checked for error in item_errors]
    customers = [customer for customer, _ in checked]
    return in_transaction(lambda session: _create_customers(session, customers, errors, True))


def _create_customers(
    session: Session, customers: list[CustomerInput | None], errors: list[FieldError], many: bool
) -> Response:
    errors = list(errors)  # this transaction may be run twice
    wanted = known_ids(c.site_id for c in customers if c is not None)
    sites = existing(session, Site.id, wanted)
    for index, customer in enumerate(customers):
        if customer is not None and customer.site_id not in sites:
            errors.append(no_site(index if many else None, customer.site_id))
    if errors:
        raise invalid(errors)
    now = utcnow()
    rows = [
        Customer(**customer.model_dump(), created_at=now, updated_at=now)
        for customer in customers
        if customer is not None
    ]
    session.add_all(rows)
    session.flush()
    views = Views(session)
    if many:
        return created_many([views.customer(row) for row in rows])
    location = url_for(".get_customer", customer_id=rows[0].id)
    return created(views.customer(rows[0]), location)


@blueprint.get("/customers/<int:customer_id>")
@document(ok={200: schemas.Customer}, errors=[404], tags=["directory"])
def get_customer(customer_id: int) -> Response:
    """One customer, with its queued jobs and tiers (a customer token: itself only)."""
    principal = current_principal()
    if principal is not None and principal.customer_id not in (None, customer_id):
        raise not_found("customer", customer_id)
    with Session(resources().engine) as session:
        return jsonify(Views(session).customer(get_customer_row(session, customer_id)))


@blueprint.route("/customers/<int:customer_id>", methods=["PUT", "PATCH"])
@document(
    json=CustomerPatch,
    ok={200: schemas.Customer},
    errors=[400, 404, 409],
    tags=["directory"],
)
def update_customer(customer_id: int) -> Response:
    """PUT replaces every field (``site_id``, ``name`` required); PATCH only those sent.

    Deactivating a customer (``is_active`` false) puts its waiting jobs on hold and refuses
    its token; reactivating it queues them again in their order."""
    fields = given_fields(CustomerInput if request.method == "PUT" else CustomerPatch, "customer")
    holds = Holds(JobStore(resources().engine))
    moved = ActivityChange()

    def work(session: Session) -> Response:
        customer = get_customer_row(session, customer_id)
        site_id = fields.get("site_id", customer.site_id)
        if site_id != customer.site_id and not existing(session, Site.id, known_ids([site_id])):
            raise invalid([no_site(None, site_id)])
        was_active = customer.is_active
        assign(customer, fields)
        session.flush()
        moved.follow(holds, session.connection(), customer, was_active)
        return jsonify(Views(session).customer(customer))

    response = in_transaction(work)
    if response.status_code == 200:  # committed
        moved.carry_out(holds.store)
    return response


@dataclass
class ActivityChange:
    """The jobs a change of a customer's ``is_active`` put on hold or released (its
    transaction does that); then, once committed, what Redis must learn of it."""

    held: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    deactivated: int | None = None  # the customer, when this change deactivated it

    def follow(
        self, holds: Holds, connection: Connection, customer: Customer, was_active: bool
    ) -> None:
        """Hold or release the customer's jobs in the transaction that changed it."""
        self.held, self.released, self.deactivated = [], [], None  # it may be run twice
        if was_active and not customer.is_active:
            self.held = holds.hold_waiting(connection, customer.id)
            self.deactivated = customer.id
        elif customer.is_active and not was_active:
            self.released = holds.release(connection, str(customer.id))

    def carry_out(self, store: JobStore) -> None:
        """End the deactivated customer's live streams; take held jobs' segments off the
        queues; enqueue released jobs in their order. Redis away: streams end when their
        relay is back, the reaper enqueues released jobs later, and held jobs' segments are
        skipped by the version they carry."""
        client = resources().redis
        if self.deactivated is not None:
            try:
                announce_deactivated(client, self.deactivated)
            except RedisError as exc:
                current_app.logger.warning("customer deactivated; streams not told (%s)", exc)
        try:
            park_held(store, client, self.held)
            enqueue_released(store, client, self.released)
        except RedisError as exc:
            current_app.logger.warning("customer jobs held or released; Redis not told (%s)", exc)


@blueprint.delete("/customers/<int:customer_id>")
@document(ok={204: None}, errors=[404, 409], tags=["directory"])
def delete_customer(customer_id: int) -> Response:
    """Delete a customer none of whose jobs is still queued, running or held."""

    def work(session: Session) -> Response:
        customer = get_customer_row(session, customer_id)
        unfinished = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.customer_id == customer_id, Job.state.in_(UNFINISHED_STATES))
        )
        if unfinished:
            raise RefusedError(
                problem(
                    409,
                    "Conflict",
                    f"customer {customer_id} has {unfinished} unfinished job(s): stop them or "
                    "wait for them to finish first",
                    unfinished_jobs=unfinished,
                    links={"jobs": f"/jobs?owner={customer_id}"},
                )
            )
        session.delete(customer)
        return Response(status=204)

    return in_transaction(work)
