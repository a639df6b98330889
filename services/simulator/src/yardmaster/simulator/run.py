"""The simulator's loop: write each scheduled file at its time, announcing itself while it waits."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from yardmaster.shared.heartbeat import Heartbeat
from yardmaster.simulator.core.schedule import Release, file_content

log = logging.getLogger(__name__)

Writer = Callable[[Path, str, str], Path]


@dataclass
class Simulation:
    """One run of a schedule into one directory."""

    directory: Path
    releases: Iterable[Release]
    write: Writer
    heartbeat: Heartbeat
    stop: threading.Event
    stores: list[str] | None = None
    #: Resuming: the newest file already written; the schedule goes on after it.
    resume_after: str | None = None

    def run(self) -> int:
        """Write every file on time (deadlines from the start, so no drift); return how many."""
        started = time.monotonic()
        written = 0
        for release in self.releases:
            if self.resume_after is not None and release.file.name <= self.resume_after:
                started = time.monotonic() - release.at_seconds  # the next one slot from now
                continue
            if not self._wait_until(started + release.at_seconds, written):
                log.info("stopped after %d files", written)
                return written
            self.write(self.directory, release.file.name, file_content(release.file, self.stores))
            written += 1
            log.info(
                "wrote %s (file %d, %.4f min of work)",
                release.file.name,
                written,
                release.file.processing_minutes,
            )
        log.info("schedule complete: %d files written to %s", written, self.directory)
        return written

    def _wait_until(self, deadline: float, written: int) -> bool:
        """Sleep until ``deadline`` (monotonic), beating; False if asked to stop first."""
        while True:
            self.heartbeat.beat(files_written=written)
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            if self.stop.wait(min(left, self.heartbeat.interval)):
                return False
