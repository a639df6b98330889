"""Access control at the API's edge: one check before every request, and ``GET /whoami``.

The check classifies the request (:func:`yardmaster.api.policy.need_of`), finds who its
token speaks for and answers 401 or 403 problem documents (403 too for every request of a
deactivated customer's token that is not open to all); views then ask
:func:`current_principal`, :func:`owner_scope` or :func:`may_see` what the caller may see.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask.blueprints import BlueprintSetupState

from yardmaster.api import schemas
from yardmaster.api.openapi import document
from yardmaster.api.policy import (
    QUERY_TOKEN,
    QUERY_TOKEN_REFUSAL,
    Access,
    Need,
    Refusal,
    may_see_owner,
    need_of,
    presented_token,
    refusal,
)
from yardmaster.api.problems import problem
from yardmaster.api.resources import resources
from yardmaster.api.signing import SIGNATURE, SignatureError, verify
from yardmaster.shared.access import Principal, TokenTable
from yardmaster.shared.holds import is_deactivated
from yardmaster.shared.models import Job
from yardmaster.shared.settings import Settings

log = logging.getLogger(__name__)
blueprint = Blueprint("auth", __name__)

TOKENS_KEY = "yardmaster.access_tokens"
ACCESS_KEY = "yardmaster.access"
SIGNING_KEY = "yardmaster.signing_key"


@blueprint.record_once
def _install(state: BlueprintSetupState) -> None:
    """Read the tokens once per application, and say loudly when the API runs open."""
    app = state.app
    settings = app.config["SETTINGS"]
    assert isinstance(settings, Settings)
    app.extensions[TOKENS_KEY] = settings.access_tokens
    app.extensions[ACCESS_KEY] = Access.TOKENS if settings.api_tokens else Access.OPEN
    app.extensions[SIGNING_KEY] = settings.signing_key
    if settings.api_tokens:
        log.info(
            "access tokens required; principals: %s", ", ".join(settings.api_tokens.principals())
        )
    else:
        log.warning(
            "the API is OPEN: anyone who can reach it can read every job and report, change "
            "data and control jobs; set YARDMASTER_API_TOKENS to require tokens"
        )


def _tokens(app: Flask) -> TokenTable:
    tokens = app.extensions[TOKENS_KEY]
    assert isinstance(tokens, TokenTable)
    return tokens


def _access(app: Flask) -> Access:
    return Access(app.extensions[ACCESS_KEY])


@blueprint.before_app_request
def check_access() -> Response | None:
    """Let the request through, or answer 400/401/403; remember who it speaks for in ``g``:
    the principal of its Bearer token or, without one, of its signed URL
    (:mod:`yardmaster.api.signing`). A token in the query string is refused outright."""
    if QUERY_TOKEN in request.args:  # never in a query string: refused, whatever the path
        return _refused(QUERY_TOKEN_REFUSAL, presented=True)
    token = presented_token(request.headers.get("Authorization"))
    tokens = _tokens(current_app)
    g.principal = tokens.identify(token)
    if token is None and SIGNATURE in request.args and _access(current_app) is Access.TOKENS:
        try:
            g.principal = signed_principal(current_app, tokens)
        except SignatureError as exc:
            return _refused(Refusal(401, str(exc)), presented=True)
    if request.url_rule is None:  # unknown path or method: routing answers 404 or 405
        return None
    need = need_of(request.method, request.path)
    denied = refusal(
        need,
        _access(current_app),
        g.principal,
        presented=token is not None,
        admin_exists=tokens.has_admin,
    )
    if need is not Need.OPEN and (deactivated := _refused_if_deactivated(g.principal)):
        return deactivated
    return None if denied is None else _refused(denied, presented=token is not None)


def _refused_if_deactivated(principal: Principal | None) -> Response | None:
    """403 for the token of a deactivated customer, on every request that acts for it.

    One primary-key lookup per request, nothing cached: a deactivation counts from the next
    request in every API process."""
    if principal is None or principal.customer_id is None:
        return None
    with resources().engine.connect() as connection:
        if not is_deactivated(connection, principal.customer_id):
            return None
    detail = (
        f"customer {principal.customer_id} is deactivated: its token is refused until an "
        "admin reactivates it (its queued jobs are on hold meanwhile)"
    )
    return problem(403, "Forbidden", detail, customer_id=principal.customer_id, deactivated=True)


def signed_principal(app: Flask, tokens: TokenTable) -> Principal:
    """Who the current request's signed URL speaks for (:mod:`yardmaster.api.signing`);
    SignatureError if it does not authorise this request, or its principal has no token
    any more."""
    signed = verify(
        app.extensions[SIGNING_KEY],
        request.method,
        request.path,
        request.query_string.decode("latin-1"),
        time.time(),
    )
    try:
        principal = Principal.parse(signed.principal)
    except ValueError:
        raise SignatureError("the signature does not match this URL") from None
    if not tokens.speaks_for(principal):
        raise SignatureError(f"{principal.name} holds no token any more")
    return principal


def _refused(denied: Refusal, *, presented: bool) -> Response:
    title = {400: "Bad Request", 401: "Unauthorized"}.get(denied.status, "Forbidden")
    response = problem(denied.status, title, denied.detail)
    if denied.status == 400:
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_request"'
    elif denied.status == 401:
        response.headers["WWW-Authenticate"] = (
            'Bearer error="invalid_token"' if presented else "Bearer"
        )
    return response


def current_principal() -> Principal | None:
    """Who the current request's token speaks for (None: no valid token, the API runs open)."""
    principal = g.get("principal")
    return principal if isinstance(principal, Principal) else None


def owner_scope() -> str | None:
    """The job owner the caller is limited to (a customer's id), or None for no limit."""
    principal = current_principal()
    return None if principal is None else principal.owner


def may_see(job: Job) -> bool:
    """True if the caller may see and control ``job`` (others' jobs are answered 404)."""
    return may_see_owner(current_principal(), job.owner)


@blueprint.get("/whoami")
@document(ok={200: schemas.WhoAmI}, tags=["service"])
def whoami() -> Response:
    """How the API runs (``open`` or ``tokens``) and who the presented token speaks for."""
    principal = current_principal()
    return jsonify(
        access=_access(current_app).value,
        principal=None if principal is None else principal.name,
    )
