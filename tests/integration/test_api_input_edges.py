"""Inputs at the edges that the API fuzzer (``make api-fuzz``) found answered with a 500:
each is now refused with a 400 problem document."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/customers", "page=38111613831777177543892073971712"),  # offset past 64 bits
        ("/sites", "per_page=" + "9" * 5000),  # more digits than int() converts
        ("/jobs", "page=2147483648"),
        ("/files", "page=%C2%B2"),  # a superscript 2: a digit to str.isdigit, not to int
        ("/customers", "site_id=99999999999"),
    ],
)
def test_page_numbers_and_ids_beyond_a_database_integer_are_refused(
    client: FlaskClient, path: str, query: str
) -> None:
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/exports", '{"from": "0001-01-01T00:00:00+14:00", "till": "2023-01-01"}'),
        ("/exports", '{"from": "2023-01-01", "till": "9999-12-31T23:59:59-14:00"}'),
        ("/work", '{"execution_time": 1' + "0" * 400 + "}"),
        ("/work", '{"execution_time": 1, "customer": 1' + "0" * 30 + ', "site": 1}'),
        ("/work", DEEP),
        ("/exports", DEEP),
        ("/sites", DEEP),
    ],
)
def test_bodies_out_of_range_or_nested_too_deeply_are_refused(
    client: FlaskClient, path: str, body: str
) -> None:
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400, response.text
    problem: Any = response.get_json()
    assert problem["status"] == 400
    assert problem["detail"]


@pytest.mark.parametrize(
    "path", ["/files?state=done&state=loaded", "/jobs?owner=1&owner=2", "/status?x=1&x=2"]
)
def test_a_query_argument_that_takes_one_value_given_twice_is_400(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 400
    assert "may be given once" in response.json["detail"]


def test_the_filters_of_the_job_list_may_be_repeated(client: FlaskClient) -> None:
    assert client.get("/jobs?state=queued&state=running&kind=work&kind=report").status_code == 200


@pytest.mark.parametrize(
    "query", ["state=", "kind=", "state=queued,running", "kind=work,", "state=nope"]
)
def test_a_job_filter_that_is_not_one_known_value_is_400(client: FlaskClient, query: str) -> None:
    response = client.get(f"/jobs?{query}")

    assert response.status_code == 400
    assert "unknown" in response.json["detail"]
