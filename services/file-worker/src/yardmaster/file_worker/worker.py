"""The file worker's loop: claim the oldest ready file, load it once, do its work, complete.

Guarantee: every file is committed exactly once (one done record in Redis, counted by one
worker, its polls loaded into the database once); it may be executed more than once when a
worker dies or stalls past its lease, and the stale attempt is then discarded.

A busy or unreachable database is waited out (:func:`~yardmaster.shared.outage.wait_out`):
a file whose ledger row cannot be written yet keeps its lease, renewed meanwhile, until the
row is written; the attempt is given up only if the lease is lost or the worker stops.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from yardmaster.file_worker.core.content import BadFileError, FileContent, NotReadyError, parse
from yardmaster.file_worker.core.stats import Stats
from yardmaster.file_worker.core.tunables import Tunables
from yardmaster.file_worker.discovery import Discovery
from yardmaster.shared.errors import DatabaseUnavailableError
from yardmaster.shared.fileclaims import Claim, FileClaims, Lease, bucket_id
from yardmaster.shared.jobstore import utcnow
from yardmaster.shared.ledger import publish_ledger_change
from yardmaster.shared.models import FileLedger, StoreStatus
from yardmaster.shared.outage import wait_out
from yardmaster.shared.redis_client import wait_for_redis

log = logging.getLogger(__name__)

#: A file still unparseable this long after it was first seen is quarantined (real seconds).
NOT_READY_GRACE_SECONDS = 30.0


class LeaseRenewer(threading.Thread):
    """Renews a file lease every heartbeat; sets ``lost`` when renewal fails or is overdue
    (self-fencing: past ``ttl - margin`` without a confirmed renewal the attempt is given up)."""

    def __init__(self, claims: FileClaims, lease: Lease, tunables: Tunables) -> None:
        super().__init__(daemon=True, name=f"renew:{lease.file}")
        self.claims, self.lease, self.tunables = claims, lease, tunables
        self.lost = threading.Event()
        self.finished = threading.Event()

    def run(self) -> None:
        confirmed = time.monotonic()
        while not self.finished.wait(self.tunables.heartbeat):
            try:
                if not self.claims.renew(self.lease, self.tunables.lease_ttl):
                    self.lost.set()
                    return
                confirmed = time.monotonic()
            except Exception as exc:
                log.warning("lease of %s not renewed (%s)", self.lease.file, exc)
            if time.monotonic() - confirmed > self.tunables.lease_ttl - self.tunables.margin:
                self.lost.set()
                return


@dataclass
class FileWorker:
    """One worker on one bucket directory."""

    directory: Path
    name: str
    claims: FileClaims
    engine: Engine
    tunables: Tunables
    seconds_in_min: float
    stop: threading.Event
    say: Callable[[str], None] = print
    tick: Callable[[FileWorker], object] = lambda worker: None
    current: str | None = None
    stats: Stats = field(default_factory=Stats)
    known_done: set[str] = field(default_factory=set)
    first_seen_unready: dict[str, float] = field(default_factory=dict)
    retry_at: dict[str, float] = field(default_factory=dict)
    #: Files completed in Redis whose ledger row still says "loaded": written with the next
    #: file's load (one commit instead of two on the critical path) or as soon as the worker
    #: is idle; a crash in between is caught up by :meth:`_reconcile_ledger` at the next start.
    unrecorded: list[tuple[str, str, dt.datetime]] = field(default_factory=list)

    def run(self) -> None:
        """Work until ``stop`` is set."""
        discovery = Discovery(self.directory, rescan_interval=max(self.tunables.poll * 20, 0.05))
        discovery.start()

        def interrupt_on_stop() -> None:
            self.stop.wait()
            discovery.interrupt()

        threading.Thread(target=interrupt_on_stop, daemon=True, name="interrupt-on-stop").start()
        pending: set[str] = set()
        try:
            while not self._catch_up() and not self.stop.is_set():
                self._wait_for_redis()
            while not self.stop.is_set():
                self.tick(self)
                pending.update(discovery.new_files())
                pending -= self.known_done
                try:
                    busy = any(self._try(name) for name in sorted(pending))
                except RedisError as exc:
                    log.warning("Redis unreachable (%s); claims wait until it is back", exc)
                    self._wait_for_redis()
                    continue
                if not busy:
                    self._record_done()
                    discovery.wait(self.tunables.poll)
        finally:
            discovery.stop()
            self._record_done()

    def _catch_up(self) -> bool:
        """Learn which files are done; True once Redis answered."""
        try:
            done = self.claims.done()
        except RedisError as exc:
            log.warning("Redis unreachable (%s)", exc)
            return False
        self.known_done.update(done)
        self._reconcile_ledger(done)
        return True

    def _wait_for_redis(self) -> None:
        wait_for_redis(self.claims.client, self.stop, f"file worker {self.name}")

    def _try(self, name: str) -> bool:
        """Work on ``name`` if it is ready and ours to take; True if it was processed.

        A file a live peer holds is not asked about again before its lease could have
        expired unrenewed (a quarter of the TTL), so idle workers do not hammer Redis.
        """
        if self.stop.is_set() or self.retry_at.get(name, 0.0) > time.monotonic():
            return False
        content = self._read(name)
        if content is None:
            return False
        claimed_at = time.monotonic()
        result = self.claims.claim(
            name, self.name, self.tunables.lease_ttl, self.tunables.max_attempts
        )
        if result is Claim.DONE_ALREADY:
            self.known_done.add(name)
            return False
        if result is Claim.EXHAUSTED:
            self._quarantine(name, f"not completed after {self.tunables.max_attempts} attempts")
            return False
        if not isinstance(result, Lease):
            self.retry_at[name] = claimed_at + self.tunables.heartbeat
            return False
        self.retry_at.pop(name, None)
        self._process(result, content, claimed_at)
        return True

    def _read(self, name: str) -> FileContent | None:
        try:
            return parse((self.directory / name).read_text(encoding="utf-8", errors="replace"))
        except FileNotFoundError:
            return None
        except NotReadyError as exc:
            first = self.first_seen_unready.setdefault(name, time.monotonic())
            if time.monotonic() - first > NOT_READY_GRACE_SECONDS:
                self._quarantine(name, f"never became readable: {exc}")
            return None
        except BadFileError as exc:
            self._quarantine(name, str(exc))
            return None

    def _process(self, lease: Lease, content: FileContent, claimed_at: float) -> None:
        """Load, then work out the rest of the file's processing time counted from its claim
        (loading is part of processing), then complete if the lease is still ours."""
        started = utcnow()
        renewer = LeaseRenewer(self.claims, lease, self.tunables)
        renewer.start()
        self.current = lease.file
        try:
            rows = self._load(lease.file, content, started, renewer.lost)
            self._announce(
                lease.file, "loaded", minutes=content.minutes, rows=rows, started_at=started
            )
            deadline = claimed_at + content.minutes * self.seconds_in_min
            interrupted = self._work_until(deadline, renewer.lost)
        except DatabaseUnavailableError:  # still away when the lease was lost, or stopping
            interrupted = True
        finally:
            renewer.finished.set()
            self.current = None
        if interrupted:
            self._abandon(lease)
            if renewer.lost.is_set():
                self._count_lease_loss(lease)
            why = "lease lost" if renewer.lost.is_set() else "shutting down"
            log.warning("%s: attempt given up (%s); not counted", lease.file, why)
            return
        finished = utcnow()
        record = {
            "worker": self.name,
            "fence": lease.fence,
            "minutes": content.minutes,
            "rows": rows,
            "started_at": started.isoformat(),
            "finished_at": finished.isoformat(),
        }
        try:
            outcome = self.claims.complete(lease, record)
        except RedisError as exc:
            log.warning("%s: completion not confirmed (%s); not counted", lease.file, exc)
            return
        if outcome is not Claim.OURS:
            if outcome is Claim.TAKEN:  # the lease expired before the completion reached Redis
                self._count_lease_loss(lease)
            log.warning("%s: completion refused (%s); not counted", lease.file, outcome.name)
            return
        self.known_done.add(lease.file)
        self.unrecorded.append((lease.file, self.name, finished))
        self._announce(
            lease.file,
            "done",
            minutes=content.minutes,
            rows=rows,
            started_at=started,
            finished_at=finished,
        )
        self.stats = self.stats.add(content.minutes)
        log.info("%s: done (%.4f min, %d rows)", lease.file, content.minutes, rows)
        if self.stats.due:
            self.say(self.stats.line())

    def _announce(self, name: str, state: str, **values: Any) -> None:
        """Tell live views that the ledger row of ``name`` changed (see :mod:`.ledger`)."""
        row = {"bucket": bucket_id(self.directory), "name": name, "state": state}
        publish_ledger_change(self.claims.client, {**row, "worker": self.name, **values})

    def _count_lease_loss(self, lease: Lease) -> None:
        """Count the loss for ``/metrics``; best effort (a loss often comes with Redis trouble)."""
        try:
            self.claims.count_lease_loss()
        except RedisError as exc:
            log.warning("%s: lease loss not counted (%s)", lease.file, exc)

    def _abandon(self, lease: Lease) -> None:
        """Give the file back now; if Redis cannot be told, the lease simply expires."""
        try:
            self.claims.abandon(lease)
        except RedisError as exc:
            log.warning("%s: not released (%s); its lease will expire", lease.file, exc)

    def _work_until(self, deadline: float, lost: threading.Event) -> bool:
        """Simulate processing until ``deadline``; True if interrupted (lease lost or shutdown)."""
        while (left := deadline - time.monotonic()) > 0:
            if lost.wait(min(left, 0.05)) or self.stop.is_set():
                return True
            self.tick(self)  # a long file must not look like a dead worker
        return lost.is_set()

    def _load(
        self, name: str, content: FileContent, started: dt.datetime, lost: threading.Event
    ) -> int:
        """Load the file's polls with its ledger row (once, ever); the number of rows.

        While the database is busy or unreachable this waits (the lease renewed meanwhile);
        raises :class:`DatabaseUnavailableError` if ``lost`` or the worker's stop is set first.
        """
        return wait_out(lambda: self._load_once(name, content, started), name, self.stop, lost)

    def _load_once(self, name: str, content: FileContent, started: dt.datetime) -> int:
        """Load the file's polls with its ledger row in one transaction, which also records
        the files completed since the last commit; the ledger row's insert is the guard
        against loading twice (an earlier attempt's row: its row count is returned)."""
        bucket = bucket_id(self.directory)
        try:
            with self.engine.begin() as connection:
                self._write_done(connection)
                connection.execute(
                    insert(FileLedger).values(
                        bucket=bucket,
                        name=name,
                        state="loaded",
                        worker=self.name,
                        minutes=content.minutes,
                        rows=len(content.polls),
                        started_at=started,
                    )
                )
                if content.polls:
                    connection.execute(
                        insert(StoreStatus),
                        [
                            {
                                "store_id": p.store_id,
                                "status": p.status,
                                "timestamp_utc": p.timestamp_utc,
                            }
                            for p in content.polls
                        ],
                    )
            self.unrecorded.clear()
        except IntegrityError:  # loaded by an earlier attempt: never twice
            self._record_done()  # rolled back with the failed insert
            with self.engine.connect() as connection:
                rows = connection.scalar(
                    select(FileLedger.rows).where(
                        FileLedger.bucket == bucket, FileLedger.name == name
                    )
                )
            return int(rows or 0)
        return len(content.polls)

    def _record_done(self) -> None:
        """Write the pending "done" ledger rows now, waiting for a busy or unreachable
        database; if the worker stops first or another error occurs, that is logged (Redis
        has the truth and the next start catches the ledger up)."""
        if not self.unrecorded:
            return
        try:
            wait_out(self._write_done_now, "ledger", self.stop)
        except (DatabaseUnavailableError, SQLAlchemyError) as exc:
            log.error("ledger not updated (%s); the next start catches it up", exc)
        self.unrecorded.clear()

    def _write_done_now(self) -> None:
        with self.engine.begin() as connection:
            self._write_done(connection)

    def _write_done(self, connection: Connection) -> None:
        """Mark the completed files done, in ``connection``'s transaction."""
        for name, worker, finished in self.unrecorded:
            connection.execute(
                update(FileLedger)
                .where(FileLedger.bucket == bucket_id(self.directory), FileLedger.name == name)
                .values(state="done", worker=worker, finished_at=finished)
            )

    def _reconcile_ledger(self, done: dict[str, dict[str, Any]]) -> None:
        """Mark done the ledger rows whose worker died between completing and recording it
        (waiting for a busy or unreachable database; not at all if the worker stops first)."""
        try:
            loaded = wait_out(self._loaded_files, "ledger", self.stop)
        except DatabaseUnavailableError:
            return
        for name in loaded:
            if name in done:
                record = done[name]
                finished = dt.datetime.fromisoformat(record["finished_at"])
                self.unrecorded.append((name, record["worker"], finished))
                log.info("%s: ledger caught up with its done record", name)
        self._record_done()

    def _loaded_files(self) -> list[str]:
        with self.engine.connect() as connection:
            return list(
                connection.scalars(
                    select(FileLedger.name).where(
                        FileLedger.bucket == bucket_id(self.directory),
                        FileLedger.state == "loaded",
                    )
                )
            )

    def _quarantine(self, name: str, reason: str) -> None:
        """Set the file aside for good, with its ledger row saying why (waiting for a busy
        or unreachable database; if the worker stops first, its next start decides again)."""
        log.warning("%s: quarantined: %s", name, reason)
        self.known_done.add(name)
        values = {
            "state": "quarantined",
            "error": reason[:1000],
            "worker": self.name,
            "finished_at": utcnow(),
        }
        try:
            wait_out(lambda: self._write_quarantine(name, values), name, self.stop)
        except DatabaseUnavailableError as exc:
            log.warning("%s: quarantine not recorded (%s)", name, exc)
            return
        self._announce(
            name, "quarantined", error=values["error"], finished_at=values["finished_at"]
        )

    def _write_quarantine(self, name: str, values: dict[str, Any]) -> None:
        bucket = bucket_id(self.directory)
        try:
            with self.engine.begin() as connection:
                self._write_done(connection)
                connection.execute(
                    insert(FileLedger).values(bucket=bucket, name=name, rows=0, **values)
                )
        except IntegrityError:
            with self.engine.begin() as connection:
                connection.execute(
                    update(FileLedger)
                    .where(FileLedger.bucket == bucket, FileLedger.name == name)
                    .values(**values)
                )
