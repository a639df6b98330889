"""A running API with report workers, for end-to-end job tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
import requests

from support import Process, eventually, free_port
from yardmaster.shared import keys, lifecycle

#: Starts ``python -m MODULE ARGS`` with settings (the ``start`` fixture).
Start = Callable[..., Process]


@dataclass
class Stack:
    base: str
    redis_url: str
    workers: list[Process]
    add_worker: Callable[[str], Process]

    def post(self, path: str, body: Any = None) -> requests.Response:
        return requests.post(self.base + path, json=body, timeout=10)

    def job(self, job_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.base}/jobs/{job_id}", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def work(self, seconds: float) -> str:
        response = self.post("/work", {"execution_time": seconds})
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def wait_for(self, job_id: str, state: str, timeout: float = 30) -> dict[str, Any]:
        return eventually(
            lambda: (j := self.job(job_id))["state"] == state and j,
            timeout,
            f"job {job_id} {state}",
        )

    def lease(self, job_id: str) -> tuple[str, int]:
        """(worker name, pid of the process running the job) from the job's lease."""
        lease = redis.Redis.from_url(self.redis_url).get(keys.job_lease_key(job_id))
        assert lease is not None
        _attempt, worker, pid = lease.decode().split(":")
        return worker, int(pid)

    def eventually_progress(self, job_id: str, fraction: float) -> None:
        """Wait until the job runs and has done at least ``fraction`` of its work."""
        eventually(
            lambda: (
                (j := self.job(job_id))["state"] == "running"
                and j["progress"]["fraction"] >= fraction
            ),
            60,
            f"{job_id} at {fraction}",
        )

    def holder_pid(self, job_id: str) -> int:
        return self.lease(job_id)[1]

    def holder(self, job_id: str) -> Process:
        name = self.lease(job_id)[0]
        return next(w for w in self.workers if w.args[-1] == name)


def make_stack(
    start: Start, redis_url: str, database_url: str, workers: int, **extra: str
) -> Stack:
    """The API and ``workers`` report workers; ``extra`` settings override the defaults."""
    settings = {
        "redis_url": redis_url,
        "database_url": database_url,
        "job_lease_seconds": "2",
        "stop_grace_seconds": "2",
        **extra,
    }
    port = free_port()
    api = start("yardmaster.api", "--port", str(port), **settings)
    base = f"http://127.0.0.1:{port}"

    def add_worker(name: str) -> Process:
        return start("yardmaster.report_worker", "--name", name, **settings)

    stack = Stack(base, redis_url, [add_worker(f"rw-{n}") for n in range(workers)], add_worker)
    for process in [api, *stack.workers]:  # each says when it serves (or listens to its queues)
        process.wait_for_output(lifecycle.READY_LINE, timeout=30)
    return stack
