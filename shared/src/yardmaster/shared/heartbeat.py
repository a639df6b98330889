"""Heartbeats: how a process says it is alive, to Redis (for the API) and to a file (for Docker).

The Redis key lets the API list live processes (``GET /status``); the file lets a container
healthcheck (``python -m yardmaster.shared.liveness SERVICE``) see that the main loop is
turning even when Redis is down.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.exceptions import RedisError

from yardmaster.shared import keys

log = logging.getLogger(__name__)

#: A heartbeat key outlives this many missed beats.
MISSED_BEATS_ALLOWED = 3


def liveness_file(run_dir: Path, service: str, instance: str) -> Path:
    """The file a process touches on every beat."""
    return run_dir / f"{service}.{instance}.alive"


@dataclass
class Heartbeat:
    """Announces one process as alive, at most once per ``interval`` seconds.

    ``beat`` never raises: a beat that cannot reach Redis still touches the liveness file,
    and the state change (connected or not) is logged once, not on every beat. Every record
    written is also published on :data:`keys.PROCESS_EVENTS` (live views); with
    ``announce_changes``, a beat whose details differ from the last one's is written at once,
    not at the next interval.
    """

    client: redis.Redis
    service: str
    instance: str
    run_dir: Path
    interval: float = 5.0
    clock: Callable[[], float] = time.time
    announce_changes: bool = False
    started_at: float = field(init=False)
    _last_details: dict[str, Any] = field(init=False, default_factory=dict)
    _last_beat: float = field(init=False, default=float("-inf"))
    _redis_ok: bool | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.started_at = self.clock()
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def beat(self, force: bool = False, **details: Any) -> bool:
        """Record that this process is alive; return whether Redis took the beat."""
        now = self.clock()
        changed = self.announce_changes and details != self._last_details
        if not force and not changed and now - self._last_beat < self.interval:
            return bool(self._redis_ok)
        self._last_beat, self._last_details = now, details
        liveness_file(self.run_dir, self.service, self.instance).touch()
        return self._announce(now, details)

    def _announce(self, now: float, details: dict[str, Any]) -> bool:
        record = {
            "service": self.service,
            "instance": self.instance,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self.started_at,
            "beat_at": now,
            **details,
        }
        ttl_ms = int(self.interval * MISSED_BEATS_ALLOWED * 1000)
        key = keys.heartbeat_key(self.service, self.instance)
        text = json.dumps(record)
        try:
            pipeline = self.client.pipeline(transaction=False)
            pipeline.set(key, text, px=ttl_ms)
            pipeline.publish(keys.PROCESS_EVENTS, text)
            pipeline.execute()
        except RedisError as exc:
            if self._redis_ok is not False:
                log.warning("heartbeat: Redis unreachable (%s); will keep trying", exc)
            self._redis_ok = False
            return False
        if self._redis_ok is False:
            log.info("heartbeat: Redis reachable again")
        self._redis_ok = True
        return True

    def retire(self) -> None:
        """Remove this process's heartbeat (clean shutdown); errors are ignored."""
        liveness_file(self.run_dir, self.service, self.instance).unlink(missing_ok=True)
        gone = {"service": self.service, "instance": self.instance, "gone": True}
        with contextlib.suppress(RedisError):
            self.client.delete(keys.heartbeat_key(self.service, self.instance))
            self.client.publish(keys.PROCESS_EVENTS, json.dumps(gone))


def live_processes(client: redis.Redis) -> list[dict[str, Any]]:
    """Every process whose heartbeat has not expired, sorted by service then instance."""
    records = []
    for key in client.scan_iter(match=keys.HEARTBEAT_PATTERN, count=500):
        raw = client.get(key)
        if raw is not None:
            records.append(json.loads(raw))
    return sorted(records, key=lambda r: (r["service"], r["instance"]))


def live_count(client: redis.Redis, service: str) -> int:
    """How many processes of ``service`` have a current heartbeat."""
    pattern = keys.heartbeat_key(service, "*")
    return sum(1 for _ in client.scan_iter(match=pattern, count=500))
