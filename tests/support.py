"""Test helpers: free ports, a real Redis server per test session, real processes, deadlines."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from yardmaster.shared.embedded_redis import start_server

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(main())`` on a thread of its own, so that it also works while another
    event loop runs in this thread (Playwright's, once a browser test has started it)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("value", asyncio.run(main())))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(("error", exc))

    thread = threading.Thread(target=run, name="test-event-loop")
    thread.start()
    thread.join()
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value  # type: ignore[no-any-return]


def eventually(check: Callable[[], T | None], timeout: float = 20.0, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception as exc:
            last_error = exc
        else:
            if value:
                return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what or check}; last error: {last_error!r}")


class RedisServer:
    """A real redis-server on a free port with its own folder; can be stopped and restarted."""

    def __init__(
        self, directory: Path, persistent: bool = False, unix_socket: bool = False
    ) -> None:
        self.directory = directory
        self.persistent = persistent  # append-only file: a restart keeps every key
        # a Unix socket too (its path must stay under ~100 characters: keep ``directory`` short)
        self.unix_socket = directory / "redis.sock" if unix_socket else None
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        """The same server over its Unix socket (no TCP/IP stack on the way)."""
        assert self.unix_socket is not None, "started without unix_socket=True"
        return f"unix://{self.unix_socket}?db=0"

    def start(self) -> RedisServer:
        self.process = start_server(
            self.port,
            self.directory,
            persistent=self.persistent,
            unix_socket=self.unix_socket,
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class Process:
    """A Yardmaster process started with the same command Compose and ``make run`` use.

    Its output goes to a file (never a pipe that could fill up) that tests can read.
    """

    def __init__(self, args: list[str], env: Mapping[str, str], log: Path) -> None:
        self.args = args
        self.log = log
        #: SIGTERM was sent (by a test or a teardown).
        self.terminated = False
        self._log_handle = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, env=dict(env), stdout=self._log_handle, stderr=subprocess.STDOUT, cwd=REPO
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str | re.Pattern[str], timeout: float = 30.0) -> str:
        """The output once it holds ``text`` (or a match of the pattern); fails at once if
        the process exits first."""

        def seen() -> bool:
            output = self.output()
            if text.search(output) if isinstance(text, re.Pattern) else text in output:
                return True
            assert self.popen.poll() is None, f"exited {self.popen.returncode}:\n{self.output()}"
            return False

        eventually(seen, timeout, f"{text!r} in the output of {self.args}")
        return self.output()

    def signal(self, signum: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)
            self.terminated = self.terminated or signum == signal.SIGTERM

    def wait(self, timeout: float = 30.0) -> int:
        return self.popen.wait(timeout=timeout)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (unless already sent: a second one would be a cold shutdown), then wait; a
        process that does not stop in time is killed and fails the test."""
        if not self.terminated:
            self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise
        finally:
            self._log_handle.close()

    def close(self) -> None:
        """Stop the process if it still runs; release its log file."""
        if self.popen.poll() is None:
            self.stop()
        self._log_handle.close()


class Starter:
    """Starts ``python -m MODULE ARGS`` with settings (as Compose and ``make run`` do), each
    with its log file in ``folder`` and its data under ``folder/data`` unless told otherwise;
    :meth:`close_all` stops every one it started."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[Process] = []

    def __call__(self, module: str, *args: str, **settings: str) -> Process:
        settings.setdefault("data_dir", str(self.folder / "data"))
        log = self.folder / f"{module.rsplit('.', 1)[-1]}-{len(self.started)}.log"
        process = Process(module_command(module, *args), base_env(**settings), log)
        self.started.append(process)
        return process

    def close_all(self) -> None:
        """Stop every process: SIGTERM to all (the last started first), then wait for each,
        so their warm shutdowns overlap instead of adding up."""
        for process in reversed(self.started):
            process.signal(signal.SIGTERM)
        for process in reversed(self.started):
            process.close()


def no_bytecode_env(folder: Path) -> dict[str, str]:
    """Settings under which Python finds no cached bytecode and writes none (every start
    compiles every module: the state before ``make install`` compiled bytecode)."""
    empty = folder / f"no-pycache-{time.monotonic_ns()}"
    empty.mkdir()
    return {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(empty)}


def base_env(**settings: str) -> dict[str, str]:
    """The environment of a child process: this one's, minus YARDMASTER_*, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YARDMASTER_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update({f"YARDMASTER_{k.upper()}": v for k, v in settings.items()})
    return env


def module_command(module: str, *args: str) -> list[str]:
    """``python -m module args...`` with this interpreter."""
    return [PYTHON, "-m", module, *args]


def bearer(token: str) -> dict[str, str]:
    """The Authorization header that presents ``token``."""
    return {"Authorization": f"Bearer {token}"}
