"""A channel of this process: the latest items, numbered, that any number of readers follow.

One writer (the hub's Redis reader, or a periodic task) appends; every stream reads from its
own position at its own pace. There is no queue per reader: a reader costs a number, and an
item is stored once whatever the number of readers. A reader that falls more than the
channel's size behind is told it lagged, and starts again from a fresh picture.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Outage:
    """Redis went away at ``since`` (epoch seconds): live changes stop until it is back."""

    since: float


@dataclass(frozen=True)
class Restored:
    """Redis is back after an outage that began at ``since``: what changed meanwhile was not
    relayed, so each stream sends a fresh picture. ``shared`` lets the streams of this process
    compute that picture once (see :meth:`once`)."""

    since: float
    shared: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def once(self, key: str, compute: Any) -> Any:
        """``compute()`` the first time ``key`` is asked for after this restore; its result
        after that (every stream of the process asks at about the same moment)."""
        with self.lock:
            if key not in self.shared:
                self.shared[key] = compute()
            return self.shared[key]


@dataclass(frozen=True)
class Read(Generic[T]):
    """What one :meth:`Channel.read` found: the items after the reader's position, the new
    position, whether items were lost to the reader (it lagged) and whether the channel
    closed (the process is stopping)."""

    items: list[T]
    position: int
    lagged: bool = False
    closed: bool = False


class Channel(Generic[T]):
    """The last ``size`` items appended, numbered from 1."""

    def __init__(self, name: str, size: int = 4096) -> None:
        self.name = name
        self._size = size
        self._ring: list[T | None] = [None] * size
        self._last = 0
        self._closed = False
        self._changed = threading.Condition()

    @property
    def position(self) -> int:
        """The number of the last item appended (a new reader starts here)."""
        return self._last

    def append(self, item: T) -> None:
        """Add ``item`` and wake every reader."""
        with self._changed:
            self._last += 1
            self._ring[self._last % self._size] = item
            self._changed.notify_all()

    def close(self) -> None:
        """Wake every reader for the last time: the process is stopping."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def read(self, after: int, timeout: float) -> Read[T]:
        """The items appended after position ``after``; waits up to ``timeout`` seconds for
        one when there is none yet."""
        with self._changed:
            if self._last <= after and not self._closed:
                self._changed.wait(timeout)
            last = self._last
            if last - after > self._size:
                return Read([], last, lagged=True, closed=self._closed)
            items = [self._ring[n % self._size] for n in range(after + 1, last + 1)]
            return Read([i for i in items if i is not None], last, closed=self._closed)
