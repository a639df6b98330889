"""The CLI's exit codes: one per kind of outcome, so scripts can act on them."""

from __future__ import annotations

import json

import pytest
import requests

from yardmaster.cli.client import api_error
from yardmaster.cli.errors import ExitCode, exit_code_for_status
from yardmaster.cli.parser import DEFAULT_API, build_parser


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (200, ExitCode.OK),
        (202, ExitCode.OK),
        (400, ExitCode.REFUSED),
        (410, ExitCode.REFUSED),
        (413, ExitCode.REFUSED),
        (401, ExitCode.AUTH),
        (403, ExitCode.AUTH),
        (404, ExitCode.NOT_FOUND),
        (409, ExitCode.CONFLICT),
        (500, ExitCode.UNREACHABLE),
        (503, ExitCode.UNREACHABLE),
    ],
)
def test_each_http_status_maps_to_its_exit_code(status: int, code: ExitCode) -> None:
    assert exit_code_for_status(status) is code


def test_the_exit_codes_are_the_documented_numbers() -> None:
    assert [c.value for c in ExitCode] == [0, 1, 2, 3, 4, 5, 6, 7]


def answer(status: int, body: bytes, content_type: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = "Reason"
    response._content = body
    response.headers["Content-Type"] = content_type
    return response


def test_an_error_answer_carries_its_problem_document_and_exit_code() -> None:
    body = {"title": "Not Found", "status": 404, "detail": "no job x", "type": "about:blank"}
    error = api_error(answer(404, json.dumps(body).encode(), "application/problem+json"))
    assert error.code is ExitCode.NOT_FOUND
    assert error.problem == body
    assert error.message == "404 Not Found: no job x"


def test_an_error_answer_that_is_not_json_still_gives_one_line() -> None:
    error = api_error(answer(502, b"<html>bad gateway</html>", "text/html"))
    assert (error.code, error.message, error.problem) == (ExitCode.UNREACHABLE, "502 Reason", {})


def test_api_and_token_come_from_the_environment_unless_given() -> None:
    env = {"YARDMASTER_API": "http://api:9000/", "YARDMASTER_TOKEN": "t1"}
    from_env = build_parser(env).parse_args(["jobs", "list"])
    assert (from_env.api, from_env.token) == ("http://api:9000", "t1")
    given = build_parser(env).parse_args(["jobs", "list", "--api", "https://x", "--token", "t2"])
    assert (given.api, given.token) == ("https://x", "t2")
    default = build_parser({}).parse_args(["jobs", "list"])
    assert (default.api, default.token, default.json) == (DEFAULT_API, None, False)


def test_a_queue_tokens_claim_comes_from_the_environment_unless_given() -> None:
    env = {"YARDMASTER_CLAIM": "from-env"}
    assert build_parser(env).parse_args(["queue", "redeem", "A00"]).claim == "from-env"
    given = build_parser(env).parse_args(["queue", "release", "A00", "--claim", "given"])
    assert given.claim == "given"


def test_global_options_may_come_before_or_after_the_command() -> None:
    before = build_parser({}).parse_args(["--json", "--timeout", "2", "jobs", "show", "x"])
    after = build_parser({}).parse_args(["jobs", "show", "x", "--json", "--timeout", "2"])
    assert (before.json, before.timeout) == (after.json, after.timeout) == (True, 2.0)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["jobs"],
        ["jobs", "list", "--state", "sleeping"],
        ["import", "f.csv"],
        ["import", "f.csv", "--table", "users"],
        ["export", "--from", "2023-01-18"],
        ["--api", "127.0.0.1:8000", "jobs", "list"],
        ["--timeout", "0", "jobs", "list"],
        ["jobs", "list", "--page", "0"],
        ["queue", "redeem", "A00"],  # no claim, none in the environment
        ["queue", "redeem", "A00", "--ticket", "1"],
    ],
)
def test_a_usage_error_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser({}).parse_args(argv)
    assert exited.value.code == ExitCode.USAGE
    assert "usage: yardmaster" in capsys.readouterr().err
