"""``GET /files/arriving``: the bucket's files that no worker has loaded yet."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import Engine, insert

from yardmaster.shared.fileclaims import bucket_id
from yardmaster.shared.models import FileLedger


def bucket_of(client: FlaskClient) -> Path:
    bucket: Path = client.application.config["SETTINGS"].bucket
    return bucket


def test_files_in_the_bucket_without_a_ledger_row_are_arriving_oldest_first(
    client: FlaskClient, engine: Engine
) -> None:
    bucket = bucket_of(client)
    bucket.mkdir(parents=True)
    for name in ("2018_06_28_00_30.txt", "2018_06_28_00_00.txt", "2018_06_28_00_15.txt"):
        (bucket / name).write_text("12.5\n")
    (bucket / ".2018_06_28_00_45.txt.part").write_text("")  # being written: not a bucket file
    (bucket / "notes.md").write_text("")
    with engine.begin() as connection:
        connection.execute(
            insert(FileLedger).values(
                bucket=bucket_id(bucket), name="2018_06_28_00_00.txt", state="done", rows=0
            )
        )

    body = client.get("/files/arriving").get_json()

    assert body == {
        "items": [{"name": "2018_06_28_00_15.txt"}, {"name": "2018_06_28_00_30.txt"}],
        "total": 2,
        "bucket_visible": True,
    }


def test_an_api_that_cannot_see_the_bucket_says_so(client: FlaskClient) -> None:
    assert not bucket_of(client).exists()

    body = client.get("/files/arriving").get_json()

    assert body == {"items": [], "total": 0, "bucket_visible": False}
