"""What the API's request handlers reach through ``current_app``: connections, made once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import redis
from flask import current_app
from sqlalchemy import Engine

from yardmaster.api import offloop_sqlite
from yardmaster.api.serving import gevent_is_active
from yardmaster.shared.db import make_engine
from yardmaster.shared.migrate import head_revision
from yardmaster.shared.redis_client import make_redis
from yardmaster.shared.settings import Settings

#: Redis connections of one API process, shared by all its requests (others wait their turn).
REDIS_CONNECTIONS = 64
#: Readiness probes must answer quickly even when a dependency hangs.
PROBE_TIMEOUT_SECONDS = 2.0


@dataclass
class Resources:
    """The connections of one API process (one per gunicorn worker)."""

    redis: redis.Redis
    engine: Engine
    schema_head: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Resources:
        """Create (not yet open) connections for ``settings``."""
        timeout = min(settings.connect_timeout, PROBE_TIMEOUT_SECONDS)
        # under gevent, SQLite's waits for its lock must not stop the event loop
        sqlite_module = offloop_sqlite.MODULE if gevent_is_active() else None
        return cls(
            redis=make_redis(settings.redis_url, timeout, shared_by=REDIS_CONNECTIONS),
            engine=make_engine(
                settings.database_url,
                timeout,
                sqlite_module=sqlite_module,
                busy_timeout=settings.database_busy_timeout,  # then 503, not a long wait
            ),
            schema_head=head_revision(),
        )


def resources() -> Resources:
    """The resources of the application handling the current request."""
    return cast(Resources, current_app.extensions["yardmaster"])
