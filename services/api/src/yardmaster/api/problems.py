"""Errors as RFC 9457 problem documents (``application/problem+json``)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> Response:
    """A problem document response; ``extra`` members are added as they are."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)


def _from_http_exception(exc: HTTPException) -> Response:
    response = problem(exc.code or 500, exc.name, exc.description)
    for header, value in exc.get_headers():
        if header.lower() not in ("content-type", "content-length"):
            response.headers[header] = value
    return response


def _from_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error: %s", exc)
    return _from_http_exception(InternalServerError())


def register(app: Flask) -> None:
    """Answer every error of ``app`` with a problem document, never an HTML page."""
    app.register_error_handler(HTTPException, _from_http_exception)
    app.register_error_handler(Exception, _from_unexpected)
