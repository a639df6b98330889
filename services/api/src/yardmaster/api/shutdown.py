"""A worker's shutdown, as the event streams see it.

gunicorn lets running requests finish when a worker is asked to stop (SIGTERM), for up to its
graceful timeout; an event stream never finishes on its own. So each worker also sets
:data:`STOPPING` on SIGTERM, and every stream ends within a second of it: browsers reconnect
(EventSource does by itself) to a worker that is still serving, and a deploy or ``make run``'s
Ctrl-C is not held up by open dashboards.
"""

from __future__ import annotations

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
