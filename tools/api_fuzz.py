"""``make api-fuzz``: schemathesis against a real API, driven by the API's own ``/openapi.json``.

Starts what the API needs on this machine (an embedded Redis unless ``--redis-url`` is given, a
fresh SQLite database under a temporary folder, migrated), then the API itself with the
command Compose and ``make run`` use, behind access tokens (the admin token goes to
schemathesis as a header). Every documented operation is then fuzzed, except the event
streams (they never end), with these checks: no 5xx, statuses, content types and bodies as
documented, schema-violating input refused with 4xx, operations that need a token refused
without one, and (``tools/api_fuzz_checks.py``) every answer ``nosniff`` and every page under
its Content-Security-Policy, never framed. The pages and files outside the document (``/docs``,
the dashboard's static files) are checked for the same headers first. Exits with
schemathesis's status (0: no failures); the API's log is printed when something failed.

    .venv/bin/python tools/api_fuzz.py [--max-examples N] [--seed S] [-- schemathesis args]
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from yardmaster.shared.embedded_redis import start_server

PYTHON = sys.executable
SCHEMATHESIS = str(Path(PYTHON).with_name("schemathesis"))
REPO = Path(__file__).resolve().parent.parent
#: Streams that never end: nothing to check in a finite response.
STREAMS = ("/jobs/events", "/queue/events", "/files/events")
#: Our own checks of every answer (registered with schemathesis by this file).
OWN_CHECKS = Path(__file__).with_name("api_fuzz_checks.py")
#: Pages and files that are not API operations (so not in the document), checked directly.
PAGES = ("/docs", "/queue/", "/static/dashboard.css", "/static/js/main.js")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
    "answers_are_never_sniffed",
    "pages_carry_their_content_security_policy",
)
#: Links are the documented ones plus those found by analysing the schema; links inferred
#: from URLs in answers are off, as they lead to the streams (the index lists every URL).
#: PATCH bodies are not checked for refusal: schemathesis's coverage phase sends a site or
#: customer that lacks ``name`` (invalid for POST) to PATCH, where every field is optional,
#: and reports its acceptance as a failure.
CONFIG = f"""
[checks]
enabled = false
{"".join(f"{check}.enabled = true{chr(10)}" for check in CHECKS)}
[phases.stateful.inference]
algorithms = ["dependency-analysis"]

[[operations]]
include-method = "PATCH"
checks.negative_data_rejection.enabled = false
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tools/api_fuzz.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--redis-url", default=os.environ.get("YARDMASTER_REDIS_URL", ""))
    parser.add_argument("--max-examples", type=int, default=25, help="per operation (25)")
    parser.add_argument("--seed", type=int, help="for a reproducible run")
    parser.add_argument("--report-dir", help="keep schemathesis's JUnit report here")
    parser.add_argument("extra", nargs="*", help="more schemathesis arguments (after --)")
    return parser.parse_args(argv)


@contextmanager
def redis_for(url: str, folder: Path) -> Iterator[str]:
    """``url``, or an embedded Redis server's for as long as the block runs."""
    if url:
        yield url
        return
    port = free_port()
    server = start_server(port, folder / "redis", persistent=False)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_ready(base: str, api: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Poll ``/readyz`` until it answers 200; raise if the API exits or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise RuntimeError(f"the API exited with status {api.returncode}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the API was not ready within {timeout:.0f} s")


def schemathesis_command(
    base: str, admin_token: str, args: argparse.Namespace, config: Path
) -> list[str]:
    """The schemathesis run: every operation but the streams, bounded examples."""
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(config),
        "run",
        f"{base}/openapi.json",
        "--header",
        f"Authorization: Bearer {admin_token}",
        "--max-examples",
        str(args.max_examples),
        "--request-timeout",
        "10",
        "--workers",  # one: hypothesis's lambda introspection is not thread-safe
        "1",
        "--no-color",
        "--suppress-health-check",
        "too_slow,filter_too_much",
        "--generation-database",
        "none",
    ]
    for path in STREAMS:
        command += ["--exclude-path", path]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    if args.report_dir:
        report_dir = str(Path(args.report_dir).resolve())
        command += ["--report", "junit", "--report-dir", report_dir]
    return command + list(args.extra)


def page_header_problems(base: str) -> list[str]:
    """What is missing from the headers of :data:`PAGES` and of the dashboard (empty: none)."""
    problems = []
    for path in (*PAGES, "/"):
        request = urllib.request.Request(base + path, headers={"Accept": "text/html"})
        with urllib.request.urlopen(request, timeout=10) as response:
            headers = response.headers
        if headers.get("X-Content-Type-Options") != "nosniff":
            problems.append(f"{path}: no X-Content-Type-Options: nosniff")
        policy = headers.get("Content-Security-Policy") or ""
        if "frame-ancestors 'none'" not in policy or "unsafe-inline" in policy:
            problems.append(f"{path}: Content-Security-Policy {policy!r}")
    return problems


def api_env(folder: Path, redis_url: str, admin_token: str) -> dict[str, str]:
    """The API's environment: this one's minus YARDMASTER_*, plus the fuzzing settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YARDMASTER_")}
    env.update(
        PYTHONUNBUFFERED="1",
        YARDMASTER_REDIS_URL=redis_url,
        YARDMASTER_DATABASE_URL=f"sqlite:///{folder / 'fuzz.db'}",
        YARDMASTER_DATA_DIR=str(folder / "data"),
        YARDMASTER_API_TOKENS=f"admin={admin_token},customer-1={secrets.token_urlsafe(16)}",
        YARDMASTER_API_WORKERS="1",
        YARDMASTER_MAX_UPLOAD_MB="1",
        # A redeemed token that was never issued bans the caller (here: the fuzzer) from the
        # queue; a short ban lets the queue's other answers be tested too.
        YARDMASTER_QUEUE_BAN_SECONDS="1",
    )
    return env


def fuzz(args: argparse.Namespace, folder: Path, redis_url: str) -> int:
    """Migrate, start the API, run schemathesis; the API's log when anything failed."""
    admin_token = secrets.token_urlsafe(24)
    env = api_env(folder, redis_url, admin_token)
    subprocess.run([PYTHON, "-m", "yardmaster.shared.migrate"], env=env, check=True, cwd=REPO)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = folder / "api.log"
    with open(log_path, "wb") as log:
        api = subprocess.Popen(
            [PYTHON, "-m", "yardmaster.api", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        try:
            wait_ready(base, api)
            for problem in (problems := page_header_problems(base)):
                print(f"page headers: {problem}")
            config = folder / "schemathesis.toml"
            config.write_text(CONFIG)
            command = schemathesis_command(base, admin_token, args, config)
            # run in the temporary folder: schemathesis keeps its cache (.schemathesis/) there
            hooks = {**os.environ, "SCHEMATHESIS_HOOKS": str(OWN_CHECKS)}
            status = subprocess.run(command, check=False, cwd=folder, env=hooks).returncode
            status = status or (1 if problems else 0)
        finally:
            api.terminate()
            api.wait(timeout=30)
    api_log = log_path.read_text(errors="replace")
    if status != 0 or "Traceback" in api_log:
        print("--- API log (errors) ---")
        print("\n".join(line for line in api_log.splitlines() if '" 2' not in line)[-20000:])
    return status or (1 if "Traceback" in api_log else 0)


def main(argv: list[str] | None = None) -> int:
    """Fuzz the API; return 0 when schemathesis found nothing and the API logged no error."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="yardmaster-fuzz-") as tmp:
        folder = Path(tmp)
        with redis_for(args.redis_url, folder) as redis_url:
            return fuzz(args, folder, redis_url)


if __name__ == "__main__":
    sys.exit(main())
