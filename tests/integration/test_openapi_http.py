"""The OpenAPI document at ``/openapi.json`` and the docs at ``/docs``: valid OpenAPI 3.1,
every endpoint of the app described, errors as problem documents, security as the access
policy decides, and no asset fetched from another host."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from schemathesis.specs.openapi.definitions import OPENAPI_31

from yardmaster.api import create_app
from yardmaster.shared.settings import load_settings

#: Rules that serve the documentation itself or static files: not API operations.
NOT_OPERATIONS = re.compile(r"/openapi\.json|/docs|/static/.*")
IGNORED_METHODS = {"HEAD", "OPTIONS"}
WERKZEUG_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """The API behind access tokens (the document must stay open to anyone). Serving the
    document touches neither Redis nor the database, so none is connected."""
    settings = load_settings(
        {},
        data_dir=str(tmp_path_factory.mktemp("openapi")),
        api_tokens="admin=ym-admin-secret,customer-7=ym-c7-secret",
    )
    return create_app(settings)


@pytest.fixture(scope="module")
def spec(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]


def openapi_path(rule: str) -> str:
    """``/jobs/<job_id>/<any(pause, resume, stop):action>`` -> ``/jobs/{job_id}/{action}``."""
    return WERKZEUG_VARIABLE.sub(r"{\1}", rule)


def test_the_document_is_valid_openapi_3_1_with_valid_json_schemas(spec: dict[str, Any]) -> None:
    Draft202012Validator(OPENAPI_31).validate(spec)
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["title"] == "Yardmaster API"
    for name, schema in spec["components"]["schemas"].items():
        assert Draft202012Validator.check_schema(schema) is None, name


def test_every_endpoint_of_the_app_is_documented_and_nothing_else(
    app: Flask, spec: dict[str, Any]
) -> None:
    served = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if not NOT_OPERATIONS.fullmatch(rule.rule)
        for method in (rule.methods or set()) - IGNORED_METHODS
    }
    documented = {(path, method) for path, method, _ in operations(spec)}
    assert served - documented == set(), "endpoints without documentation: decorate them"
    assert documented - served == set(), "documented endpoints the app does not serve"


def test_every_operation_has_a_summary_and_documents_its_success(spec: dict[str, Any]) -> None:
    for path, method, operation in operations(spec):
        assert operation["summary"], (method, path)
        assert any(status.startswith("2") for status in operation["responses"]), (method, path)


def test_every_error_answer_is_a_problem_document_those_of_the_http_server_too(
    spec: dict[str, Any],
) -> None:
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for path, method, operation in operations(spec):
        assert {"414", "431"} <= set(operation["responses"]), (method, path)  # from gunicorn
        for status, answer in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert answer["content"] == {"application/problem+json": problem}, (
                    method,
                    path,
                    status,
                )


@pytest.mark.parametrize(
    ("method", "path", "media_type"),
    [
        ("get", "/jobs/events", "text/event-stream"),
        ("get", "/queue/events", "text/event-stream"),
        ("get", "/get_report", "text/csv"),
        ("get", "/jobs/{job_id}/result", "text/csv"),
        ("get", "/queue/", "text/html"),
        ("get", "/queue/images/{name}.svg", "image/svg+xml"),
        ("post", "/imports", None),
    ],
)
def test_streams_and_files_are_documented_with_their_own_media_types(
    spec: dict[str, Any], method: str, path: str, media_type: str | None
) -> None:
    operation = spec["paths"][path][method]
    if media_type is None:  # the upload: a multipart form with a binary file
        form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert form["$ref"] == "#/components/schemas/ImportForm"
        return
    success = next(a for s, a in operation["responses"].items() if s.startswith("2"))
    assert media_type in success["content"]


@pytest.mark.parametrize(
    ("method", "path", "security"),
    [
        ("get", "/healthz", []),
        ("get", "/whoami", []),
        ("post", "/queue/tokens", []),
        ("get", "/jobs", [{"bearerAuth": []}, {"signedUrl": []}]),
        ("get", "/customers", [{"bearerAuth": ["admin"]}, {"signedUrl": []}]),
        ("post", "/work", [{"bearerAuth": []}]),
        ("post", "/signed-urls", [{"bearerAuth": []}]),
        ("post", "/sites", [{"bearerAuth": ["admin"]}]),
        ("delete", "/queue/bans/{ip}", [{"bearerAuth": ["admin"]}]),
    ],
)
def test_security_follows_the_access_policy(
    spec: dict[str, Any], method: str, path: str, security: list[dict[str, list[str]]]
) -> None:
    operation = spec["paths"][path][method]
    assert operation["security"] == security
    if security:
        assert {"401", "403"} <= set(operation["responses"])
    assert set(spec["components"]["securitySchemes"]) == {"bearerAuth", "signedUrl"}
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }


def test_created_jobs_link_to_reading_and_controlling_them(spec: dict[str, Any]) -> None:
    links = spec["paths"]["/work"]["post"]["responses"]["202"]["links"]
    assert links["GetJob"] == {
        "operationRef": "#/paths/~1jobs~1{job_id}/get",
        "parameters": {"job_id": "$response.body#/id"},
    }
    for link in links.values():  # every link leads to a documented operation
        pointer = link["operationRef"].removeprefix("#/paths/")
        path, method = pointer.rsplit("/", 1)
        assert method in spec["paths"][path.replace("~1", "/").replace("~0", "~")]


def test_the_docs_are_open_and_fetch_nothing_from_another_host(app: Flask) -> None:
    client: FlaskClient = app.test_client()
    assert client.get("/openapi.json").status_code == 200  # no token given
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "url: '/openapi.json'" in page
    assert "SwaggerUIBundle" in page  # the bundle is inlined
    remote = re.findall(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//""", page)
    assert remote == []
