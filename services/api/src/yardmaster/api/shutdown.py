"""A worker's shutdown, as the event streams see it.

gunicorn lets running requests finish when a worker is asked to stop (SIGTERM), for up to its
graceful timeout; an event stream never finishes on its own. So each worker also sets
:data:`STOPPING` on SIGTERM, and every stream ends within a second of it: browsers reconnect
(EventSource does by itself) to a worker that is still serving, and a deploy or ``make run``'s
Ctrl-C is not held up by open dashboards.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import threading
from types import FrameType
from typing import Any

#: Set once this process has been asked to stop.
STOPPING = threading.Event()


def stopping() -> bool:
    """True once this worker has been asked to stop: streams should end now."""
    return STOPPING.is_set()


def end_streams_on_sigterm(worker: Any) -> None:
    """gunicorn's ``post_worker_init`` hook: SIGTERM sets :data:`STOPPING`, then does what
    gunicorn's own handler does (stop accepting, let requests finish)."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        STOPPING.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


#: Signals that stop a worker.
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})


def keep_early_signals(arbiter: Any, worker: Any) -> None:
    """gunicorn's ``post_fork`` hook. Until a new worker installs its own handlers, a signal
    sent to it runs the handler it inherited from the master, which only queues the signal in
    the master's queue (the worker's copy of it) and is lost: a worker asked to stop while it
    boots would serve on until gunicorn kills it after its graceful timeout. The worker keeps
    that queue, for :func:`replay_early_stop`."""
    worker.early_signals = arbiter.SIG_QUEUE


def replay_early_stop(pending: Any) -> bool:
    """Stop this worker now, through its SIGTERM handler, if a stop signal reached it before
    its handlers were installed (``pending``: the queue kept by :func:`keep_early_signals`;
    other signals there, the master's, are dropped). Returns whether it was asked to stop."""
    asked = False
    with contextlib.suppress(queue.Empty):
        while pending is not None:
            asked |= pending.get_nowait() in STOP_SIGNALS
    handler = signal.getsignal(signal.SIGTERM)
    if asked and callable(handler):
        handler(signal.SIGTERM, None)
    return asked
