"""Imports and exports refuse bad requests at once (400 problem documents), enqueuing nothing."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient


@pytest.mark.parametrize(
    ("table", "content", "message"),
    [
        ("store_status", "store_id,day,start_time_local\n1,2,10:00\n", "need a status column"),
        ("nonsense", "store_id,status,timestamp_utc\n", "field 'table' must be one of"),
        (None, "store_id,status,timestamp_utc\n", "field 'table' is required"),
    ],
)
def test_a_bad_upload_is_refused_at_once_with_400(
    client: FlaskClient, table: str | None, content: str, message: str
) -> None:
    form: dict[str, object] = {"file": (io.BytesIO(content.encode()), "upload.csv")}
    if table:
        form["table"] = table

    response = client.post("/imports", data=form, content_type="multipart/form-data")

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert message in response.get_json()["detail"]
    assert client.get("/jobs").get_json()["total"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"from": "2023-01-18"},
        {"from": "tomorrow", "till": "2023-01-19"},
        {"from": "2023-01-19", "till": "2023-01-18"},
        [1, 2],
    ],
)
def test_bad_export_ranges_are_400(client: FlaskClient, body: object) -> None:
    response = client.post("/exports", json=body)

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert client.get("/jobs").get_json()["total"] == 0
