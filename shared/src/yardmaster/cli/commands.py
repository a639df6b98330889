"""What each command does: call the API through the client, print through the formatters."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import requests

from yardmaster.cli import formatting as fmt
from yardmaster.cli.client import JSON, ApiClient, chunks
from yardmaster.cli.errors import CliError, ExitCode
from yardmaster.cli.files import copy_text, download_name, save

#: States a job never leaves.
TERMINAL = frozenset({"finished", "failed", "stopped"})


@dataclass
class Context:
    """What every command works with: the API client, the output streams, the output mode."""

    client: ApiClient
    out: TextIO
    err: TextIO
    as_json: bool = False
    poll_seconds: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep)

    def show(self, answer: Any, line: str) -> None:
        """The API's JSON as is (``--json``), else the line made for people."""
        print(json.dumps(answer, indent=2) if self.as_json else line, file=self.out)


Command = Callable[[Context, argparse.Namespace], ExitCode]  #: what a parser leaf runs


def jobs_list(ctx: Context, args: argparse.Namespace) -> ExitCode:
    page = ctx.client.list_jobs(args.state, args.kind, args.owner, args.page, args.per_page)
    ctx.show(page, fmt.jobs_table(page))
    return ExitCode.OK


def jobs_show(ctx: Context, args: argparse.Namespace) -> ExitCode:
    job = ctx.client.job(args.id)
    ctx.show(job, fmt.job_detail(job))
    return ExitCode.OK


def jobs_control(ctx: Context, args: argparse.Namespace) -> ExitCode:
    job = ctx.client.control(args.id, args.action)
    ctx.show(job, fmt.job_line(job))
    return ExitCode.OK


def jobs_fetch(ctx: Context, args: argparse.Namespace) -> ExitCode:
    download(ctx, ctx.client.result(args.id), args.output, f"{args.id}.result")
    return ExitCode.OK


def report_trigger(ctx: Context, args: argparse.Namespace) -> ExitCode:
    answer = ctx.client.trigger_report()
    report_id = str(answer["report_id"])
    ctx.show(answer, report_id)
    if not args.wait:
        return ExitCode.OK
    job = wait_for(ctx, report_id)
    if job["state"] != "finished":
        reason = f": {job['error']}" if job.get("error") else ""
        raise CliError(f"report {report_id} {job['state']}{reason}", ExitCode.REFUSED)
    print(f"Complete: yardmaster report get {report_id}", file=ctx.err)
    return ExitCode.OK


def report_get(ctx: Context, args: argparse.Namespace) -> ExitCode:
    response = ctx.client.report(args.id)
    if not response.headers.get("Content-Type", "").startswith("text/csv"):
        answer: JSON = response.json()
        status = answer.get("status")
        if status == "Running":
            ctx.show(answer, fmt.report_status_line(answer))
            return ExitCode.RUNNING
        if ctx.as_json:
            ctx.show(answer, "")
        raise CliError(f"report {args.id}: {fmt.report_status_line(answer)}", ExitCode.REFUSED)
    download(ctx, response, args.output, f"report-{args.id}.csv")
    return ExitCode.OK


def import_file(ctx: Context, args: argparse.Namespace) -> ExitCode:
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"{path}: no such file", ExitCode.USAGE)
    job = ctx.client.import_file(path, args.table, args.mode)
    ctx.show(job, fmt.job_line(job))
    return finish(ctx, job) if args.wait else ExitCode.OK


def export(ctx: Context, args: argparse.Namespace) -> ExitCode:
    job = ctx.client.export(args.start, args.till)
    if args.output is None:
        ctx.show(job, fmt.job_line(job))
        return finish(ctx, job) if args.wait else ExitCode.OK
    if not ctx.as_json:  # --json: one document, the saved file's
        print(fmt.job_line(job), file=ctx.out)
    finish(ctx, job)
    download(ctx, ctx.client.result(str(job["id"])), args.output, "export.csv")
    return ExitCode.OK


def queue_take(ctx: Context, args: argparse.Namespace) -> ExitCode:
    answer = ctx.client.take_token()
    ctx.show(answer, fmt.token_line(answer))
    return ExitCode.OK


def queue_redeem(ctx: Context, args: argparse.Namespace) -> ExitCode:
    answer = ctx.client.redeem(args.token, args.claim)
    ctx.show(answer, fmt.redeem_line(answer, ctx.client.base))
    return ExitCode.OK


def queue_release(ctx: Context, args: argparse.Namespace) -> ExitCode:
    answer = ctx.client.release(args.token, args.claim)
    ctx.show(answer, str(answer.get("status")))
    return ExitCode.OK


def finish(ctx: Context, job: JSON) -> ExitCode:
    """Wait for ``job`` to end: OK when it finished, else a CliError saying why not."""
    ended = wait_for(ctx, str(job["id"]))
    if ended["state"] != "finished":
        reason = f": {ended['error']}" if ended.get("error") else ""
        raise CliError(f"job {ended['id']} {ended['state']}{reason}", ExitCode.REFUSED)
    return ExitCode.OK


def wait_for(ctx: Context, job_id: str) -> JSON:
    """Poll the job until it is finished, failed or stopped, showing its progress on stderr
    (one line per change; rewritten in place on a terminal). Paused jobs are waited for."""
    live = ctx.err.isatty()
    shown = ""
    while True:
        job = ctx.client.job(job_id)
        line = fmt.progress_line(job)
        if line != shown:
            print(f"\r{line:<60}" if live else line, end="" if live else "\n", file=ctx.err)
            ctx.err.flush()
            shown = line
        if job.get("state") in TERMINAL:
            if live:
                print(file=ctx.err)
            return job
        ctx.sleep(ctx.poll_seconds)


def download(ctx: Context, response: requests.Response, output: str | None, fallback: str) -> None:
    """Write a streamed answer to ``output`` (``-``: stdout), or to the server's file name in
    the current folder, which is never overwritten."""
    if output == "-":
        copy_text(chunks(response), ctx.out)
        return
    if output is None:
        target = Path(download_name(response.headers.get("Content-Disposition"), fallback))
        if target.exists():
            response.close()
            raise CliError(f"{target} exists already: name another file with -o", ExitCode.REFUSED)
    else:
        target = Path(output)
    size = save(chunks(response), target)
    ctx.show({"file": str(target), "bytes": size}, fmt.saved_line(str(target), size))
