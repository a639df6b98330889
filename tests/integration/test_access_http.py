"""Access control over HTTP: open mode, tokens, the admin, customers limited to their own jobs,
and downloads that cannot be steered outside a job's result folder."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, update

from support import bearer
from yardmaster.api import create_app
from yardmaster.api.resources import Resources
from yardmaster.shared import outputs
from yardmaster.shared.migrate import head_revision, upgrade_to_head
from yardmaster.shared.models import Job
from yardmaster.shared.redis_client import make_redis
from yardmaster.shared.settings import load_settings

ADMIN, C1, C2 = "ym-admin-secret", "ym-c1-secret", "ym-c2-secret"
#: Customers 1 and 2 are the first two the fixture creates.
TOKENS = f"admin={ADMIN},customer-1={C1},customer-2={C2}"
PROBLEM = "application/problem+json"


def make_app(
    redis_url: str, database_url: str, engine: Engine, tmp_path: Path, **settings: Any
) -> Flask:
    upgrade_to_head(engine)
    config = load_settings(
        {}, redis_url=redis_url, database_url=database_url, data_dir=str(tmp_path), **settings
    )
    return create_app(config, Resources(make_redis(redis_url, 1.0), engine, head_revision()))


@dataclass
class Platform:
    """The API behind tokens, with one site, customers 1 and 2, and one work job each."""

    client: FlaskClient
    engine: Engine
    files: Path
    jobs: dict[str, str]  # "1", "2": each customer's job id

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> Any:
        return self.client.get(path, headers=bearer(token) if token else {}, **kwargs)

    def post(self, path: str, token: str | None = None, **kwargs: Any) -> Any:
        return self.client.post(path, headers=bearer(token) if token else {}, **kwargs)

    def finish(self, job_id: str, result_path: str, content: bytes | None = b"a,b\n1,2\n") -> None:
        """Mark the job finished with ``result_path`` (written under its folder if content)."""
        folder = outputs.result_dir(self.files, job_id)
        folder.mkdir(parents=True, exist_ok=True)
        if content is not None:
            (folder / Path(result_path).name).write_bytes(content)
        with self.engine.begin() as connection:
            connection.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    state="finished",
                    result_path=result_path,
                    result_name="result.csv",
                    result_type="text/csv",
                )
            )


@pytest.fixture
def platform(redis_url: str, database_url: str, engine: Engine, tmp_path: Path) -> Platform:
    app = make_app(redis_url, database_url, engine, tmp_path, api_tokens=TOKENS)
    client = app.test_client()
    site = client.post("/sites", json={"name": "Acme"}, headers=bearer(ADMIN)).json
    for name in ("Ada", "Bob"):
        created = client.post(
            "/customers", json={"site_id": site["id"], "name": name}, headers=bearer(ADMIN)
        )
        assert created.status_code == 201, created.json
    jobs = {}
    for owner, token in (("1", C1), ("2", C2)):
        response = client.post("/work", json={"execution_time": 1}, headers=bearer(token))
        assert response.status_code == 202, response.json
        jobs[owner] = response.json["id"]
    return Platform(client, engine, tmp_path / "files", jobs)


def refused(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    return dict(response.json)


# --- open mode ------------------------------------------------------------------------------


def test_without_tokens_the_api_runs_open_and_says_so_loudly(
    redis_url: str, database_url: str, engine: Engine, tmp_path: Path, caplog: Any
) -> None:
    with caplog.at_level(logging.WARNING, logger="yardmaster.api.auth"):
        client = make_app(redis_url, database_url, engine, tmp_path).test_client()

    assert "the API is OPEN" in caplog.text
    assert "YARDMASTER_API_TOKENS" in caplog.text
    assert client.get("/whoami").json == {"access": "open", "principal": None}
    assert client.get("/jobs").status_code == 200
    assert client.post("/work", json={"execution_time": 1}).status_code == 202


def test_an_open_api_still_wants_the_admin_token_to_lift_a_queue_ban(
    redis_url: str, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    client = make_app(
        redis_url, database_url, engine, tmp_path, admin_token="old-admin"
    ).test_client()

    refused(client.delete("/queue/bans/10.0.0.9"), 401)
    assert client.delete("/queue/bans/10.0.0.9", headers=bearer("old-admin")).status_code == 404
    assert client.get("/whoami", headers=bearer("old-admin")).json["principal"] == "admin"


# --- tokens: who is asking --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "principal"), [(None, None), (ADMIN, "admin"), (C1, "customer-1"), ("bad", None)]
)
def test_whoami_is_open_and_names_the_principal_of_the_token(
    platform: Platform, token: str | None, principal: str | None
) -> None:
    response = platform.get("/whoami", token)

    assert response.status_code == 200
    assert response.json == {"access": "tokens", "principal": principal}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/jobs"),
        ("GET", "/jobs/{job}"),
        ("GET", "/jobs/{job}/result"),
        ("GET", "/jobs/events"),
        ("POST", "/jobs/{job}/pause"),
        ("POST", "/work"),
        ("POST", "/trigger_report"),
        ("GET", "/get_report?report_id={job}"),
        ("POST", "/exports"),
        ("POST", "/imports"),
        ("POST", "/sites"),
        ("GET", "/files"),
    ],
)
def test_without_a_valid_token_every_change_and_job_read_is_401(
    platform: Platform, method: str, path: str
) -> None:
    url = path.format(job=platform.jobs["1"])

    missing = refused(platform.client.open(url, method=method), 401)
    wrong = platform.client.open(url, method=method, headers=bearer("not-a-token"))

    assert "needs a token" in missing["detail"]
    assert refused(wrong, 401)["detail"].startswith("the token is not valid")
    assert wrong.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert platform.client.open(url, method=method).headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("path", ["/healthz", "/whoami", "/queue", "/queue/"])
def test_health_whoami_and_the_turn_queue_stay_open(platform: Platform, path: str) -> None:
    assert platform.get(path).status_code == 200


def test_a_query_token_is_refused_even_on_get(platform: Platform) -> None:
    refused(platform.client.get(f"/jobs?access_token={C1}"), 400)
    refused(platform.client.get(f"/whoami?access_token={C1}"), 400)
    refused(platform.client.post(f"/trigger_report?access_token={C1}"), 400)


# --- what each principal sees -------------------------------------------------------------


def test_the_admin_sees_every_job(platform: Platform) -> None:
    listing = platform.get("/jobs", ADMIN).json

    assert {job["id"] for job in listing["items"]} == set(platform.jobs.values())
    for job_id in platform.jobs.values():
        assert platform.get(f"/jobs/{job_id}", ADMIN).status_code == 200


def test_a_customer_lists_only_its_own_jobs(platform: Platform) -> None:
    mine = platform.get("/jobs", C1).json
    someone_elses = platform.get("/jobs?owner=2", C1).json

    assert [job["id"] for job in mine["items"]] == [platform.jobs["1"]]
    assert mine["total"] == 1
    assert someone_elses["items"] == []
    assert someone_elses["total"] == 0


def test_another_customers_job_is_404_to_read_download_or_control(platform: Platform) -> None:
    theirs = platform.jobs["2"]
    platform.finish(theirs, "result.csv")

    refused(platform.get(f"/jobs/{theirs}", C1), 404)
    refused(platform.get(f"/jobs/{theirs}/result", C1), 404)
    for action in ("pause", "resume", "stop"):
        refused(platform.post(f"/jobs/{theirs}/{action}", C1), 404)
    assert platform.get(f"/jobs/{theirs}/result", C2).data == b"a,b\n1,2\n"


def test_a_customer_controls_its_own_job(platform: Platform) -> None:
    response = platform.post(f"/jobs/{platform.jobs['1']}/pause", C1)

    assert response.status_code in (200, 202), response.json
    assert platform.get(f"/jobs/{platform.jobs['2']}", C2).json["state"] == "queued"


def test_a_customers_report_is_its_own(platform: Platform) -> None:
    triggered = platform.post("/trigger_report", C1)
    assert triggered.status_code == 202
    report_id = triggered.json["report_id"]
    url = f"/get_report?report_id={report_id}"

    assert platform.get(f"/jobs/{report_id}", C1).json["owner"] == "1"
    assert platform.get(url, C1).json["status"] == "Running"
    assert platform.get(url, ADMIN).json["status"] == "Running"
    refused(platform.get(url, C2), 404)


def test_a_customers_export_is_its_own(platform: Platform) -> None:
    body = {"from": "2023-01-18", "till": "2023-01-25"}

    export = platform.post("/exports", C2, json=body)

    assert export.status_code == 202
    assert export.json["owner"] == "2"
    refused(platform.get(f"/jobs/{export.json['id']}", C1), 404)


def test_a_customers_work_is_submitted_for_itself_only(platform: Platform) -> None:
    mine = platform.post(
        "/work", C1, json=[{"execution_time": 1}, {"execution_time": 2, "customer": 1}]
    )
    theirs = platform.post("/work", C1, json={"execution_time": 1, "customer": 2, "site": 1})

    assert mine.status_code == 202, mine.json
    assert [(j["customer_id"], j["owner"]) for j in mine.json["jobs"]] == [(1, "1"), (1, "1")]
    assert "its own customer (1) only" in refused(theirs, 403)["detail"]


def test_platform_data_and_the_directory_are_the_admins(platform: Platform) -> None:
    upload = {"table": "timezones", "file": (io.BytesIO(b"x"), "t.csv")}

    refused(platform.post("/imports", C1, data=upload, content_type="multipart/form-data"), 403)
    refused(platform.post("/sites", C1, json={"name": "Mine"}), 403)
    refused(platform.client.patch("/customers/1", json={"name": "Eve"}, headers=bearer(C1)), 403)
    refused(platform.client.delete("/customers/2", headers=bearer(C1)), 403)
    refused(platform.get("/customers", C1), 403)
    refused(platform.client.delete("/queue/bans/10.0.0.9", headers=bearer(C1)), 403)
    assert platform.client.delete("/queue/bans/10.0.0.9", headers=bearer(ADMIN)).status_code == 404
    assert platform.get("/customers", ADMIN).json["total"] == 2


def test_a_customer_reads_its_own_record_and_no_one_elses(platform: Platform) -> None:
    assert platform.get("/customers/1", C1).json["name"] == "Ada"
    refused(platform.get("/customers/2", C1), 404)
    assert platform.get("/sites", C1).status_code == 200


def test_a_customers_event_stream_carries_its_own_jobs_only(platform: Platform) -> None:
    signed = platform.post("/signed-urls", C1, json={"path": "/jobs/events"}).json["url"]
    stream = platform.client.get(signed, buffered=False)
    assert stream.status_code == 200
    frames = iter(stream.response)
    assert b"connected" in next(frames)

    platform.post("/work", C2, json={"execution_time": 1})
    own = platform.post("/work", C1, json={"execution_time": 1}).json

    frame = next(frames).decode()
    stream.close()
    assert f'"id": "{own["id"]}"' in frame or f'"id":"{own["id"]}"' in frame


# --- downloads stay inside the job's result folder --------------------------------------------


@pytest.mark.parametrize("recorded", ["../../../outside.csv", "/etc/outside.csv", "..", "x/"])
def test_a_recorded_result_path_cannot_lead_a_download_elsewhere(
    platform: Platform, recorded: str
) -> None:
    (platform.files / "outside.csv").parent.mkdir(parents=True, exist_ok=True)
    (platform.files / "outside.csv").write_bytes(b"secret")
    platform.finish(platform.jobs["1"], recorded, content=None)

    response = platform.get(f"/jobs/{platform.jobs['1']}/result", C1)

    assert response.status_code == 410
    assert b"secret" not in response.data


def test_a_symbolic_link_in_the_result_folder_is_not_followed_out_of_it(
    platform: Platform,
) -> None:
    outside = platform.files / "outside.csv"
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_bytes(b"secret")
    job_id = platform.jobs["1"]
    platform.finish(job_id, "result.csv", content=None)
    (outputs.result_dir(platform.files, job_id) / "result.csv").symlink_to(outside)

    response = platform.get(f"/jobs/{job_id}/result", C1)

    assert response.status_code == 410
    assert b"secret" not in response.data


def test_an_oversized_upload_is_a_413_problem_document(
    redis_url: str, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    app = make_app(redis_url, database_url, engine, tmp_path, api_tokens=TOKENS, max_upload_mb="1")
    big = b"timezone_str,store_id\n" + b"America/Chicago,1\n" * 70_000

    response = app.test_client().post(
        "/imports",
        data={"table": "timezones", "file": (io.BytesIO(big), "big.csv")},
        content_type="multipart/form-data",
        headers=bearer(ADMIN),
    )

    assert refused(response, 413)["title"] == "Request Entity Too Large"
