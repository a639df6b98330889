"""``make load-sample`` (tools/load_sample.py) against a stand-in API that misbehaves on cue:
uploads cut off or answered 503 are sent again, every error is one line, never a traceback."""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support import PYTHON, REPO, Process, base_env, free_port

LOAD_SAMPLE = str(REPO / "tools" / "load_sample.py")
RESET = "reset"


@dataclass
class Script:
    """What the stand-in API answers: each upload in turn (the last one repeats), and the
    states an import job goes through (the last one stays)."""

    uploads: list[Any] = field(default_factory=lambda: [(202, {})])
    job: list[dict[str, Any]] = field(default_factory=lambda: [job("finished", 1.0)])
    uploaded: list[int] = field(default_factory=list)


def job(state: str, fraction: float, error: str | None = None) -> dict[str, Any]:
    progress = {"fraction": fraction, "message": f"{state} here", "done": 10, "total": None}
    return {"id": "j", "state": state, "progress": progress, "error": error}


def handler_for(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def answer(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/readyz":
                self.answer(200, {"status": "ready"}, {})
            else:
                state = script.job.pop(0) if len(script.job) > 1 else script.job[0]
                self.answer(200, state, {})

        def do_POST(self) -> None:
            action = script.uploads.pop(0) if len(script.uploads) > 1 else script.uploads[0]
            length = int(self.headers["Content-Length"])
            if action == RESET:  # half the body, then a TCP reset
                self.rfile.read(length // 2)
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.connection.close()
                return
            received = len(self.rfile.read(length))
            status, headers = action
            if status == 202:
                script.uploaded.append(received)
            body = {"id": "j"} if status == 202 else {"title": "Nope", "detail": "not a CSV"}
            self.answer(status, body, headers)

    return Handler


@pytest.fixture
def api(request: pytest.FixtureRequest) -> Iterator[tuple[str, Script]]:
    script = request.param if hasattr(request, "param") else Script()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(script))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", script
    server.shutdown()
    server.server_close()


def load_sample(api_url: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, LOAD_SAMPLE, "--api", api_url, "--stores", "20", "--out", str(out)],
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("load-sample: ")
    return lines[0]


@pytest.mark.parametrize(
    "api",
    [
        Script(
            uploads=[RESET, (503, {"Retry-After": "1"}), (202, {})],
            job=[job("running", 0.5), job("finished", 1.0)],
        )
    ],
    indirect=True,
)
def test_an_upload_cut_off_or_answered_503_is_sent_again_and_the_imports_followed_to_the_end(
    api: tuple[str, Script], tmp_path: Path
) -> None:
    url, script = api
    done = load_sample(url, tmp_path / "sample")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "sending again in 1 s (try 2 of 5)" in done.stdout
    assert "the API is busy (503); sending again in 1 s (try 3 of 5)" in done.stdout
    assert "store_status.csv import:  50% running: running here" in done.stdout
    assert "store_status.csv import: finished in" in done.stdout
    sizes = [
        (tmp_path / "sample" / n).stat().st_size
        for n in ("store_status.csv", "menu_hours.csv", "timezones.csv")
    ]
    assert [u > s for u, s in zip(script.uploaded, sizes, strict=True)] == [True] * 3  # whole files
    assert done.stdout.strip().splitlines()[-1].startswith("load-sample: done in ")
    assert (tmp_path / "sample" / "store_status.csv").exists()


@pytest.mark.parametrize("api", [Script(uploads=[(400, {})])], indirect=True)
def test_a_refused_file_is_one_line_and_status_1(api: tuple[str, Script], tmp_path: Path) -> None:
    done = load_sample(api[0], tmp_path / "sample")

    assert done.returncode == 1
    assert one_line_error(done) == (
        "load-sample: the API refused store_status.csv: 400 Bad Request: not a CSV"
    )


@pytest.mark.parametrize("api", [Script(job=[job("failed", 0.3, error="boom")])], indirect=True)
def test_a_failed_import_is_one_line_and_status_1(api: tuple[str, Script], tmp_path: Path) -> None:
    done = load_sample(api[0], tmp_path / "sample")

    assert done.returncode == 1
    assert one_line_error(done) == "load-sample: importing store_status.csv failed: boom"


def test_an_api_that_is_not_running_is_one_line_and_status_1(tmp_path: Path) -> None:
    done = load_sample(f"http://127.0.0.1:{free_port()}", tmp_path / "sample")

    assert done.returncode == 1
    line = one_line_error(done)
    assert "cannot reach the API" in line
    assert "connection refused" in line
    assert "make run" in line


@pytest.mark.parametrize("api", [Script(job=[job("running", 0.2)])], indirect=True)
def test_ctrl_c_while_an_import_runs_is_one_line_and_status_130(
    api: tuple[str, Script], tmp_path: Path
) -> None:
    args = [PYTHON, LOAD_SAMPLE, "--api", api[0], "--stores", "20", "--out", str(tmp_path / "s")]
    process = Process(args, base_env(), tmp_path / "load-sample.log")
    try:
        process.wait_for_output("store_status.csv import:", timeout=60)
        process.signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        output = process.output()
        assert "Traceback" not in output
        assert output.strip().splitlines()[-1].startswith("load-sample: interrupted")
    finally:
        process.close()
