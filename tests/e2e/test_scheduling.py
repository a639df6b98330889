"""Priority scheduling with real workers: the brief's batch runs exactly once, a flooding site
cannot take every worker, light jobs of other sites pass its heavy ones."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
import requests

from e2e.stack import Stack, Start, make_stack
from support import eventually

# slow: on PostgreSQL only when it is configured (tests/conftest.py)
pytestmark = pytest.mark.one_backend

#: The brief's batch: user, site, execution time (s).
BRIEF_BATCH = [
    (2, 1, 9.8887), (3, 2, 0.0895), (5, 2, 8.4956), (3, 1, 7.4985), (2, 4, 8.5381),
    (2, 3, 8.4382), (3, 3, 2.3003), (1, 4, 0.3739), (2, 1, 5.1969), (4, 1, 4.8443),
    (1, 1, 4.3946), (3, 1, 7.4142), (2, 4, 1.025), (2, 4, 0.9082), (4, 2, 2.428),
    (2, 2, 2.0037), (1, 4, 3.6222), (3, 3, 8.155), (1, 5, 4.1567), (4, 2, 6.8682),
]  # fmt: skip


def created(response: requests.Response) -> Any:
    assert response.status_code == 201, response.text
    return response.json()


def make_sites(stack: Stack, count: int) -> list[int]:
    body = [{"name": f"site-{n}", "domain": f"site{n}.example"} for n in range(1, count + 1)]
    return [site["id"] for site in created(stack.post("/sites", body))["items"]]


def make_customer(stack: Stack, site_id: int, name: str) -> int:
    return int(created(stack.post("/customers", {"site_id": site_id, "name": name}))["id"])


def wait_all(stack: Stack, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    def finished() -> list[dict[str, Any]] | None:
        jobs = [stack.job(i) for i in ids]
        return jobs if all(j["state"] == "finished" for j in jobs) else None

    return eventually(finished, timeout, f"{len(ids)} jobs finished")


def when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def runs(job: dict[str, Any]) -> list[tuple[dt.datetime, dt.datetime]]:
    """When the job was running, from its history: one span per claim (a job that yielded
    its worker to an urgent one runs twice, and waits in between)."""
    spans, since = [], None
    for entry in job["history"]:
        if entry["state"] == "running":
            since = when(entry["at"])
        elif since is not None:
            spans.append((since, when(entry["at"])))
            since = None
    return spans


def test_the_briefs_batch_of_20_jobs_runs_to_completion_exactly_once_each(
    start: Start, redis_url: str, migrated_database_url: str
) -> None:
    stack = make_stack(start, redis_url, migrated_database_url, 2, work_time_scale="0.02")
    sites = make_sites(stack, 5)
    customers = {
        (user, site): make_customer(stack, sites[site - 1], f"user {user}")
        for user, site, _ in BRIEF_BATCH
    }
    batch = [
        {"customer": customers[user, site], "site": sites[site - 1], "execution_time": seconds}
        for user, site, seconds in BRIEF_BATCH
    ]

    response = stack.post("/work", batch)

    assert response.status_code == 202, response.text
    ids = [job["id"] for job in response.json()["jobs"]]
    jobs = wait_all(stack, ids, 60)
    assert [j["attempt"] for j in jobs] == [1] * 20  # claimed once: run once
    assert [j["params"]["execution_time"] for j in jobs] == [s for _, _, s in BRIEF_BATCH]
    light = next(j for j in jobs if j["params"]["execution_time"] == 0.0895)
    assert (light["job_class"], light["queue"]) == (3, "yardmaster-default")


def test_a_flood_of_heavy_jobs_from_one_site_does_not_hold_back_another_sites_light_job(
    start: Start, redis_url: str, migrated_database_url: str
) -> None:
    stack = make_stack(
        start, redis_url, migrated_database_url, 2, work_time_scale="0.05", aging_base_seconds="1"
    )
    flooding, quiet = make_sites(stack, 2)
    flooder = make_customer(stack, flooding, "flooder")
    neighbour = make_customer(stack, quiet, "neighbour")
    flood = stack.post(
        "/work", [{"customer": flooder, "site": flooding, "execution_time": 9}] * 8
    ).json()["jobs"]
    stack.wait_for(flood[0]["id"], "running")

    light = stack.post("/work", {"customer": neighbour, "site": quiet, "execution_time": 0.001})

    job = stack.wait_for(light.json()["id"], "finished", timeout=30)
    waited = (when(job["started_at"]) - when(job["created_at"])).total_seconds()
    assert waited <= 1.0  # class 1's aging bound here: a worker was kept free of the flood
    heavy = wait_all(stack, [j["id"] for j in flood], 60)
    spans = sorted(span for j in heavy for span in runs(j))
    overlapping = [a for a, b in itertools.pairwise(spans) if b[0] < a[1]]
    assert overlapping == []  # the site's cap with 2 workers is 1: never two of its jobs at once


def test_an_urgent_job_makes_a_heavy_one_yield_which_then_finishes_from_its_checkpoint(
    one_worker: Stack,
) -> None:
    stack = one_worker
    heavy = stack.work(8)  # class 5, low queue
    stack.eventually_progress(heavy, 0.1)

    light = stack.work(0.001)  # class 1, high queue: the only worker is busy, so it yields

    job = stack.wait_for(light, "finished", timeout=10)
    assert (when(job["started_at"]) - when(job["created_at"])).total_seconds() < 1.0
    resumed = stack.wait_for(heavy, "finished", timeout=30)
    assert resumed["preemptions"] == 1
    assert resumed["attempt"] == 2  # claimed again, continuing from its checkpoint
    result = requests.get(f"{stack.base}/jobs/{heavy}/result", timeout=10).json()
    assert result == {"kind": "work", "execution_time": 8.0}
