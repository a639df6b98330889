"""Finding bucket files: filesystem notifications (watchdog) plus a periodic rescan.

Notifications make discovery immediate on the local host; the rescan is the safety net for
what they miss (files written by another host on a shared mount, events lost under load).
Nothing is ever written inside the watched directory.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from yardmaster.shared.bucket import is_bucket_file, oldest_first

log = logging.getLogger(__name__)


class _Notifications(FileSystemEventHandler):
    def __init__(self, found: set[str], lock: threading.Lock, wake: threading.Event) -> None:
        self.found = found
        self.lock = lock
        self.wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        for path in (event.src_path, getattr(event, "dest_path", "")):
            name = Path(str(path)).name
            if name and is_bucket_file(name) and not event.is_directory:
                with self.lock:
                    self.found.add(name)
                self.wake.set()


class Discovery:
    """Names of bucket files seen in one directory, each reported once, oldest first."""

    def __init__(self, directory: Path, rescan_interval: float = 5.0) -> None:
        self.directory = directory
        self.rescan_interval = rescan_interval
        self._found: set[str] = set()
        self._reported: set[str] = set()
        self._lock = threading.Lock()
        #: Set when a notification arrives (or by :meth:`interrupt`); cleared by :meth:`wait`.
        self._wake = threading.Event()
        self._observer = Observer()
        self._last_scan = float("-inf")

    def start(self) -> None:
        """Begin watching (the directory must exist) and scan what is already there."""
        handler = _Notifications(self._found, self._lock, self._wake)
        self._observer.schedule(handler, str(self.directory))
        self._observer.start()
        self._rescan()

    def stop(self) -> None:
        """Stop watching."""
        self._observer.stop()
        self._observer.join(timeout=5)

    def wait(self, timeout: float) -> None:
        """Sleep until a bucket file event arrives, :meth:`interrupt` is called, or ``timeout``."""
        self._wake.wait(timeout)
        self._wake.clear()

    def interrupt(self) -> None:
        """Wake :meth:`wait` at once (shutdown)."""
        self._wake.set()

    def new_files(self) -> list[str]:
        """Files not reported before, oldest first; rescans when the interval has passed."""
        if time.monotonic() - self._last_scan >= self.rescan_interval:
            self._rescan()
        with self._lock:
            fresh = oldest_first(self._found - self._reported)
        self._reported.update(fresh)
        return fresh

    def _rescan(self) -> None:
        self._last_scan = time.monotonic()
        try:
            names = [entry.name for entry in self.directory.iterdir() if entry.is_file()]
        except OSError as exc:
            log.warning("cannot list %s: %s", self.directory, exc)
            return
        with self._lock:
            self._found.update(name for name in names if is_bucket_file(name))
