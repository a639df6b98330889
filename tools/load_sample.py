"""``make load-sample``: generate realistic store data and import it through the running API.

Writes the three files with ``python -m yardmaster.simulator.stores`` (14,092 stores, about
1.8 M polls, 110 MB; ``--stores`` for fewer) into ``.data/sample/`` (``--out``), then uploads
each to ``POST /imports`` of the API (``--api``, default http://127.0.0.1:8000, so run
``make run`` first) and follows the import jobs until they finish, with a progress bar for the
upload and then for the import (plain lines when the output is not a terminal).

An upload cut off or answered 503 (a busy database) is sent again a few times (after the
``Retry-After`` the API gives); a job is followed through an API restart. Every error is one
line, and the exit status is 1 (130 after Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import IO, Any

import requests

FILES = [("store_status.csv", "store_status"), ("menu_hours.csv", "business_hours"),
         ("timezones.csv", "timezones")]  # fmt: skip
#: Sending a file, counting the first try; waits between tries double from 1 s.
UPLOAD_ATTEMPTS = 5
#: How long a job is followed while the API does not answer (``make run`` restarts it).
API_LOST_PATIENCE = 120.0
TERMINAL_STATES = ("finished", "failed", "stopped")


class LoadError(Exception):
    """Something the user must know, said in one line."""


class Bar:
    """One task's progress: a redrawn bar on a terminal, else a plain line every 10 %."""

    def __init__(self, label: str, out: IO[str] = sys.stdout) -> None:
        self.label = label
        self.out = out
        self.tty = out.isatty()
        self.drawn = 0.0
        self.step = -1

    def show(self, fraction: float, detail: str = "") -> None:
        """Show ``fraction`` (0 to 1) done; redrawn at most ten times a second."""
        fraction = max(0.0, min(1.0, fraction))
        if self.tty:
            if time.monotonic() - self.drawn >= 0.1:
                self._draw(fraction, detail)
        elif int(fraction * 10) > self.step and fraction < 1:  # end() says the last word
            self.step = int(fraction * 10)
            self.out.write(f"{self.label}: {percent(fraction)} {detail}\n")
            self.out.flush()

    def note(self, detail: str) -> None:
        """A line that must be seen (waiting for the API, say); the progress starts again."""
        self.step = -1
        if self.tty:
            self._draw(None, detail)
        else:
            self.out.write(f"{self.label}: {detail}\n")
            self.out.flush()

    def end(self, detail: str) -> None:
        """The last word on this task, on a line of its own."""
        if self.tty:
            self._draw(None, detail)
            self.out.write("\n")
        else:
            self.out.write(f"{self.label}: {detail}\n")
        self.out.flush()

    def _draw(self, fraction: float | None, detail: str) -> None:
        """Redraw the line: the bar (if ``fraction`` is given), then as much detail as fits."""
        self.drawn = time.monotonic()
        width = shutil.get_terminal_size().columns - 1
        shown = f"{self.label} {bar_text(fraction)} " if fraction is not None else f"{self.label}: "
        line = (shown + detail)[:width]
        self.out.write(f"\r{line:<{width}}")
        self.out.flush()


def bar_text(fraction: float, width: int = 20) -> str:
    """``[#######.............]  37%``"""
    filled = round(fraction * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {percent(fraction)}"


def percent(fraction: float) -> str:
    """`` 99%`` until it is all done (never rounded up to 100 %)."""
    return f"{int(fraction * 100):3d}%"


class MultipartUpload:
    """A ``multipart/form-data`` body with form ``fields`` and one file, read from disk as it
    is sent (never whole in memory), calling ``on_sent(bytes_so_far, total)`` as it goes."""

    def __init__(
        self, path: Path, fields: dict[str, str], on_sent: Callable[[int, int], None]
    ) -> None:
        boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={boundary}"
        head = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, v in fields.items()
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{path.name}"\r\nContent-Type: text/csv\r\n\r\n'
        )
        self.head, self.path, self.tail = head.encode(), path, f"\r\n--{boundary}--\r\n".encode()
        self.total = len(self.head) + path.stat().st_size + len(self.tail)
        self.sent = 0
        self.on_sent = on_sent
        self._chunks = self._read_all()

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        """Close the file if it is still being read (a cut upload)."""
        self._chunks.close()

    def read(self, size: int = -1) -> bytes:
        """The next chunk (``size`` is a hint; b"" at the end)."""
        chunk = next(self._chunks, b"")
        self.sent += len(chunk)
        self.on_sent(self.sent, self.total)
        return chunk

    def _read_all(self) -> Generator[bytes, None, None]:
        yield self.head
        with open(self.path, "rb") as handle:
            while chunk := handle.read(256 * 1024):
                yield chunk
        yield self.tail


#: What a network failure's text contains → how to say it.
NETWORK_REASONS = [("refused", "connection refused"), ("reset", "connection reset"),
                   ("aborted", "connection aborted"), ("timed out", "timed out"),
                   ("Name or service not known", "unknown host")]  # fmt: skip


def reason(exc: BaseException) -> str:
    """A few words for a network failure: "connection refused", "connection reset", ..."""
    text = str(exc)
    return next((words for needle, words in NETWORK_REASONS if needle in text), type(exc).__name__)


def retry_after(response: requests.Response, default: float) -> float:
    """The ``Retry-After`` seconds of a response (at most a minute), else ``default``."""
    try:
        return min(60.0, max(0.0, float(response.headers.get("Retry-After", ""))))
    except ValueError:
        return default


def problem_detail(response: requests.Response) -> str:
    """``413 Request Entity Too Large: ...``: the status and what the API said about it."""
    try:
        body = response.json()
        said = str(body.get("detail") or body.get("title") or "")
    except ValueError:
        said = response.text.strip()[:200]
    return f"{response.status_code} {response.reason}" + (f": {said}" if said else "")


def check_api(api: str) -> None:
    """Wait (up to a minute) for ``/readyz``; raise :class:`LoadError` if nothing answers."""
    deadline = time.monotonic() + 60
    said = False
    while True:
        try:
            response = requests.get(f"{api}/readyz", timeout=5)
        except requests.RequestException as exc:
            raise LoadError(
                f"cannot reach the API at {api} ({reason(exc)}); start it with make run "
                "in another terminal (or give --api)"
            ) from None
        if response.status_code == 200:
            return
        if time.monotonic() > deadline:
            raise LoadError(f"the API at {api} is not ready ({problem_detail(response)})")
        if not said:
            print(f"load-sample: waiting for the API at {api} to be ready", flush=True)
            said = True
        time.sleep(1)


def generate(out: Path, stores: int) -> None:
    """Write the three sample files into ``out``."""
    print(f"load-sample: generating {stores:,} stores of sample data into {out}/", flush=True)
    command = [sys.executable, "-m", "yardmaster.simulator.stores", "--out", str(out)]
    done = subprocess.run(
        [*command, "--stores", str(stores)], capture_output=True, text=True, check=False
    )
    if done.returncode:
        last = (done.stderr.strip().splitlines() or [f"status {done.returncode}"])[-1]
        raise LoadError(f"generating the sample data failed: {last}")
    print(f"load-sample: {done.stdout.strip()}", flush=True)


def upload(api: str, path: Path, table: str) -> str:
    """Send ``path`` to ``POST /imports`` (again after a cut or a 503); the import job's id."""
    bar = Bar(f"{path.name} upload")
    wait = 1.0
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        body = MultipartUpload(path, {"table": table}, lambda n, t: bar.show(n / t, mb(n, t)))
        try:
            response = post(api, body)
        except requests.RequestException as exc:
            why = reason(exc)
        else:
            if response.status_code == 202:
                bar.end(f"sent {mb(body.total, body.total)}")
                return str(response.json()["id"])
            if response.status_code != 503:
                raise LoadError(f"the API refused {path.name}: {problem_detail(response)}")
            why, wait = "the API is busy (503)", retry_after(response, wait)
        finally:
            body.close()
        if attempt == UPLOAD_ATTEMPTS:
            raise LoadError(f"could not upload {path.name} after {attempt} tries ({why})")
        bar.note(f"{why}; sending again in {wait:g} s (try {attempt + 1} of {UPLOAD_ATTEMPTS})")
        time.sleep(wait)
        wait = min(wait * 2, 30.0)
    raise AssertionError("unreachable")


def post(api: str, body: MultipartUpload) -> requests.Response:
    return requests.post(
        f"{api}/imports",
        data=body,
        headers={"Content-Type": body.content_type, **auth_header()},
        timeout=(5, 600),
    )


def auth_header() -> dict[str, str]:
    """``Authorization: Bearer`` with ``YARDMASTER_TOKEN`` when it is set (as the CLI does)."""
    token = os.environ.get("YARDMASTER_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def mb(done: int, total: int) -> str:
    return f"{done / 1e6:.1f}/{total / 1e6:.1f} MB"


def follow(api: str, job_id: str, label: str) -> dict[str, Any]:
    """Show the job's progress until it ends (waiting out an API that does not answer for a
    while); the job as last seen."""
    bar = Bar(f"{label} import")
    began = time.monotonic()
    lost_since: float | None = None
    while True:
        try:
            response = requests.get(f"{api}/jobs/{job_id}", headers=auth_header(), timeout=10)
            response.raise_for_status()
            job: dict[str, Any] = response.json()
        except requests.RequestException as exc:
            lost_since = lost_since or time.monotonic()
            if time.monotonic() - lost_since > API_LOST_PATIENCE:
                why = reason(exc)
                raise LoadError(f"lost the API while following job {job_id} ({why})") from None
            bar.note(f"the API does not answer ({reason(exc)}); waiting for it")
            time.sleep(1)
            continue
        lost_since = None
        progress, state = job["progress"], job["state"]
        if state in TERMINAL_STATES:
            took = time.monotonic() - began
            bar.end(f"{state} in {took:.0f} s ({progress['done']:,} rows)")
            return job
        said = progress["message"]
        bar.show(float(progress["fraction"]), said if said == state else f"{state}: {said}")
        time.sleep(0.5)


def load(args: argparse.Namespace) -> None:
    """Check the API, generate the files, then upload and import each in turn."""
    check_api(args.api)
    generate(args.out, args.stores)
    for name, table in FILES:
        job_id = upload(args.api, args.out / name, table)
        job = follow(args.api, job_id, name)
        if job["state"] != "finished":
            why = job.get("error") or "no reason given"
            raise LoadError(f"importing {name} {job['state']}: {why}")


def fail(line: str) -> None:
    """One line on stderr (on a line of its own when a bar was being drawn)."""
    sys.stdout.flush()
    start = "\n" if sys.stdout.isatty() else ""
    print(f"{start}load-sample: {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make load-sample",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=Path(".data/sample"))
    parser.add_argument("--stores", type=int, default=14_092)
    args = parser.parse_args(argv)
    args.api = args.api.rstrip("/")
    began = time.monotonic()
    try:
        load(args)
    except KeyboardInterrupt:
        fail("interrupted (an import already sent goes on in the stack)")
        return 130
    except LoadError as exc:
        fail(str(exc))
        return 1
    except requests.RequestException as exc:
        fail(f"the API at {args.api} failed us ({reason(exc)})")
        return 1
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename or ''}")
        return 1
    took = time.monotonic() - began
    print(f"load-sample: done in {took:.0f} s. Now: curl -X POST {args.api}/trigger_report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
