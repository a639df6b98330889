"""The file worker counts every lease it loses in Redis (read by ``/metrics``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine

from support import eventually
from yardmaster.file_worker.core.tunables import Tunables
from yardmaster.file_worker.worker import FileWorker
from yardmaster.shared.fileclaims import Claim, FileClaims, Lease
from yardmaster.shared.migrate import upgrade_to_head

FILE = "2018_06_28_00_00.txt"
#: A short lease renewed often, so a loss is noticed within a fraction of a second.
TUNABLES = Tunables(lease_ttl=1.0, heartbeat=0.05, margin=0.25, poll=0.01)


class LeaseRunsOutBeforeTheFirstCompletion(FileClaims):
    """Claims whose first completion arrives just after the lease expired."""

    expired_once = False

    def complete(self, lease: Lease, record: dict[str, Any]) -> Claim:
        if not self.expired_once:
            self.expired_once = True
            self.client.delete(self._lease_key(lease.file))
        return super().complete(lease, record)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def bucket(tmp_path: Path, engine: Engine) -> Path:
    upgrade_to_head(engine)
    path = tmp_path / "bucket"
    path.mkdir()
    return path


@contextmanager
def running_worker(claims: FileClaims, engine: Engine, bucket: Path) -> Iterator[FileWorker]:
    stop = threading.Event()
    worker = FileWorker(bucket, "fw-1", claims, engine, TUNABLES, 0.05, stop, say=lambda _: None)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(timeout=10)


def test_a_lease_taken_over_mid_file_is_counted_once(
    client: redis.Redis, engine: Engine, bucket: Path
) -> None:
    (bucket / FILE).write_text("100\n")  # 5 s of work: the lease is lost long before
    claims = FileClaims(client, bucket)
    with running_worker(claims, engine, bucket):
        lease_key = eventually(lambda: client.keys("*:lease:*"), 10, "a claim")[0]
        client.set(lease_key, "another-worker:99")  # its renewal is now refused

        assert eventually(claims.lease_losses, 10, "the loss counted") == 1
    assert claims.done() == {}


def test_a_completion_refused_because_the_lease_ran_out_is_counted(
    client: redis.Redis, engine: Engine, bucket: Path
) -> None:
    (bucket / FILE).write_text("1\n")
    claims = LeaseRunsOutBeforeTheFirstCompletion(client, bucket)
    with running_worker(claims, engine, bucket):
        eventually(claims.done, 10, "done at the second attempt")

    assert claims.lease_losses() == 1
    assert claims.attempts(FILE) == 2
