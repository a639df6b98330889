"""Which channels the live views of an application relay, and the hub of each API process."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from yardmaster.api.live.hub import Hub, Limits, Source
from yardmaster.api.resources import resources
from yardmaster.api.shutdown import stopping
from yardmaster.shared.settings import Settings

EXTENSION = "yardmaster.live"


@dataclass(frozen=True)
class LiveChannel:
    """A channel of live views, fed by the Redis channels of ``sources`` (each with the
    function that decodes its messages); ``periodic``, if any, makes (in the application's
    context, when the hub starts) a task run every ``every`` seconds while the channel has
    viewers, which may append items of its own (:meth:`Hub.publish_local`)."""

    name: str
    sources: Mapping[str, Callable[[bytes], Any]]
    periodic: Callable[[Hub], Callable[[], object]] | None = None
    every: float = 1.0


def add_channel(app: Flask, channel: LiveChannel) -> None:
    """Relay ``channel`` to the live views of ``app`` (called while the app is built)."""
    app.extensions.setdefault(EXTENSION + ".channels", []).append(channel)


def hub() -> Hub:
    """The hub of this process, made on first use: in a gunicorn worker, after the fork, so
    that every worker has its own subscription."""
    existing = current_app.extensions.get(EXTENSION)
    if isinstance(existing, Hub):
        return existing
    settings: Settings = current_app.config["SETTINGS"]
    channels: list[LiveChannel] = current_app.extensions.get(EXTENSION + ".channels", [])
    sources: dict[str, list[Source]] = {}
    for channel in channels:  # a Redis channel may feed several (customer deactivations)
        for redis_channel, decode in channel.sources.items():
            sources.setdefault(redis_channel, []).append(Source(channel.name, decode))
    limits = Limits(settings.streams_per_process, settings.streams_per_address)
    made = Hub(resources().redis, sources, limits, stopping)
    for channel in channels:
        if channel.periodic is not None:
            made.every(channel.every, channel.periodic(made), while_watched=channel.name)
    kept: Hub = current_app.extensions.setdefault(EXTENSION, made)  # the first one made
    return kept
