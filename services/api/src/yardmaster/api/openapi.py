"""The API's OpenAPI 3.1 description, generated from the code by spectree: ``/openapi.json``,
and interactive docs at ``/docs`` (Swagger UI shipped inside the package: no CDN).

Views are documented, not wrapped: :func:`document` runs spectree's ``validate`` decorator
only to record the models, then copies what it recorded onto the view and returns the view
itself. So the views keep checking their own input and answering problem documents, and
streams and file downloads pass through untouched.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final, TypeVar

from flask import Flask, Response, current_app, jsonify
from pydantic import BaseModel, ConfigDict, Field
from spectree import Response as SpecResponse
from spectree import SecurityScheme, SecuritySchemeData, SpecTree, Tag
from spectree.utils import parse_code

from yardmaster.api.contentpolicy import html_answer, page_policy
from yardmaster.api.policy import Need, need_of
from yardmaster.api.problems import PROBLEM_MEDIA_TYPE

V = TypeVar("V", bound=Callable[..., Any])
SPEC_KEY = "yardmaster.openapi"
PATH_PARAMETER = re.compile(r"\{[^}/]+\}")
#: A ``<style>`` Swagger UI's script adds as it runs (its logo's), allowed by hash as well.
CREATED_STYLE = re.compile(r'createElement\("style",null,"([^"\\]*)"\)')

#: What the HTTP server (gunicorn) refuses before the API sees the request, as problem
#: documents too (``serving.write_problem``; limits in ``gunicorn_conf.py``).
SERVER_ANSWERS: Final = {
    414: "URI Too Long: a request line over 8,190 bytes (answered by the HTTP server)",
    431: "Request Header Fields Too Large: a header line over 8,190 bytes, or over 100 "
    "headers (answered by the HTTP server)",
}
#: A body that is no JSON model: media type -> JSON schema of the body.
Media = Mapping[str, dict[str, Any]]
TEXT: Final = {"type": "string"}
CSV: Final[Media] = {"text/csv": TEXT}
RESULT_FILE: Final[Media] = {"text/csv": TEXT, "application/json": {}}
EVENT_STREAM: Final[Media] = {"text/event-stream": TEXT}
HTML: Final[Media] = {"text/html": TEXT}
SVG: Final[Media] = {"image/svg+xml": TEXT}
PROMETHEUS: Final[Media] = {"text/plain": TEXT}
DATABASE_BUSY: Final = (
    "Service Unavailable: the database stayed busy (another process holds its lock) or "
    "unreachable past YARDMASTER_DATABASE_BUSY_TIMEOUT; try again after Retry-After seconds"
)
RETRY_AFTER: Final = {
    "Retry-After": {"description": "seconds to wait before trying again", "schema": TEXT}
}
#: Operations of these tags read or write the database, so may answer :data:`DATABASE_BUSY`.
DATABASE_TAGS: Final = frozenset({"jobs", "reports", "data", "files", "directory"})


class Problem(BaseModel):
    """An RFC 9457 problem document: how the API answers every error (members may be added)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "about:blank",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "no job 8d0c",
                }
            ]
        },
    )

    type: str = Field("about:blank", description="about:blank: the title is the status's phrase")
    title: str = Field(description="the HTTP status phrase")
    status: int = Field(ge=400, le=599, description="the HTTP status code")
    detail: str | None = Field(None, description="what went wrong, for a person to read")


#: The security of an operation by what the access policy says it needs.
SECURITY: Final[dict[Need, list[dict[str, list[str]]]]] = {
    Need.TOKEN: [{"bearerAuth": []}],
    Need.ADMIN: [{"bearerAuth": ["admin"]}],
    Need.ADMIN_ALWAYS: [{"bearerAuth": ["admin"]}],
}
SECURITY_SCHEMES: Final = {
    "bearerAuth": {"type": "http", "scheme": "bearer"},
    "signedUrl": {
        "type": "apiKey",
        "in": "query",
        "name": "signature",
        "description": "a GET URL signed by POST /signed-urls: short-lived, for that path only",
    },
}
#: A GET request may be authorised by a signed URL instead (EventSource, download links).
SIGNED_URL: Final[dict[str, list[str]]] = {"signedUrl": []}

DESCRIPTION: Final = """\
Yardmaster runs, watches and controls long jobs (store uptime reports, CSV imports and
exports, simulated work), ingests timed files with scaled workers, and serves a fair turn queue.

**Errors** are RFC 9457 problem documents (`application/problem+json`).

**Access.** When the server is configured with `YARDMASTER_API_TOKENS`, every endpoint that
changes something and every job or report read needs `Authorization: Bearer <token>`. A GET
that cannot send the header (a download link, an `EventSource`) uses a short-lived signed URL
from `POST /signed-urls` instead; a token in the query string (`?access_token=`) is refused
with 400 everywhere. A customer's token sees and controls only that customer's jobs (others
answer 404); endpoints marked with the `admin` role need the admin token (a customer token
gets 403). Without the setting the API runs open and ignores tokens.
"""

TAGS: Final = {
    "health": "Liveness, readiness and the live processes",
    "jobs": "Long-running jobs: list, watch, pause, resume, stop, fetch the result",
    "reports": "Store uptime reports",
    "data": "CSV imports and exports of store data",
    "files": "The file ingestion pipeline",
    "directory": "Sites and their customers",
    "queue": "The fair turn queue",
    "service": "About the service itself",
}


def _version() -> str:
    try:
        return version("yardmaster-api")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


SPEC: Final = SpecTree(
    "flask",
    title="Yardmaster API",
    version=_version(),
    description=DESCRIPTION,
    path="docs",
    mode="strict",  # only documented views: an undocumented endpoint is missing from the spec
    annotations=False,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    security_schemes=[
        SecurityScheme(name=name, data=SecuritySchemeData.parse_obj(data))
        for name, data in SECURITY_SCHEMES.items()
    ],
    validation_error_status=400,
    validation_error_model=Problem,
)


class Responses(SpecResponse):
    """spectree's responses, each under its real media type: problem documents as
    ``application/problem+json``, files and streams as their own types, with links."""

    def __init__(
        self,
        models: Mapping[int, type[BaseModel] | None],
        media: Mapping[int, Media],
        links: Mapping[int, dict[str, Any]],
    ) -> None:
        super().__init__(**{f"HTTP_{code}": model for code, model in models.items()})
        self.media = media
        self.links = links

    def generate_spec(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        spec: dict[str, Any] = super().generate_spec(*args, **kwargs)
        for code, model in self.code_models.items():
            if model is Problem:
                content = spec[parse_code(code)]["content"]
                content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
        for status, media in self.media.items():
            entry = spec.setdefault(str(status), {"description": HTTPStatus(status).phrase})
            contents = entry.setdefault("content", {})
            contents.update({kind: {"schema": schema} for kind, schema in media.items()})
        for status, links in self.links.items():
            spec[str(status)]["links"] = links
        return spec


def document(
    *,
    ok: Mapping[int, type[BaseModel] | None],
    errors: Iterable[int] = (),
    media: Mapping[int, Media] | None = None,
    query: type[BaseModel] | None = None,
    json: type[BaseModel] | None = None,
    form: type[BaseModel] | None = None,
    tags: Sequence[str] = (),
    links: Mapping[int, dict[str, Any]] | None = None,
) -> Callable[[V], V]:
    """Describe a view in the OpenAPI document without changing what it does.

    ``ok``: each success status and its JSON model (None: no JSON body); ``media``: bodies
    of other types by status; ``errors``: statuses answered with a problem document;
    ``links``: OpenAPI links by status. Who may call it (and so 401 and 403) comes from the
    access policy when the document is served. Every operation may answer 400: a query
    argument given twice that takes one value is refused everywhere (``arguments.py``).
    """
    problems = {*errors, 400}
    models: dict[int, type[BaseModel] | None] = {**dict.fromkeys(sorted(problems), Problem)}
    models.update(ok)
    responses = Responses(models, media or {}, links or {})

    def decorate(view: V) -> V:
        recorder = SPEC.validate(
            query=query,
            json=json,
            form=form,
            resp=responses,
            tags=[Tag(name=tag, description=TAGS[tag]) for tag in tags],
            skip_validation=True,
        )(view)
        recorded = {k: v for k, v in vars(recorder).items() if k != "__wrapped__"}
        view.__dict__.update(recorded)
        return view

    return decorate


def _links(value: str, parameter: str, targets: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """OpenAPI links passing ``value`` (a runtime expression) as ``parameter`` to each target
    (name -> (method, path)); they let clients, and the fuzzer, follow a created resource."""
    return {
        name: {
            "operationRef": "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method,
            "parameters": {parameter: value},
        }
        for name, (method, path) in targets.items()
    }


def job_links(value: str) -> dict[str, Any]:
    """Links from an answer naming a job (``value``) to reading and controlling it."""
    return _links(
        value,
        "job_id",
        {
            "GetJob": ("get", "/jobs/{job_id}"),
            "ControlJob": ("post", "/jobs/{job_id}/{action}"),
            "GetJobResult": ("get", "/jobs/{job_id}/result"),
        },
    )


def report_links(value: str) -> dict[str, Any]:
    """Links from a started report (``value``: its id) to its status and its job."""
    return {
        **_links(value, "report_id", {"GetReport": ("get", "/get_report")}),
        **_links(value, "job_id", {"GetJob": ("get", "/jobs/{job_id}")}),
    }


def site_links(value: str) -> dict[str, Any]:
    """Links from a created site (``value``: its id) to reading, changing and deleting it."""
    path = "/sites/{site_id}"
    methods = {"GetSite": "get", "PutSite": "put", "PatchSite": "patch", "DeleteSite": "delete"}
    return _links(value, "site_id", {name: (m, path) for name, m in methods.items()})


def customer_links(value: str) -> dict[str, Any]:
    """Links from a created customer (``value``: its id) to reading, changing, deleting it."""
    path = "/customers/{customer_id}"
    methods = {
        "GetCustomer": "get",
        "PutCustomer": "put",
        "PatchCustomer": "patch",
        "DeleteCustomer": "delete",
    }
    return _links(value, "customer_id", {name: (m, path) for name, m in methods.items()})


@functools.cache
def _docs_page() -> tuple[str, str]:
    """Swagger UI's page and its Content-Security-Policy: its inline scripts and style are
    allowed by their hashes (computed once, from the page as the package ships it)."""
    template: str = SPEC.config.page_templates["swagger"]
    html = template.format(
        spec_url="/openapi.json", spec_path="docs", **SPEC.config.swagger_oauth2_config()
    )
    return html, page_policy(html, created_styles=CREATED_STYLE.findall(html))


def with_access(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with each operation's security, and its 401 and 403 answers, as the access
    policy decides for its method and path (path parameters stand in as ``1``)."""
    spec = copy.deepcopy(spec)
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{Problem.__name__}"}}}
    for path, operations in spec["paths"].items():
        sample = PATH_PARAMETER.sub("1", path)
        for method, operation in operations.items():
            need = need_of(method.upper(), sample)
            if need is Need.OPEN:
                operation["security"] = []
                continue
            security = list(SECURITY[need])
            if method == "get":
                security.append(SIGNED_URL)
            operation["security"] = security
            for status in (401, 403):
                answer = {"description": HTTPStatus(status).phrase, "content": problem}
                operation["responses"].setdefault(str(status), answer)
    return spec


def with_server_answers(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with what the HTTP server (gunicorn) answers before the API sees a request
    (:data:`SERVER_ANSWERS`), problem documents like every other error."""
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{Problem.__name__}"}}}
    for operations in spec["paths"].values():
        for operation in operations.values():
            for status, description in SERVER_ANSWERS.items():
                answer = {"description": description, "content": problem}
                operation["responses"].setdefault(str(status), answer)
    return spec


def with_database_answers(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with the 503 every operation kept in the database may answer (the tags of
    :data:`DATABASE_TAGS`): the database stayed busy or unreachable past
    ``YARDMASTER_DATABASE_BUSY_TIMEOUT`` (``problems.py`` answers it for every view)."""
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{Problem.__name__}"}}}
    busy = {"description": DATABASE_BUSY, "headers": RETRY_AFTER, "content": problem}
    for operations in spec["paths"].values():
        for operation in operations.values():
            if DATABASE_TAGS.intersection(operation.get("tags", ())):
                operation["responses"].setdefault("503", busy)
    return spec


def _document_of(app: Flask) -> dict[str, Any]:
    spec = app.extensions.get(SPEC_KEY)
    if spec is None:
        spec = app.extensions[SPEC_KEY] = with_database_answers(
            with_server_answers(with_access(SPEC.spec))
        )
    assert isinstance(spec, dict)
    return spec


def openapi_json() -> Response:
    """The OpenAPI 3.1 document of this API."""
    return jsonify(_document_of(current_app))


def docs() -> Response:
    """Swagger UI on ``/openapi.json``, with its scripts and styles inlined (no CDN)."""
    return html_answer(*_docs_page())


def register(app: Flask) -> None:
    """Serve ``/openapi.json`` and ``/docs`` (both open to anyone)."""
    app.add_url_rule("/openapi.json", "openapi_json", openapi_json)
    app.add_url_rule("/docs", "openapi_docs", docs)
