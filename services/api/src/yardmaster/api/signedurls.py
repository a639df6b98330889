"""``POST /signed-urls``: a short-lived URL for a GET request that cannot send a token.

A download link or a browser's ``EventSource`` cannot send ``Authorization``. The caller, with
its token in that header, names the path and query it wants; the answer is that URL signed
for the caller (:mod:`yardmaster.api.signing`) until ``YARDMASTER_SIGNED_URL_SECONDS`` from
now. A path the caller may not read is refused here already (403), one that names nothing
to GET is 404; what the URL then reads is decided as for the caller's own requests (another
customer's job is still 404).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from urllib.parse import unquote

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from yardmaster.api import schemas
from yardmaster.api.auth import ACCESS_KEY, SIGNING_KEY, TOKENS_KEY, current_principal
from yardmaster.api.openapi import document
from yardmaster.api.policy import Access, need_of, refusal
from yardmaster.api.problems import problem
from yardmaster.api.signing import SIGNED_METHOD, TargetError, checked_target, sign

blueprint = Blueprint("signedurls", __name__)


@blueprint.post("/signed-urls")
@document(
    json=schemas.SignedUrlBody, ok={200: schemas.SignedUrl}, errors=[403, 404], tags=["service"]
)
def signed_url() -> Response:
    """A URL that GETs ``path`` as the caller, with no header, until it expires (a download
    link, an ``EventSource`` stream: a stream is checked when it connects). When the API runs
    open the answer is the path itself."""
    body = request.get_json(silent=True)
    target = body.get("path") if isinstance(body, dict) else None
    if not isinstance(target, str):
        return problem(400, "Bad Request", 'send {"path": "/the/path?and=query"} as JSON')
    try:
        path, _ = checked_target(target)
    except TargetError as exc:
        return problem(400, "Bad Request", str(exc))
    if not _routes_get(path):
        return problem(404, "Not Found", f"there is nothing to GET at {path}")
    access = Access(current_app.extensions[ACCESS_KEY])
    if access is Access.OPEN:
        return jsonify(url=target, expires_at=None, expires_in=None)
    principal = current_principal()
    denied = refusal(
        need_of(SIGNED_METHOD, unquote(path)),
        access,
        principal,
        presented=True,
        admin_exists=current_app.extensions[TOKENS_KEY].has_admin,
    )
    if denied is not None or principal is None:
        detail = denied.detail if denied else "this request needs a token"
        return problem(403, "Forbidden", detail)
    return _signed(target, principal.name)


def _routes_get(path: str) -> bool:
    """True if ``GET path`` reaches a view of this app."""
    adapter = current_app.create_url_adapter(request)
    assert adapter is not None
    try:
        adapter.match(unquote(path), method=SIGNED_METHOD)
    except HTTPException:  # not found, another method only, or a redirect to another path
        return False
    return True


def _signed(target: str, principal: str) -> Response:
    lifetime = current_app.config["SETTINGS"].signed_url_seconds
    expires = math.ceil(time.time() + lifetime)
    url = sign(current_app.extensions[SIGNING_KEY], target, principal, expires)
    at = dt.datetime.fromtimestamp(expires, dt.UTC).isoformat().replace("+00:00", "Z")
    return jsonify(url=url, expires_at=at, expires_in=round(expires - time.time(), 3))
