"""The file ledger's rows as their readers see them: ``GET /files`` and the live Files view.

The file worker publishes each committed change of a row on :data:`keys.FILE_EVENTS` in this
shape, so a live view shows exactly what a fresh ``GET /files`` would.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

import redis
from redis.exceptions import RedisError

from yardmaster.shared import keys

log = logging.getLogger(__name__)

#: The columns of a ledger row, in the order they are shown.
COLUMNS = (
    "bucket",
    "name",
    "state",
    "worker",
    "minutes",
    "rows",
    "error",
    "started_at",
    "finished_at",
)


def ledger_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ledger row as JSON-ready values (times in ISO 8601)."""
    view = {column: row.get(column) for column in COLUMNS}
    for column in ("started_at", "finished_at"):
        value = view[column]
        if isinstance(value, dt.datetime):
            view[column] = value.isoformat()
    return view


def publish_ledger_change(client: redis.Redis, row: Mapping[str, Any]) -> None:
    """Announce a committed change of a ledger row to live views (errors only logged: the
    ledger is the truth, and a view that missed it catches up when it reloads)."""
    try:
        client.publish(keys.FILE_EVENTS, json.dumps(ledger_view(row)))
    except RedisError as exc:
        log.warning("file %s: change not announced (%s)", row.get("name"), exc)
