"""The API under gunicorn, as ``make run`` and Compose start it, behind tokens: what the HTTP
server refuses before the API sees a request (a request line or header too long, too many
headers, a malformed request) is a problem document like every other error; a big refused
request gets a small answer; the access log never shows a token or a signature's MAC."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
import requests

from support import Process, RedisServer, Starter, eventually, free_port
from yardmaster.shared.db import make_engine
from yardmaster.shared.migrate import upgrade_to_head

ADMIN = "ym-admin-secret"
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Api:
    base: str
    process: Process

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def api(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One API on SQLite (the subject is the HTTP server, not the database), uploads up to
    1 MiB, with an admin token."""
    folder = tmp_path_factory.mktemp("refusals")
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    url = f"sqlite:///{folder / 'yardmaster.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    starter = Starter(folder)
    port = free_port()
    process = starter(
        "yardmaster.api",
        "--port",
        str(port),
        redis_url=redis_server.url,
        database_url=url,
        api_tokens=f"admin={ADMIN}",
        max_upload_mb="1",
    )
    base = f"http://127.0.0.1:{port}"
    eventually(lambda: requests.get(f"{base}/readyz", timeout=2).ok, 30, "API ready")
    yield Api(base, process)
    starter.close_all()


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as it is; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /jobs?q=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: api\r\n\r\n", 414),
        (b"GET /jobs HTTP/1.1\r\nHost: api\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n", 431),
        (
            b"GET /jobs HTTP/1.1\r\nHost: api\r\n"
            + b"".join(b"X-%d: 1\r\n" % n for n in range(120))
            + b"\r\n",
            431,
        ),
        (b"NONSENSE\r\n\r\n", 400),
    ],
    ids=["line-414", "header-431", "headers-431", "malformed-400"],
)
def test_what_the_http_server_refuses_is_a_problem_document(
    api: Api, request_bytes: bytes, status: int
) -> None:
    answered, headers, body = exchange(api.port, request_bytes)

    assert answered == status
    assert headers["content-type"] == PROBLEM
    assert headers["x-content-type-options"] == "nosniff"
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["title"]
    assert len(body) < 1024


def test_an_upload_over_the_limit_is_a_413_problem_document(api: Api) -> None:
    response = requests.post(
        f"{api.base}/imports",
        headers={"Authorization": f"Bearer {ADMIN}"},
        files={"file": ("big.csv", b"store_id\n" + b"1\n" * 600_000)},
        data={"table": "timezones"},
        timeout=30,
    )

    assert response.status_code == 413
    assert response.headers["Content-Type"] == PROBLEM
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_half_megabyte_request_refused_gets_a_small_answer(api: Api) -> None:
    body = json.dumps([{"execution_time": "a"}] * 19_000)  # 460 KB, an error per item
    assert len(body) > 450_000

    response = requests.post(
        f"{api.base}/work",
        data=body,
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
        timeout=30,
    )

    assert response.status_code == 400
    assert len(response.content) < 4096
    assert response.json()["errors_total"] == 19_000


def test_the_access_log_never_shows_a_token_or_the_mac_of_a_signed_url(api: Api) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    signed = requests.post(
        f"{api.base}/signed-urls", json={"path": "/whoami?from=log-test"}, headers=admin, timeout=5
    ).json()["url"]
    _, expires, mac = signed.rsplit("signature=", 1)[1].split(".")

    assert requests.get(api.base + signed, timeout=5).json()["principal"] == "admin"
    assert requests.get(f"{api.base}/whoami?access_token={ADMIN}", timeout=5).status_code == 400

    output = api.process.wait_for_output(re.compile(r"GET /whoami\?access_token=\*\*\* \S+\" 400"))
    assert f'GET /whoami?from=log-test&signature=admin.{expires}.*** HTTP/1.1" 200' in output
    assert mac not in output
    assert ADMIN not in output
