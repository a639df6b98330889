"""Job control end to end: the API and real report workers, pause, resume, stop, crashes."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from e2e.stack import Stack
from support import eventually

# Job control's mechanics with real processes; the store's transitions are tested on both
# databases in tests/integration. PostgreSQL only when configured (tests/conftest.py).
pytestmark = pytest.mark.one_backend


def result_bytes(stack: Stack, job_id: str) -> tuple[bytes, str]:
    response = requests.get(f"{stack.base}/jobs/{job_id}/result", timeout=10)
    assert response.status_code == 200, response.text
    return response.content, response.headers["Content-Disposition"]


def test_pause_frees_the_worker_and_resume_continues_to_the_same_result(one_worker: Stack) -> None:
    stack = one_worker
    undisturbed = stack.work(1.0)
    stack.wait_for(undisturbed, "finished")
    paused = stack.work(1.0)
    stack.wait_for(paused, "running")

    for _ in range(3):
        assert stack.post(f"/jobs/{paused}/pause").status_code == 202
        at_pause = stack.wait_for(paused, "paused")["progress"]["fraction"]
        other = stack.work(0.1)  # the only worker is free while the job is paused
        stack.wait_for(other, "finished")
        assert stack.job(paused)["progress"]["fraction"] == at_pause
        assert stack.post(f"/jobs/{paused}/resume").status_code == 202
        stack.wait_for(paused, "running")
    finished = stack.wait_for(paused, "finished")

    assert finished["attempt"] == 4
    content, disposition = result_bytes(stack, paused)
    assert content == result_bytes(stack, undisturbed)[0]
    assert f"filename=work-{paused}.json" in disposition


def test_stop_ends_a_running_job_and_leaves_no_result(one_worker: Stack, tmp_path: Path) -> None:
    stack = one_worker
    job = stack.work(5)
    stack.wait_for(job, "running")

    assert stack.post(f"/jobs/{job}/stop").status_code == 202
    stopped = stack.wait_for(job, "stopped", timeout=5)

    assert stopped["finished_at"] is not None
    assert requests.get(f"{stack.base}/jobs/{job}/result", timeout=5).status_code == 409
    assert not (tmp_path / "data" / "files" / "results" / job).exists()
    assert stack.post(f"/jobs/{job}/resume").status_code == 409


def test_a_worker_killed_mid_job_loses_nothing_the_job_finishes_once_elsewhere(
    two_workers: Stack,
) -> None:
    stack = two_workers
    job = stack.work(3)
    stack.wait_for(job, "running")
    horse = stack.holder_pid(job)
    holder = stack.holder(job)

    holder.popen.kill()
    os.kill(horse, signal.SIGKILL)

    finished = stack.wait_for(job, "finished", timeout=30)
    assert finished["attempt"] == 2
    assert finished["progress"]["fraction"] == 1.0


def test_a_warm_shutdown_requeues_the_job_and_another_worker_finishes_it(
    two_workers: Stack,
) -> None:
    stack = two_workers
    job = stack.work(3)
    stack.wait_for(job, "running")
    holder = stack.holder(job)

    holder.signal(signal.SIGTERM)

    assert holder.wait(timeout=10) == 0
    finished = stack.wait_for(job, "finished", timeout=30)
    assert finished["attempt"] == 2
    assert "asked to checkpoint and requeue" in holder.output()


def test_a_job_that_ignores_stop_is_killed_after_the_grace_period(one_worker: Stack) -> None:
    stack = one_worker
    job = stack.work(10)
    stack.wait_for(job, "running")
    os.kill(stack.holder_pid(job), signal.SIGSTOP)  # frozen: it can no longer honour a stop

    assert stack.post(f"/jobs/{job}/stop").status_code == 202

    stopped = stack.wait_for(job, "stopped", timeout=20)
    assert stopped["progress"]["message"] == "stopped (forced)"
    next_job = stack.work(0.1)
    stack.wait_for(next_job, "finished")  # the worker is usable again


def test_every_state_change_arrives_live_over_server_sent_events(one_worker: Stack) -> None:
    stack = one_worker
    seen: list[dict[str, Any]] = []
    connected = threading.Event()

    def listen() -> None:
        with requests.get(f"{stack.base}/jobs/events", stream=True, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            for line in response.iter_lines(decode_unicode=True):
                connected.set()
                if line.startswith("data: "):
                    seen.append(json.loads(line[len("data: ") :]))
                    if seen[-1]["state"] == "finished":
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    eventually(connected.is_set, 10, "stream connected")
    job = stack.work(0.6)
    stack.wait_for(job, "running")
    stack.post(f"/jobs/{job}/pause")
    stack.wait_for(job, "paused")
    stack.post(f"/jobs/{job}/resume")
    listener.join(timeout=30)

    states = [event["state"] for event in seen if event["id"] == job]
    for expected in ["queued", "running", "pausing", "paused", "resuming", "finished"]:
        assert expected in states, states
    assert states[-1] == "finished"
    fractions = [e["progress"]["fraction"] for e in seen if e["state"] == "running"]
    assert fractions == sorted(fractions)
