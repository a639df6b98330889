"""The CLI's commands over a fake API client: waiting, and what a failed job exits with."""

from __future__ import annotations

import argparse
import io
from typing import Any, TextIO

import pytest

from yardmaster.cli import commands
from yardmaster.cli.client import JSON, ApiClient
from yardmaster.cli.errors import CliError, ExitCode


class FakeClient(ApiClient):
    """Answers ``job`` with the next of the given states, and ``trigger_report`` at once."""

    def __init__(self, *states: tuple[str, float, str | None]) -> None:
        super().__init__("http://api")
        self.states = list(states)

    def job(self, job_id: str) -> JSON:
        state, fraction, error = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"id": job_id, "state": state, "progress": {"fraction": fraction}, "error": error}

    def trigger_report(self) -> JSON:
        return {"report_id": "r1", "status": "Running"}


def context(client: ApiClient, as_json: bool = False) -> commands.Context:
    return commands.Context(client, io.StringIO(), io.StringIO(), as_json, sleep=lambda _: None)


def written(stream: TextIO) -> str:
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


def test_waiting_shows_each_change_of_progress_once_and_returns_the_ended_job() -> None:
    client = FakeClient(
        ("queued", 0, None),
        ("running", 0.5, None),
        ("running", 0.5, None),
        ("finished", 1, None),
    )
    ctx = context(client)

    job = commands.wait_for(ctx, "r1")

    assert job["state"] == "finished"
    assert written(ctx.err).splitlines() == ["queued 0%", "running 50%", "finished 100%"]


def test_report_trigger_prints_only_the_id_on_stdout_and_waits_when_asked() -> None:
    ctx = context(FakeClient(("running", 0.2, None), ("finished", 1, None)))

    code = commands.report_trigger(ctx, argparse.Namespace(wait=True))

    assert (code, written(ctx.out)) == (ExitCode.OK, "r1\n")


@pytest.mark.parametrize(("state", "error"), [("failed", "no data"), ("stopped", None)])
def test_a_waited_for_job_that_does_not_finish_exits_1_saying_why(state: str, error: Any) -> None:
    ctx = context(FakeClient((state, 0.3, error)))

    with pytest.raises(CliError) as ended:
        commands.report_trigger(ctx, argparse.Namespace(wait=True))

    assert ended.value.code is ExitCode.REFUSED
    assert ended.value.message == f"report r1 {state}" + (f": {error}" if error else "")
