"""A gunicorn worker asked to stop while it boots stops once it can, not after the graceful
timeout: the stop signal its inherited handler queued is replayed through its own handler."""

from __future__ import annotations

import queue
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from yardmaster.api.shutdown import replay_early_stop


@pytest.fixture
def handled() -> Iterator[list[int]]:
    """The signals this process's SIGTERM handler is called with during the test."""
    calls: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    yield calls
    signal.signal(signal.SIGTERM, previous)


def queued(*items: object) -> queue.SimpleQueue[object]:
    pending: queue.SimpleQueue[object] = queue.SimpleQueue()
    for item in items:
        pending.put_nowait(item)
    return pending


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_a_stop_signal_that_arrived_while_booting_stops_the_worker_once(
    handled: list[int], sent: signal.Signals
) -> None:
    pending = queued(signal.SIGCHLD, sent, signal.SIGTERM)

    assert replay_early_stop(pending) is True

    assert handled == [signal.SIGTERM]  # through the worker's own handler, once
    assert pending.empty()


def test_the_masters_other_signals_are_dropped_and_the_worker_serves_on(
    handled: list[int],
) -> None:
    assert replay_early_stop(queued(signal.SIGCHLD, signal.SIGHUP, "wakeup")) is False
    assert replay_early_stop(None) is False  # a worker gunicorn forked without the hook

    assert handled == []
