"""The command line: ``yardmaster [global options] COMMAND ...``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from yardmaster.cli import commands

DEFAULT_API = "http://127.0.0.1:8000"
TABLES = ("store_status", "business_hours", "timezones")  # what POST /imports accepts
STATES = (
    "queued",
    "on_hold",
    "running",
    "pausing",
    "paused",
    "resuming",
    "stopping",
    "stopped",
    "finished",
    "failed",
)
KINDS = ("report", "import", "export", "work")

EPILOG = """\
environment:
  YARDMASTER_API     the API's address when --api is not given (default %(api)s)
  YARDMASTER_TOKEN   the access token when --token is not given
  YARDMASTER_CLAIM   queue redeem/release: the token's claim when --claim is not given

exit codes:
  0  success
  1  the API refused the request (a 4xx not below), or the job failed or was stopped
  2  usage error (or the file to import does not exist)
  3  cannot reach the API (connection error, timeout, or a 5xx answer)
  4  authentication or authorisation (401, 403)
  5  not found (404)
  6  conflict: not allowed in the job's current state (409)
  7  report get: the report is still running (poll again later)
"""


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The whole command line; ``env`` supplies the defaults of --api and --token."""
    parser = argparse.ArgumentParser(
        prog="yardmaster",
        description="Command-line client of the Yardmaster API.",
        epilog=EPILOG % {"api": DEFAULT_API},
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(parser, env)
    common = argparse.ArgumentParser(add_help=False)  # the same options after the command
    add_global_options(common, env, suppress=True)
    groups = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_jobs(groups, common)
    add_report(groups, common)
    add_data(groups, common)
    add_queue(groups, common, env)
    return parser


def add_global_options(
    parser: argparse.ArgumentParser, env: Mapping[str, str], suppress: bool = False
) -> None:
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--api",
        type=api_url,
        default=default(env.get("YARDMASTER_API") or DEFAULT_API),
        help="the API's address (env YARDMASTER_API)",
    )
    parser.add_argument(
        "--token",
        default=default(env.get("YARDMASTER_TOKEN") or None),
        help="access token, sent as 'Authorization: Bearer T' (env YARDMASTER_TOKEN)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the API's JSON as is",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=default(30.0),
        metavar="S",
        help="seconds to wait for each answer (default 30)",
    )


def api_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"not an http:// or https:// address: {value!r}")
    return value.rstrip("/")


def seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {value!r}")
    return number


def whole(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of at least 1: {value!r}")
    return int(value)


Groups = Any  # argparse's _SubParsersAction, private


def leaf(
    groups: Groups, name: str, common: argparse.ArgumentParser, about: str, run: commands.Command
) -> Any:
    sub = groups.add_parser(name, parents=[common], help=about, description=about)
    sub.set_defaults(run=run)
    return sub


def add_jobs(groups: Groups, common: argparse.ArgumentParser) -> None:
    jobs = groups.add_parser("jobs", help="list, show, pause, resume, stop and fetch jobs")
    sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    listing = leaf(sub, "list", common, "jobs, newest first", commands.jobs_list)
    for name, values in (("state", STATES), ("kind", KINDS)):
        listing.add_argument(
            f"--{name}",
            action="append",
            default=[],
            choices=values,
            metavar=name.upper(),
            help=f"only these (repeatable): {', '.join(values)}",
        )
    listing.add_argument("--owner", help="only this customer's jobs (a customer id)")
    listing.add_argument("--page", type=whole, default=1, metavar="N", help="default 1")
    listing.add_argument("--per-page", type=whole, default=50, metavar="N", help="default 50")
    leaf(sub, "show", common, "one job", commands.jobs_show).add_argument("id")
    for action in ("pause", "resume", "stop"):
        control = leaf(sub, action, common, f"{action} a job", commands.jobs_control)
        control.add_argument("id")
        control.set_defaults(action=action)
    fetch = leaf(sub, "fetch", common, "download a finished job's result", commands.jobs_fetch)
    fetch.add_argument("id")
    add_output(fetch)


def add_report(groups: Groups, common: argparse.ArgumentParser) -> None:
    report = groups.add_parser("report", help="trigger and get store uptime reports")
    sub = report.add_subparsers(dest="report_command", required=True, metavar="ACTION")
    trigger = leaf(sub, "trigger", common, "start a report; prints its id", commands.report_trigger)
    trigger.add_argument("--wait", action="store_true", help="show progress until it ends")
    get = leaf(
        sub, "get", common, "save the report's CSV (exit 7 while running)", commands.report_get
    )
    get.add_argument("id")
    add_output(get)


def add_data(groups: Groups, common: argparse.ArgumentParser) -> None:
    load = leaf(groups, "import", common, "upload a CSV into a table", commands.import_file)
    load.add_argument("file")
    load.add_argument("--table", required=True, choices=TABLES)
    load.add_argument("--mode", choices=("replace", "append"), help="default replace")
    load.add_argument("--wait", action="store_true", help="show progress until it ends")
    out = leaf(groups, "export", common, "store polls in a time range, as CSV", commands.export)
    when = "ISO 8601 date or time (UTC unless a zone is given)"
    out.add_argument("--from", dest="start", required=True, metavar="DATE", help=when)
    out.add_argument("--till", required=True, metavar="DATE", help=f"{when}; excluded")
    out.add_argument("--wait", action="store_true", help="show progress until it ends")
    add_output(out, "wait for the export and save its CSV to FILE ('-': stdout)")


def add_queue(groups: Groups, common: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    queue = groups.add_parser("queue", help="take, redeem and release turn-queue tokens")
    sub = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    leaf(sub, "take", common, "join the queue: a token and its secret claim", commands.queue_take)
    turns = {
        "redeem": ("exchange a token at the head for a picture", commands.queue_redeem),
        "release": ("done looking: the next turn starts now", commands.queue_release),
    }
    claim = env.get("YARDMASTER_CLAIM") or None
    for name, (about, run) in turns.items():
        turn = leaf(sub, name, common, about, run)
        turn.add_argument("token")
        turn.add_argument(
            "--claim",
            default=claim,
            required=claim is None,
            help="the claim that came with the token (env YARDMASTER_CLAIM)",
        )


def add_output(
    parser: argparse.ArgumentParser,
    describe: str = "where to save it ('-': stdout; default: the server's name, kept if it exists)",
) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help=describe)
