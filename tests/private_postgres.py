"""A PostgreSQL server of a test's own, on a free port, that the test may stop and start.

Never the machine's shared server: a test that restarts it would break every other test.
Uses the machine's PostgreSQL binaries (``pg_config --bindir``, else the newest under
/usr/lib/postgresql); as root, runs them as the ``postgres`` user (initdb refuses root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import psycopg

from support import free_port


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are, or None when this machine has no PostgreSQL server
    (Debian's own folders first: what is on PATH may be its wrappers)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parts)
    if versions:
        return versions[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


class PrivatePostgres:
    """initdb into ``directory``, then start/stop on demand; trust auth, database ``test``."""

    def __init__(self, directory: Path) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
        self.bindir = bindir
        self.directory = directory
        self.data = directory / "pgdata"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/test"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{Path(command[0]).name} failed: {done.stderr.strip()}")

    def create(self) -> PrivatePostgres:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
            for parent in self.directory.parents:  # let postgres reach its folder
                if parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o011)
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.start()
        with psycopg.connect(
            self.url.removesuffix("/test") + "/postgres", autocommit=True
        ) as admin:
            admin.execute("CREATE DATABASE test")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.directory / "server.log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as a restart in production does."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
