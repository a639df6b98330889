"""Token-owned leases in Redis: ``SET key token NX PX ttl``; renew and release only by the owner.

A lease whose renewal fails is lost: its holder must stop and write no result (its
successor may already be at work).
"""

from __future__ import annotations

import logging
import threading

import redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Lease:
    """One lease: ``key`` held by ``token`` for ``ttl`` seconds at a time."""

    def __init__(self, client: redis.Redis, key: str, token: str, ttl: float) -> None:
        self.client = client
        self.key = key
        self.token = token
        self.ttl_ms = max(1, int(ttl * 1000))
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> bool:
        """Take the lease if nobody holds it."""
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def take_over(self) -> None:
        """Hold the lease whoever held it before (the caller won the right elsewhere)."""
        self.client.set(self.key, self.token, px=self.ttl_ms)

    def renew(self) -> bool:
        """Extend the lease if this token still holds it."""
        return bool(self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))

    def release(self) -> bool:
        """Give the lease up if this token still holds it."""
        return bool(self._release(keys=[self.key], args=[self.token]))


class LeaseKeeper(threading.Thread):
    """Renews a lease every third of its TTL until stopped; sets ``lost`` if renewal fails.

    A Redis error is retried at the next tick: the lease is lost only when Redis says
    another token holds it, or it expired meanwhile.
    """

    def __init__(self, lease: Lease) -> None:
        super().__init__(daemon=True, name=f"lease:{lease.key}")
        self.lease = lease
        self.lost = threading.Event()
        self._stop_event = threading.Event()

    def run(self) -> None:
        interval = self.lease.ttl_ms / 3000
        while not self._stop_event.wait(interval):
            try:
                if not self.lease.renew():
                    log.warning("lease %s lost", self.lease.key)
                    self.lost.set()
                    return
            except RedisError as exc:
                log.warning("lease %s not renewed (%s); retrying", self.lease.key, exc)

    def stop(self) -> None:
        """Stop renewing (the lease then expires unless released)."""
        self._stop_event.set()
        self.join(timeout=5)
