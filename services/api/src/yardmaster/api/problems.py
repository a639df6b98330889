"""Errors as RFC 9457 problem documents (``application/problem+json``), of a bounded size.

A problem document may quote the request (a field name, a value that was refused); it never
quotes much of it: each text is cut at :data:`MAX_TEXT` characters, each list at
:data:`MAX_ITEMS` items (a cut list ``x`` is followed by ``x_total``, its full length), and a
document still over :data:`MAX_BYTES` keeps only its standard members. So a refused
half-megabyte request is answered in a few KiB, never in more than it sent.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from typing import Any

import psycopg
from flask import Flask, Response, current_app, json
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, InternalServerError

from yardmaster.shared.outage import classify, describe

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: At most one log line per this many seconds about requests refused for a database outage.
OUTAGE_LOG_INTERVAL_SECONDS = 10.0
#: The longest text a problem document carries (its detail, a field name, a message).
MAX_TEXT = 500
#: The most items of any list in a problem document (such as ``errors``).
MAX_ITEMS = 20
#: The largest problem document; past it only type, title, status and detail are kept.
MAX_BYTES = 16 * 1024
_outage_logged_at = -math.inf


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> Response:
    """A problem document response; ``extra`` members are added, all of them bounded (see
    the module's description)."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = bounded(detail)
    for name, value in extra.items():
        body[name] = bounded(value)
        if isinstance(value, list | tuple) and len(value) > MAX_ITEMS:
            body[f"{name}_total"] = len(value)
    text = json.dumps(body)
    if len(text) > MAX_BYTES:
        text = json.dumps({k: body[k] for k in ("type", "title", "status", "detail") if k in body})
    return Response(text, status=status, mimetype=PROBLEM_MEDIA_TYPE)


def bounded(value: Any) -> Any:
    """``value`` with every text cut at :data:`MAX_TEXT` characters (saying how much more
    there was) and every list or mapping at :data:`MAX_ITEMS` items, however deep."""
    if isinstance(value, str):
        if len(value) <= MAX_TEXT:
            return value
        return f"{value[:MAX_TEXT]}… ({len(value) - MAX_TEXT} more characters)"
    if isinstance(value, list | tuple):
        return [bounded(item) for item in value[:MAX_ITEMS]]
    if isinstance(value, dict):
        return {bounded(str(k)): bounded(v) for k, v in list(value.items())[:MAX_ITEMS]}
    return value


def _from_http_exception(exc: HTTPException) -> Response:
    response = problem(exc.code or 500, exc.name, exc.description)
    for header, value in exc.get_headers():
        if header.lower() not in ("content-type", "content-length"):
            response.headers[header] = value
    return response


def _from_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error: %s", exc)
    return _from_http_exception(InternalServerError())


def _from_database_error(exc: Exception) -> Response:
    """503 with ``Retry-After`` for a database that stayed busy or unreachable past
    ``YARDMASTER_DATABASE_BUSY_TIMEOUT`` (the engine's bound on every wait); else a 500."""
    outage = classify(exc)
    if outage is None:
        return _from_unexpected(exc)
    global _outage_logged_at
    if time.monotonic() - _outage_logged_at >= OUTAGE_LOG_INTERVAL_SECONDS:
        _outage_logged_at = time.monotonic()
        log.warning("database %s (%s): answering 503 meanwhile", outage, describe(exc))
    retry_after = max(1, math.ceil(current_app.config["SETTINGS"].database_busy_timeout))
    detail = f"the database is {outage} ({describe(exc)}); try again in {retry_after} s"
    response = problem(503, "Service Unavailable", detail, database=str(outage))
    response.headers["Retry-After"] = str(retry_after)
    return response


def register(app: Flask) -> None:
    """Answer every error of ``app`` with a problem document, never an HTML page; a busy or
    unreachable database with 503 and ``Retry-After``, from whichever view met it."""
    app.register_error_handler(HTTPException, _from_http_exception)
    app.register_error_handler(Exception, _from_unexpected)
    for error in (SQLAlchemyError, sqlite3.Error, psycopg.Error):
        app.register_error_handler(error, _from_database_error)
