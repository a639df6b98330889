"""Claiming bucket files across workers: token-owned leases and first-writer-wins completion.

Every step is one Lua script, so each decision is atomic in Redis (design note file-workers.md,
section 8.3). A file is *committed* exactly once (one done record, counted by one worker); it
may be *executed* more than once when a worker dies or stalls past its lease.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import redis

from yardmaster.shared import keys

_CLAIM = """
if redis.call('hexists', KEYS[3], ARGV[1]) == 1 then return -1 end
if redis.call('exists', KEYS[1]) == 1 then return 0 end
if tonumber(redis.call('hget', KEYS[4], ARGV[1]) or '0') >= tonumber(ARGV[4]) then return -2 end
local fence = redis.call('incr', KEYS[2])
if redis.call('set', KEYS[1], ARGV[2] .. ':' .. fence, 'NX', 'PX', ARGV[3]) then
  redis.call('hincrby', KEYS[4], ARGV[1], 1)
  return fence
end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_COMPLETE = """
if redis.call('get', KEYS[1]) ~= ARGV[2] then return 0 end
redis.call('del', KEYS[1])
if redis.call('hsetnx', KEYS[2], ARGV[1], ARGV[3]) == 0 then return -1 end
return 1
"""
_ABANDON = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Claim(IntEnum):
    """What a claim or completion attempt found."""

    EXHAUSTED = -2
    DONE_ALREADY = -1
    TAKEN = 0
    OURS = 1


def bucket_id(directory: Path) -> str:
    """A short stable id of a bucket directory (workers on one directory share claims)."""
    return hashlib.sha1(str(directory.resolve()).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Lease:
    """A held claim: the file and the token that proves ownership."""

    file: str
    token: str
    fence: int


class FileClaims:
    """The claim scripts of one bucket directory."""

    def __init__(self, client: redis.Redis, directory: Path) -> None:
        self.client = client
        self.bucket = bucket_id(directory)
        self.prefix = keys.files_namespace(self.bucket)
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._complete = client.register_script(_COMPLETE)
        self._abandon = client.register_script(_ABANDON)

    def _lease_key(self, file: str) -> str:
        return f"{self.prefix}lease:{file}"

    def claim(
        self, file: str, owner: str, ttl: float, max_attempts: int = 1_000_000
    ) -> Lease | Claim:
        """Take ``file`` for ``ttl`` seconds: a Lease, or why not: done already, taken by a
        live lease, or EXHAUSTED (claimed ``max_attempts`` times already without completing)."""
        result = int(
            self._claim(
                keys=[
                    self._lease_key(file),
                    self.prefix + "fence",
                    self.prefix + "done",
                    self.prefix + "attempts",
                ],
                args=[file, owner, max(1, int(ttl * 1000)), max_attempts],
            )
        )
        if result > 0:
            return Lease(file, f"{owner}:{result}", result)
        return Claim(result)

    def renew(self, lease: Lease, ttl: float) -> bool:
        """Reset the lease's TTL if we still own it (never adds to it)."""
        return bool(
            self._renew(
                keys=[self._lease_key(lease.file)], args=[lease.token, max(1, int(ttl * 1000))]
            )
        )

    def complete(self, lease: Lease, record: dict[str, Any]) -> Claim:
        """Record the file as done if we still own its lease: OURS, TAKEN (lost) or DONE_ALREADY."""
        result = int(
            self._complete(
                keys=[self._lease_key(lease.file), self.prefix + "done"],
                args=[lease.file, lease.token, json.dumps(record)],
            )
        )
        return {1: Claim.OURS, 0: Claim.TAKEN, -1: Claim.DONE_ALREADY}[result]

    def abandon(self, lease: Lease) -> bool:
        """Give the file back at once (shutdown, unreadable file) if we still own it."""
        return bool(self._abandon(keys=[self._lease_key(lease.file)], args=[lease.token]))

    def done(self) -> dict[str, dict[str, Any]]:
        """Every done record of this bucket: file -> record."""
        raw = self.client.hgetall(self.prefix + "done")
        return {_text(k): json.loads(v) for k, v in raw.items()}

    def attempts(self, file: str) -> int:
        """How many times ``file`` was claimed."""
        return int(self.client.hget(self.prefix + "attempts", file) or 0)

    def count_lease_loss(self) -> int:
        """Count one lease lost by its worker in this bucket; the new total (``/metrics``)."""
        return int(self.client.incr(keys.file_lease_losses_key(self.bucket)))

    def lease_losses(self) -> int:
        """How many leases of this bucket were lost by their worker."""
        return int(self.client.get(keys.file_lease_losses_key(self.bucket)) or 0)
