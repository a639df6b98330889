"""Smoke test of job control in a running Compose stack: a job runs, pauses, resumes, finishes,
and its result (written by a report worker) downloads through the API; then a site, a customer
and a batch of the customer's jobs, placed by the scheduling policy, all finish; and the
dashboard, its scripts, the OpenAPI document and /metrics are served, and the file pipeline's
live view streams."""

from __future__ import annotations

import json
import sys
import time
import urllib.request

BASE = "http://127.0.0.1:8000"


def call(method: str, path: str, body: object = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        BASE + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def fetch(path: str, accept: str = "*/*") -> tuple[str, str]:
    """The content type and text of ``GET path``."""
    request = urllib.request.Request(BASE + path, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"jobs smoke: {what}")


def check_pages() -> None:
    kind, page = fetch("/", accept="text/html,application/xhtml+xml")
    expect(kind.startswith("text/html"), f"/ for a browser is {kind}, not HTML")
    expect("/static/js/main.js" in page, "the dashboard page does not load its script")
    kind, _ = fetch("/static/js/main.js")
    expect("javascript" in kind, f"the dashboard's script is served as {kind}")
    _, document = fetch("/openapi.json")
    expect(json.loads(document)["openapi"].startswith("3."), "/openapi.json is no OpenAPI 3")
    _, metrics = fetch("/metrics")
    expect("yardmaster_jobs{" in metrics, "/metrics has no yardmaster_jobs family")
    print("jobs smoke: ok: dashboard, its scripts, /openapi.json and /metrics served")


def check_live_view(timeout: float = 30) -> None:
    """The file pipeline's stream shows the running file workers' files as they go."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    with urllib.request.urlopen(BASE + "/files/events", timeout=timeout) as stream:
        expect("text/event-stream" in stream.headers["Content-Type"], "/files/events is no stream")
        while time.monotonic() < deadline and not {"snapshot", "worker", "file"} <= seen:
            line = stream.readline().decode()
            if line.startswith("event: "):
                seen.add(line[7:].strip())
    expect({"snapshot", "worker", "file"} <= seen, f"/files/events showed only {sorted(seen)}")
    print("jobs smoke: ok: /files/events streams the file workers' heartbeats and files")


def wait_for(job_id: str, state: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if json.loads(call("GET", f"/jobs/{job_id}")[1])["state"] == state:
            return
        time.sleep(0.1)
    raise SystemExit(f"jobs smoke: job {job_id} not {state} within {timeout} s")


def main() -> int:
    check_live_view()  # first: while the simulator's day still runs
    job = json.loads(call("POST", "/work", {"execution_time": 3})[1])["id"]
    wait_for(job, "running")
    call("POST", f"/jobs/{job}/pause")
    wait_for(job, "paused")
    call("POST", f"/jobs/{job}/resume")
    wait_for(job, "finished")
    status, body = call("GET", f"/jobs/{job}/result")
    result = body.decode().strip()
    print(f"jobs smoke: ok: job {job} paused, resumed, finished; result {status}: {result}")
    site = json.loads(call("POST", "/sites", {"name": f"smoke-{time.time_ns()}"})[1])["id"]
    customer = json.loads(call("POST", "/customers", {"site_id": site, "name": "Ada"})[1])["id"]
    batch = [
        {"customer": customer, "site": site, "execution_time": seconds}
        for seconds in (0.0005, 0.05, 2.5)
    ]
    jobs = json.loads(call("POST", "/work", batch)[1])["jobs"]
    for placed in jobs:
        wait_for(placed["id"], "finished")
    queues = [(j["job_class"], j["queue"]) for j in jobs]
    print(f"jobs smoke: ok: site {site}, customer {customer}: 3 jobs placed {queues}, finished")
    check_pages()
    return 0


if __name__ == "__main__":
    sys.exit(main())
