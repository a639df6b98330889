"""Who may make which request: the API's access policy, table by table."""

from __future__ import annotations

import pytest

from yardmaster.api.accesslog import RedactingLogger, redact
from yardmaster.api.gunicorn_conf import gunicorn_options
from yardmaster.api.policy import (
    Access,
    Need,
    may_see_owner,
    need_of,
    presented_token,
    refusal,
)
from yardmaster.shared.access import Principal
from yardmaster.shared.settings import load_settings

ADMIN = Principal()
C7 = Principal(7)


@pytest.mark.parametrize(
    ("method", "path", "need"),
    [
        # open: health, docs, metrics, the dashboard and its files, whoami, the turn queue
        ("GET", "/", Need.OPEN),
        ("GET", "/static/app.js", Need.OPEN),
        ("GET", "/healthz", Need.OPEN),
        ("GET", "/readyz", Need.OPEN),
        ("GET", "/metrics", Need.OPEN),
        ("GET", "/openapi.json", Need.OPEN),
        ("GET", "/docs", Need.OPEN),
        ("GET", "/whoami", Need.OPEN),
        ("POST", "/queue/tokens", Need.OPEN),
        ("POST", "/queue/redeem", Need.OPEN),
        ("GET", "/queue/events", Need.OPEN),
        ("OPTIONS", "/jobs", Need.OPEN),
        # lifting a queue ban: an admin's, even when the API runs open
        ("DELETE", "/queue/bans/10.0.0.1", Need.ADMIN_ALWAYS),
        # jobs and reports: any token (customers then see their own only)
        ("GET", "/jobs", Need.TOKEN),
        ("GET", "/jobs/abc", Need.TOKEN),
        ("GET", "/jobs/abc/result", Need.TOKEN),
        ("GET", "/jobs/events", Need.TOKEN),
        ("POST", "/jobs/abc/pause", Need.TOKEN),
        ("POST", "/work", Need.TOKEN),
        ("POST", "/trigger_report", Need.TOKEN),
        ("GET", "/get_report", Need.TOKEN),
        ("POST", "/exports", Need.TOKEN),
        ("GET", "/files", Need.TOKEN),
        ("GET", "/workers", Need.TOKEN),
        ("GET", "/status", Need.TOKEN),
        ("GET", "/sites", Need.TOKEN),
        ("GET", "/customers/7", Need.TOKEN),
        ("GET", "/anything-new", Need.TOKEN),  # closed by default
        # platform-wide data: the admin's
        ("POST", "/imports", Need.ADMIN),
        ("POST", "/sites", Need.ADMIN),
        ("PATCH", "/sites/1", Need.ADMIN),
        ("DELETE", "/customers/7", Need.ADMIN),
        ("PUT", "/customers/7", Need.ADMIN),
        ("GET", "/customers", Need.ADMIN),
    ],
)
def test_every_request_is_classified_by_method_and_path(method: str, path: str, need: Need) -> None:
    assert need_of(method, path) == need


OPEN, TOKENS = Access.OPEN, Access.TOKENS


@pytest.mark.parametrize(
    ("need", "access", "principal", "presented", "status"),
    [
        (Need.OPEN, TOKENS, None, False, None),
        (Need.OPEN, TOKENS, None, True, None),
        (Need.TOKEN, OPEN, None, False, None),
        (Need.ADMIN, OPEN, None, False, None),
        (Need.TOKEN, TOKENS, None, False, 401),
        (Need.TOKEN, TOKENS, None, True, 401),
        (Need.TOKEN, TOKENS, C7, True, None),
        (Need.TOKEN, TOKENS, ADMIN, True, None),
        (Need.ADMIN, TOKENS, None, False, 401),
        (Need.ADMIN, TOKENS, C7, True, 403),
        (Need.ADMIN, TOKENS, ADMIN, True, None),
        (Need.ADMIN_ALWAYS, OPEN, None, False, 401),
        (Need.ADMIN_ALWAYS, OPEN, ADMIN, True, None),
        (Need.ADMIN_ALWAYS, TOKENS, C7, True, 403),
        (Need.ADMIN_ALWAYS, TOKENS, ADMIN, True, None),
    ],
)
def test_the_decision_weighs_the_need_against_the_mode_and_the_principal(
    need: Need, access: Access, principal: Principal | None, presented: bool, status: int | None
) -> None:
    decided = refusal(need, access, principal, presented=presented, admin_exists=True)

    assert (decided and decided.status) == status


def test_an_admin_request_with_no_admin_token_configured_anywhere_is_forbidden() -> None:
    decided = refusal(Need.ADMIN_ALWAYS, OPEN, None, presented=True, admin_exists=False)

    assert decided is not None
    assert decided.status == 403
    assert "no admin token is configured" in decided.detail


def test_a_refusal_says_whether_the_token_was_missing_or_wrong() -> None:
    missing = refusal(Need.TOKEN, TOKENS, None, presented=False, admin_exists=True)
    wrong = refusal(Need.TOKEN, TOKENS, None, presented=True, admin_exists=True)

    assert missing is not None
    assert "needs a token" in missing.detail
    assert wrong is not None
    assert "not valid" in wrong.detail
    assert "Authorization: Bearer" in missing.detail


@pytest.mark.parametrize(
    ("principal", "owner", "seen"),
    [
        (None, "7", True),  # the API runs open
        (None, None, True),
        (ADMIN, "7", True),
        (ADMIN, None, True),
        (C7, "7", True),
        (C7, "8", False),
        (C7, None, False),  # the platform's own jobs (imports, admin reports)
    ],
)
def test_a_customer_sees_only_what_it_owns(
    principal: Principal | None, owner: str | None, seen: bool
) -> None:
    assert may_see_owner(principal, owner) is seen


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic dXNlcjpwYXNz", ""),  # presented, but not a token
        ("Bearer", ""),
        (None, None),
    ],
)
def test_the_token_comes_from_the_bearer_header_only(
    authorization: str | None, token: str | None
) -> None:
    assert presented_token(authorization) == token


@pytest.mark.parametrize(
    ("logged", "shown"),
    [
        (
            "GET /jobs/events?access_token=s3cret HTTP/1.1",
            "GET /jobs/events?access_token=*** HTTP/1.1",
        ),
        ("job=1&access_token=s3cret&x=2", "job=1&access_token=***&x=2"),
        ("access_token=s3cret", "access_token=***"),
        ("GET /jobs?owner=7 HTTP/1.1", "GET /jobs?owner=7 HTTP/1.1"),
        (
            "GET /jobs/events?signature=customer-7.1767225600.2KxAbC_-9 HTTP/1.1",
            "GET /jobs/events?signature=customer-7.1767225600.*** HTTP/1.1",
        ),
        ("job=1&signature=admin.1767225600.2KxAbC&x=2", "job=1&signature=admin.1767225600.***&x=2"),
        ("signature=forged", "signature=***"),
    ],
)
def test_the_access_log_never_shows_a_query_token_or_a_whole_signature(
    logged: str, shown: str
) -> None:
    assert redact(logged) == shown


def test_the_server_bounds_slow_requests_and_logs_through_the_redacting_logger() -> None:
    options = gunicorn_options(load_settings({}), "127.0.0.1", 8000)

    assert 0 < options["timeout"] <= 120  # a worker stuck longer is restarted
    assert 0 < options["keepalive"] <= 10  # idle connections are not held open
    assert options["logger_class"] == f"{RedactingLogger.__module__}.RedactingLogger"
