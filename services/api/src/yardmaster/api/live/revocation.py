"""Live streams that speak for a customer end when it is deactivated, in every API process.

Deactivating a customer publishes its id on :data:`keys.CUSTOMER_DEACTIVATIONS` once the
change committed (:func:`announce_deactivated`). Each process's hub relays that message, as a
:class:`Deactivated` item, into the channels of the streams a customer may open (job events,
the file pipeline); each stream whose :class:`Speaker` it names sends a last ``ended`` event
saying why and ends. The client's reconnection is then refused (403) like any request of a
deactivated customer's token. Admin streams (and those of an open API) never end this way.

A message lost with Redis (away when the deactivation was published) is made up for: a stream
reads its customer's ``is_active`` again when its relay reports Redis back (one primary-key
lookup per customer, channel and process, shared by its streams), and once when it opens,
after taking its place in the channel (so a deactivation relayed between the request's access
check and that moment is not missed either).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis
from flask import Response
from sqlalchemy import Engine

from yardmaster.api.live.channel import Restored
from yardmaster.api.problems import problem
from yardmaster.shared import keys
from yardmaster.shared.access import Principal
from yardmaster.shared.holds import is_deactivated


@dataclass(frozen=True)
class Deactivated:
    """Customer ``customer_id`` was just deactivated: its streams end."""

    customer_id: int


def announce_deactivated(client: redis.Redis, customer_id: int) -> None:
    """Tell every API process that ``customer_id`` is deactivated (call once it committed);
    raises RedisError when Redis is away (streams then end when their relay is back)."""
    client.publish(keys.CUSTOMER_DEACTIVATIONS, json.dumps({"customer_id": customer_id}))


def decode_deactivated(raw: bytes | str) -> Deactivated:
    """A message of :data:`keys.CUSTOMER_DEACTIVATIONS`."""
    return Deactivated(int(json.loads(raw)["customer_id"]))


@dataclass(frozen=True)
class Speaker:
    """Who a stream speaks for: a customer (``customer_id``), or None (the admin, or an open
    API), whose streams never end for a deactivation."""

    customer_id: int | None
    engine: Engine

    @classmethod
    def of(cls, principal: Principal | None, engine: Engine) -> Speaker:
        """The speaker of a request made with ``principal``'s token (None: no token)."""
        return cls(None if principal is None else principal.customer_id, engine)

    @property
    def reason(self) -> str:
        return f"customer {self.customer_id} is deactivated"

    def ends_at(self, item: Any) -> str | None:
        """Why the stream ends at channel ``item`` (its customer is deactivated), or None.

        A :class:`Restored` item costs one lookup per customer for all the process's streams
        (raises SQLAlchemyError if the database cannot be read)."""
        if self.customer_id is None:
            return None
        if isinstance(item, Deactivated):
            return self.reason if item.customer_id == self.customer_id else None
        if isinstance(item, Restored):
            key = f"deactivated:{self.customer_id}"
            return self.reason if item.once(key, self.is_deactivated) else None
        return None

    def is_deactivated(self) -> bool:
        """True if the stream's customer is deactivated now (one primary-key lookup)."""
        if self.customer_id is None:
            return False
        with self.engine.connect() as connection:
            return is_deactivated(connection, self.customer_id)

    def refusal(self) -> Response:
        """403 for a stream whose customer was deactivated while it opened."""
        detail = f"{self.reason}: its token is refused until an admin reactivates it"
        return problem(403, "Forbidden", detail, customer_id=self.customer_id, deactivated=True)
