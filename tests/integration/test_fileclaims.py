"""File claims in real Redis: one owner at a time, completion only by the owner, first wins."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from support import eventually
from yardmaster.shared.fileclaims import Claim, FileClaims, Lease

FILE = "2018_06_28_00_00.txt"


def claims(redis_url: str, tmp_path: Path) -> FileClaims:
    return FileClaims(redis.Redis.from_url(redis_url), tmp_path / "bucket")


def test_only_one_worker_holds_a_file_at_a_time(redis_url: str, tmp_path: Path) -> None:
    bucket = claims(redis_url, tmp_path)

    first = bucket.claim(FILE, "w1", ttl=10)
    second = bucket.claim(FILE, "w2", ttl=10)

    assert isinstance(first, Lease)
    assert second is Claim.TAKEN
    assert bucket.attempts(FILE) == 1


def test_the_owner_completes_and_nobody_can_claim_a_done_file(
    redis_url: str, tmp_path: Path
) -> None:
    bucket = claims(redis_url, tmp_path)
    lease = bucket.claim(FILE, "w1", ttl=10)
    assert isinstance(lease, Lease)

    assert bucket.complete(lease, {"worker": "w1", "minutes": 3.5}) is Claim.OURS
    assert bucket.claim(FILE, "w2", ttl=10) is Claim.DONE_ALREADY
    assert bucket.done() == {FILE: {"worker": "w1", "minutes": 3.5}}


def test_a_worker_whose_lease_expired_cannot_complete(redis_url: str, tmp_path: Path) -> None:
    bucket = claims(redis_url, tmp_path)
    stale = bucket.claim(FILE, "w1", ttl=0.05)
    assert isinstance(stale, Lease)

    def claim_again() -> Lease | None:
        result = bucket.claim(FILE, "w2", ttl=10)
        return result if isinstance(result, Lease) else None

    fresh = eventually(claim_again, 5, "claimable after expiry")

    assert not bucket.renew(stale, ttl=10)
    assert bucket.complete(stale, {"worker": "w1"}) is Claim.TAKEN
    assert bucket.complete(fresh, {"worker": "w2"}) is Claim.OURS
    assert bucket.done()[FILE] == {"worker": "w2"}
    assert fresh.fence > stale.fence


def test_renewing_keeps_the_lease_past_its_first_ttl(redis_url: str, tmp_path: Path) -> None:
    bucket = claims(redis_url, tmp_path)
    lease = bucket.claim(FILE, "w1", ttl=0.3)
    assert isinstance(lease, Lease)

    deadline = time.monotonic() + 0.9
    while time.monotonic() < deadline:
        assert bucket.renew(lease, ttl=0.3)
        time.sleep(0.05)

    assert bucket.claim(FILE, "w2", ttl=1) is Claim.TAKEN


def test_abandoning_frees_the_file_at_once(redis_url: str, tmp_path: Path) -> None:
    bucket = claims(redis_url, tmp_path)
    lease = bucket.claim(FILE, "w1", ttl=30)
    assert isinstance(lease, Lease)

    assert bucket.abandon(lease)
    assert isinstance(bucket.claim(FILE, "w2", ttl=30), Lease)


def test_each_bucket_directory_has_its_own_claims(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    one, two = FileClaims(client, tmp_path / "a"), FileClaims(client, tmp_path / "b")

    assert isinstance(one.claim(FILE, "w1", ttl=10), Lease)
    assert isinstance(two.claim(FILE, "w1", ttl=10), Lease)


def test_a_file_claimed_max_attempts_times_is_exhausted_once_its_lease_is_gone(
    redis_url: str, tmp_path: Path
) -> None:
    bucket = claims(redis_url, tmp_path)
    first = bucket.claim(FILE, "w1", ttl=10, max_attempts=2)
    assert isinstance(first, Lease)
    bucket.abandon(first)
    second = bucket.claim(FILE, "w2", ttl=10, max_attempts=2)
    assert isinstance(second, Lease)

    assert bucket.claim(FILE, "w3", ttl=10, max_attempts=2) is Claim.TAKEN
    bucket.abandon(second)
    assert bucket.claim(FILE, "w3", ttl=10, max_attempts=2) is Claim.EXHAUSTED
    assert bucket.attempts(FILE) == 2
