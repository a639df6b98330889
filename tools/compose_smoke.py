"""Smoke test of a running Compose stack (run on the host by ``compose-check --smoke``).

Waits until ``/readyz`` answers 200 through the published port and ``/status`` lists the
expected number of live processes of each kind; with ``--files-done N``, then until the file
pipeline has N files done (``/files``) and a file worker has passed its first statistics line
(5 files, ``/workers``). With ``--restart-postgres``, then restarts the PostgreSQL container
(``podman restart``) in the middle of the file day and waits for N more files: every file
once in the ledger, and no container of the stack restarted (nothing exited on the outage).
Exits 1 with what it last saw otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

EXPECTED = {"report-worker": 1, "simulator": 1}


def fetch(url: str) -> tuple[int, str]:
    """Status and body of a GET, (0, reason) when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--file-workers", type=int, default=2)
    parser.add_argument("--files-done", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument(
        "--restart-postgres",
        action="store_true",
        help="then restart PostgreSQL mid-day and check the files go on, each once",
    )
    args = parser.parse_args()
    expected = {**EXPECTED, "file-worker": args.file_workers}
    deadline = time.monotonic() + args.timeout
    if not processes_live(args.base, expected, deadline):
        return 1
    if args.files_done and not files_flowing(args.base, args.files_done, deadline):
        return 1
    if args.restart_postgres:
        return 0 if survives_a_postgres_restart(args.base, args.files_done, deadline) else 1
    return 0


def processes_live(base: str, expected: dict[str, int], deadline: float) -> bool:
    """True once /readyz is 200 and /status lists ``expected`` live processes."""
    seen = "nothing yet"
    while time.monotonic() < deadline:
        status, body = fetch(base + "/readyz")
        if status == 200:
            status, body = fetch(base + "/status")
            live = (
                {k: len(v) for k, v in json.loads(body)["services"].items()}
                if status == 200
                else {}
            )
            seen = f"/readyz 200; live processes {live}"
            if all(live.get(k, 0) == n for k, n in expected.items()):
                print(f"smoke: ok: {seen}", flush=True)
                return True
        else:
            seen = f"/readyz {status}: {body[:300]}"
        time.sleep(1)
    print(f"smoke: failed: expected {expected}, saw {seen}")
    return False


def files_flowing(base: str, files_done: int, deadline: float) -> bool:
    """True once ``files_done`` files are done and some worker completed at least 5."""
    seen = "nothing yet"
    while time.monotonic() < deadline:
        status, body = fetch(base + "/files?state=done")
        done = json.loads(body)["total"] if status == 200 else 0
        status, body = fetch(base + "/workers")
        workers = json.loads(body)["workers"] if status == 200 else []
        counts = {w["instance"]: w.get("files", 0) for w in workers}
        seen = f"{done} files done; files per worker {counts}"
        if done >= files_done and max(counts.values(), default=0) >= 5:
            print(f"smoke: ok: {seen}", flush=True)
            return True
        time.sleep(1)
    print(f"smoke: failed: expected {files_done} files done, saw {seen}")
    return False


def survives_a_postgres_restart(base: str, more_files: int, deadline: float) -> bool:
    """Restart PostgreSQL; True once ``more_files`` more files are done, each once, with no
    container of the stack restarted meanwhile."""
    _, body = fetch(base + "/files?state=done")
    before = json.loads(body)["total"]
    restarts_before = container_restarts()
    postgres = containers("postgres")
    if not postgres:
        print("smoke: failed: no running postgres container found with podman ps")
        return False
    print(f"smoke: restarting {', '.join(postgres)} with {before} files done", flush=True)
    # podman without systemd prints healthcheck errors that mean nothing here: shown on failure
    restart = ["podman", "restart", "--time", "5", *postgres]
    outcome = subprocess.run(restart, capture_output=True, text=True)
    if outcome.returncode:
        print(f"smoke: failed: {' '.join(restart)}: {outcome.stderr.strip()}")
        return False
    seen = "nothing yet"
    while time.monotonic() < deadline:
        status, body = fetch(base + "/files?state=done")
        done = json.loads(body)["total"] if status == 200 else 0
        seen = f"{done} files done (/files {status})"
        if done >= before + more_files:
            break
        time.sleep(1)
    else:
        print(f"smoke: failed: expected {before + more_files} files done, saw {seen}")
        return False
    names = done_file_names(base)
    restarted = {
        name: count
        for name, count in container_restarts().items()
        if count != restarts_before.get(name) and name not in postgres
    }
    if len(names) != len(set(names)) or restarted:
        print(
            f"smoke: failed: {len(names)} ledger rows for {len(set(names))} files;"
            f" restarted: {restarted}"
        )
        return False
    print(f"smoke: ok: PostgreSQL restarted; {seen}, each once; no process restarted", flush=True)
    return True


def project_filter() -> list[str]:
    """podman's filter for this stack's containers (the project is docker-compose.yml's name)."""
    project = os.environ.get("COMPOSE_PROJECT_NAME") or compose_file_name()
    return ["--filter", f"label=io.podman.compose.project={project}"]


def compose_file_name() -> str:
    with open("docker-compose.yml", encoding="utf-8") as handle:
        for line in handle:
            if match := re.match(r"name:\s*(\S+)", line):
                return match.group(1)
    return os.path.basename(os.getcwd())


def containers(service: str) -> list[str]:
    """The names of the stack's containers of ``service``."""
    command = ["podman", "ps", "--format", "{{.Names}}", *project_filter()]
    command += ["--filter", f"label=com.docker.compose.service={service}"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()


def container_restarts() -> dict[str, str]:
    """Each running container of the stack: when it last started, and its restart count
    (either changes when it is restarted)."""
    command = ["podman", "ps", "--format", "{{.Names}}", *project_filter()]
    names = subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()
    inspect = ["podman", "inspect", "--format", "{{.Name}} {{.State.StartedAt}} {{.RestartCount}}"]
    lines = subprocess.run(inspect + names, check=True, capture_output=True, text=True).stdout
    return dict(line.split(" ", 1) for line in lines.splitlines() if line.strip())


def done_file_names(base: str) -> list[str]:
    """Every done file's bucket and name, one per ledger row (100 per page)."""
    names: list[str] = []
    page = 1
    while True:
        _, body = fetch(f"{base}/files?state=done&page={page}")
        items = json.loads(body)["items"]
        names += [f"{item.get('bucket')}/{item['name']}" for item in items]
        if len(items) < 100:
            return names
        page += 1


if __name__ == "__main__":
    sys.exit(main())
