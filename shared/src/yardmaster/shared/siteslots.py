"""Per-site run slots in Redis: at most ``cap`` jobs of one site run at once.

A segment takes a slot before it claims its job; when the site is full the job is *parked*
(it stays queued in the database) and the segment ends, freeing the worker for other sites.
Releasing a slot hands it to the first parked job of the site, which the releaser enqueues
again. Each step is one Lua script, so a release can never miss a job parked at the same time.
"""

from __future__ import annotations

from enum import IntEnum

import redis

from yardmaster.shared import keys

_ACQUIRE = """
if redis.call('sismember', KEYS[1], ARGV[1]) == 1 then return 2 end
if redis.call('scard', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('sadd', KEYS[1], ARGV[1])
  redis.call('zrem', KEYS[2], ARGV[1])
  return 1
end
redis.call('zadd', KEYS[2], 'NX', ARGV[3], ARGV[1])
return 0
"""
_RELEASE = """
redis.call('srem', KEYS[1], ARGV[1])
if redis.call('scard', KEYS[1]) < tonumber(ARGV[2]) then
  local first = redis.call('zrange', KEYS[2], 0, 0)[1]
  if first then
    redis.call('zrem', KEYS[2], first)
    return first
  end
end
return false
"""


class Slot(IntEnum):
    """What asking for a slot gave."""

    PARKED = 0  # the site is full: wait for a release
    TAKEN = 1  # a slot is ours now
    HELD_ALREADY = 2  # this job holds one already (another segment of it runs)


def park_score(priority: int, enqueued_epoch: float) -> float:
    """Parked jobs leave highest priority first, then oldest first."""
    return (100 - priority) * 1e10 + enqueued_epoch


class SiteSlots:
    """The slot scripts (one client per process)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    def acquire(self, site_id: int, job_id: str, cap: int, score: float) -> Slot:
        """Take a run slot for ``job_id`` or park it with ``score``."""
        keys_ = [keys.site_running_key(site_id), keys.site_parked_key(site_id)]
        return Slot(int(self._acquire(keys=keys_, args=[job_id, cap, score])))

    def release(self, site_id: int, job_id: str, cap: int) -> str | None:
        """Give ``job_id``'s slot back; the parked job that should run next, if any."""
        keys_ = [keys.site_running_key(site_id), keys.site_parked_key(site_id)]
        first = self._release(keys=keys_, args=[job_id, cap])
        if not first:
            return None
        return first.decode() if isinstance(first, bytes) else str(first)

    def running(self, site_id: int) -> set[str]:
        """Jobs holding a slot of the site."""
        members = self.client.smembers(keys.site_running_key(site_id))
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    def is_parked(self, site_id: int, job_id: str) -> bool:
        """True when the job waits for a slot of its site."""
        return self.client.zscore(keys.site_parked_key(site_id), job_id) is not None

    def sites_in_use(self) -> list[int]:
        """Sites with a running-slot set (for the reaper's clean-up)."""
        found = []
        for key in self.client.scan_iter(match=keys.SITE_RUNNING_PATTERN, count=500):
            text = key.decode() if isinstance(key, bytes) else str(key)
            found.append(int(text.split(":")[-2]))
        return found
