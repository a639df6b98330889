"""Pure functions from the API's JSON to the lines a person reads (no I/O here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: The columns of ``jobs list``: (header, how to read it from a job).
JOB_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ID", "id"),
    ("KIND", "kind"),
    ("OWNER", "owner"),
    ("STATE", "state"),
    ("PROGRESS", "progress"),
    ("QUEUE", "queue"),
    ("PRIO", "priority"),
    ("CREATED", "created_at"),
    ("FINISHED", "finished_at"),
)


def text(value: Any) -> str:
    """A JSON value as a table cell: ``-`` for nothing, lists joined by commas."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, list):
        return ", ".join(text(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def percent(fraction: Any) -> str:
    """A progress fraction (0 to 1) as a whole percent, ``-`` when unknown."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        return "-"
    return f"{int(max(0.0, min(1.0, float(fraction))) * 100)}%"


def when(iso: Any) -> str:
    """An ISO 8601 UTC time as ``YYYY-MM-DD HH:MM:SS`` (the API's times are all UTC)."""
    if not isinstance(iso, str) or not iso:
        return "-"
    return iso.replace("T", " ").removesuffix("Z")[:19]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows under their headers in columns as wide as their widest cell, two spaces apart."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (headers, *rows)
    ]
    return "\n".join(lines)


def job_cell(job: Mapping[str, Any], field: str) -> str:
    """One cell of a job's row in ``jobs list``."""
    if field == "progress":
        return percent((job.get("progress") or {}).get("fraction"))
    if field.endswith("_at"):
        return when(job.get(field))
    return text(job.get(field))


def jobs_table(page: Mapping[str, Any]) -> str:
    """A page of ``GET /jobs`` as a table, with where it is among the pages."""
    items = page.get("items") or []
    if not items:
        return "no jobs"
    rows = [[job_cell(job, field) for _, field in JOB_COLUMNS] for job in items]
    body = table([header for header, _ in JOB_COLUMNS], rows)
    total, number, pages = page.get("total"), page.get("page"), page.get("pages")
    footer = f"{text(total)} job(s), page {text(number)} of {text(pages)}"
    if page.get("next"):
        footer += f" (next: --page {int(number or 1) + 1})"
    return f"{body}\n{footer}"


def job_detail(job: Mapping[str, Any]) -> str:
    """``GET /jobs/<id>`` as aligned ``name: value`` lines, then its history if it has one."""
    progress = job.get("progress") or {}
    done, total = progress.get("done"), progress.get("total")
    counted = f" ({done} of {total})" if done is not None and total else ""
    said = progress.get("message")
    message = f" {said}" if said and said != job.get("state") else ""
    result = job.get("result") or {}
    fields = [
        ("id", text(job.get("id"))),
        ("kind", text(job.get("kind"))),
        ("owner", text(job.get("owner"))),
        ("state", text(job.get("state"))),
        ("allowed", text(job.get("allowed_actions"))),
        ("progress", f"{percent(progress.get('fraction'))}{counted}{message}"),
        ("queue", f"{text(job.get('queue'))} (priority {text(job.get('priority'))})"),
        ("class", text(job.get("job_class"))),
        ("params", _params(job.get("params"))),
        ("attempt", f"{text(job.get('attempt'))} of {text(job.get('max_attempts'))}"),
        ("created", when(job.get("created_at"))),
        ("started", when(job.get("started_at"))),
        ("finished", when(job.get("finished_at"))),
        ("result", text(result.get("name"))),
        ("error", text(job.get("error"))),
    ]
    width = max(len(name) for name, _ in fields)
    lines = [f"{name + ':':<{width + 1}} {value}" for name, value in fields]
    history = job.get("history")
    if isinstance(history, list) and history:
        lines += ["", "history:", history_table(history)]
    return "\n".join(lines)


def _params(params: Any) -> str:
    if not isinstance(params, Mapping) or not params:
        return "-"
    return ", ".join(f"{key}={text(value)}" for key, value in params.items())


#: The fields of a history entry (``GET /jobs/<id>``) in the order they are read; others follow.
HISTORY_FIELDS = ("state", "from", "at", "reason")


def history_table(entries: Sequence[Any]) -> str:
    """A job's history (a list of objects) as a table of their fields, in the order given."""
    dicts = [e for e in entries if isinstance(e, Mapping)]
    present = {key for entry in dicts for key in entry}
    headers = [key for key in HISTORY_FIELDS if key in present]
    for entry in dicts:
        headers += [key for key in entry if key not in headers]
    rows = [
        [when(e.get(k)) if k == "at" or k.endswith("_at") else text(e.get(k)) for k in headers]
        for e in dicts
    ]
    return table([h.upper() for h in headers], rows) if headers else "-"


def job_line(job: Mapping[str, Any]) -> str:
    """One line about a job: after an import, an export or a control request."""
    progress = percent((job.get("progress") or {}).get("fraction"))
    allowed = text(job.get("allowed_actions"))
    return (
        f"job {text(job.get('id'))} ({text(job.get('kind'))}): {text(job.get('state'))},"
        f" {progress}; allowed now: {allowed if allowed != '-' else 'nothing'}"
    )


def progress_line(job: Mapping[str, Any]) -> str:
    """What a job is doing, for the lines printed while waiting for it."""
    progress = job.get("progress") or {}
    state, message = text(job.get("state")), progress.get("message")
    said = f"  {message}" if message and message != state else ""
    return f"{state} {percent(progress.get('fraction'))}{said}"


def report_status_line(answer: Mapping[str, Any]) -> str:
    """A not-yet-complete ``GET /get_report`` answer: Running with progress, Failed, ..."""
    status = text(answer.get("status"))
    progress = answer.get("progress")
    if isinstance(progress, Mapping):
        state = f", {answer['state']}" if answer.get("state") else ""
        said = progress.get("message")
        message = f": {said}" if said and said != answer.get("state") else ""
        return f"{status} {percent(progress.get('fraction'))}{state}{message}"
    if answer.get("error"):
        return f"{status}: {answer['error']}"
    return status


def problem_line(status: int, reason: str, problem: Mapping[str, Any]) -> str:
    """An error answer in one line: status, title, detail and what the job allows now."""
    title = problem.get("title") or reason or "Error"
    line = f"{status} {title}"
    if problem.get("detail"):
        line += f": {problem['detail']}"
    if "allowed_actions" in problem:
        allowed = text(problem.get("allowed_actions"))
        line += f" (allowed now: {allowed if allowed != '-' else 'nothing'})"
    return " ".join(line.split())  # one line, whatever the detail held


def token_line(answer: Mapping[str, Any]) -> str:
    """``POST /queue/tokens``: the token, its place and its secret claim (needed to redeem and
    release it; the ticket, which grants nothing, is left out)."""
    return (
        f"token {text(answer.get('token'))}  position {text(answer.get('position'))}"
        f"  claim {text(answer.get('claim'))}"
    )


def redeem_line(answer: Mapping[str, Any], api: str) -> str:
    """``POST /queue/redeem`` succeeded: where the picture is."""
    url = text(answer.get("image_url"))
    if url.startswith("/"):
        url = api.rstrip("/") + url
    return f"{text(answer.get('status'))}: {url}"


def saved_line(path: str, size: int) -> str:
    """Where a downloaded file went."""
    return f"saved {path} ({size} bytes)"
