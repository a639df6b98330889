"""SQLite for an event loop: every call that may wait for the database's lock runs in a thread.

SQLite waits for a lock held by another process (an import committing, a file worker's
transaction) inside its C library, up to its busy timeout. Under gevent that wait would
freeze every greenlet of the API process: every stream, every request, ``/healthz``. This
module is a DB-API module for SQLAlchemy (``create_engine(url, module=...)``) that wraps
Python's ``sqlite3`` so that connecting, executing, committing and rolling back run in
gevent's thread pool: the greenlet that asked waits, the others go on.

Fetching rows is not moved: in WAL mode reading never waits for a lock, and the rows are
produced by the statement the thread already ran.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _in_thread(call: Callable[..., T], *args: Any) -> T:
    """Run ``call(*args)`` in gevent's thread pool; the calling greenlet waits for it.

    An error is raised in the calling greenlet, as if the call had run there (gevent's pool
    would print its traceback too: "database is locked" is an everyday answer, not a bug).
    """
    from gevent import get_hub

    outcome: _Outcome[T] = get_hub().threadpool.apply(_Outcome.of, (call, args))
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]  # set whenever error is None


class _Outcome(Generic[T]):
    """What a call returned, or the error it raised."""

    def __init__(self, value: T | None = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error

    @classmethod
    def of(cls, call: Callable[..., T], args: tuple[Any, ...]) -> _Outcome[T]:
        try:
            return cls(value=call(*args))
        except Exception as exc:
            return cls(error=exc)


class Cursor:
    """A ``sqlite3.Cursor`` whose statements run in a thread."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, *args: Any) -> Cursor:
        _in_thread(self._cursor.execute, *args)
        return self

    def executemany(self, *args: Any) -> Cursor:
        _in_thread(self._cursor.executemany, *args)
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Any:
        return iter(self._cursor)


class Connection:
    """A ``sqlite3.Connection`` whose transactions start, end and run in a thread."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        object.__setattr__(self, "_connection", connection)

    def cursor(self) -> Cursor:
        return Cursor(self._connection.cursor())

    def execute(self, *args: Any) -> Cursor:
        return self.cursor().execute(*args)

    def commit(self) -> None:
        _in_thread(self._connection.commit)

    def rollback(self) -> None:
        _in_thread(self._connection.rollback)

    def close(self) -> None:
        _in_thread(self._connection.close)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connection, name, value)


class Module:
    """What SQLAlchemy sees as the ``sqlite3`` module: everything of it, but ``connect``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(sqlite3, name)

    def connect(self, *args: Any, **kwargs: Any) -> Connection:
        kwargs["check_same_thread"] = False  # used by one greenlet at a time, from any thread
        return Connection(_in_thread(lambda: sqlite3.connect(*args, **kwargs)))


#: Pass as ``create_engine(url, module=MODULE)``.
MODULE = Module()
