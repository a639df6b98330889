"""The platform's state as Prometheus metrics, read from the database and Redis at scrape time.

Every value is a fact of the shared state (rows, keys), not of the process answering the
scrape, so every API process reports the same numbers and nothing is counted twice. A scrape
costs a few aggregate queries and one Redis round trip; when the database or Redis is down,
its families are left out (and ``yardmaster_metrics_source_up`` says so) instead of failing
the scrape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import ColumnElement, Connection, Engine, Float, case, cast, func, select
from sqlalchemy.exc import SQLAlchemyError

from yardmaster.shared import keys, queues
from yardmaster.shared.db import describe_database_error
from yardmaster.shared.jobs import JobKind, JobState
from yardmaster.shared.models import FileLedger, Job
from yardmaster.shared.turnqueue.store import TurnQueue

log = logging.getLogger(__name__)

#: Upper bounds (seconds) of the job duration histogram's buckets: seconds to hours.
DURATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
#: Ledger states of a file: being processed, then done or quarantined for good.
FILE_STATES = ("loaded", "done", "quarantined")


@dataclass
class DatabaseFacts:
    """What one scrape read from the database."""

    jobs: dict[tuple[str, str], int] = field(default_factory=dict)
    #: kind -> (cumulative count per bucket of DURATION_BUCKETS, count, sum of seconds)
    durations: dict[str, tuple[list[int], int, float]] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    buckets: set[str] = field(default_factory=set)


@dataclass
class RedisFacts:
    """What one scrape read from Redis."""

    queue_depths: dict[str, int]
    file_attempts: int
    lease_losses: int
    turn_queue_length: int


class StateCollector:
    """A prometheus-client collector of the platform's state (build one per scrape).

    ``bucket`` is the id of the API's configured bucket directory: its Redis counters are
    read even before the ledger has a row of it.
    """

    def __init__(
        self, engine: Engine, client: redis.Redis, turn_queue: TurnQueue, bucket: str
    ) -> None:
        self.engine, self.client, self.turn_queue, self.bucket = engine, client, turn_queue, bucket

    def collect(self) -> Iterator[Metric]:
        database = self._read_database()
        redis_facts = self._read_redis(database.buckets if database else set())
        up = GaugeMetricFamily(
            "yardmaster_metrics_source_up",
            "1 if the source answered this scrape (its families are missing otherwise)",
            labels=["source"],
        )
        up.add_metric(["database"], 1.0 if database else 0.0)
        up.add_metric(["redis"], 1.0 if redis_facts else 0.0)
        yield up
        if database is not None:
            yield from database_families(database)
        if redis_facts is not None:
            yield from redis_families(redis_facts)

    def _read_database(self) -> DatabaseFacts | None:
        try:
            with self.engine.connect() as connection:
                return read_database(connection)
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable (%s)", describe_database_error(exc))
            return None

    def _read_redis(self, buckets: set[str]) -> RedisFacts | None:
        try:
            return read_redis(self.client, self.turn_queue, sorted(buckets | {self.bucket}))
        except RedisError as exc:
            log.warning("metrics: Redis unreachable (%s)", exc)
            return None


def read_database(connection: Connection) -> DatabaseFacts:
    """Jobs by kind and state, finished jobs' durations by kind, ledger files by state."""
    facts = DatabaseFacts()
    rows = connection.execute(
        select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)
    )
    facts.jobs = {(kind, state): int(n) for kind, state, n in rows}
    facts.durations = _durations(connection)
    rows = connection.execute(
        select(FileLedger.bucket, FileLedger.state, func.count()).group_by(
            FileLedger.bucket, FileLedger.state
        )
    )
    for bucket, state, n in rows:
        facts.buckets.add(bucket)
        facts.files[state] = facts.files.get(state, 0) + int(n)
    return facts


def _durations(connection: Connection) -> dict[str, tuple[list[int], int, float]]:
    """Run time (first start to finish) of the finished jobs, bucketed in SQL, by kind."""
    seconds = _seconds_between(connection.dialect.name, Job.started_at, Job.finished_at)
    columns = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in DURATION_BUCKETS]
    query = (
        select(Job.kind, func.count(), func.sum(seconds), *columns)
        .where(
            Job.state == JobState.FINISHED.value,
            Job.started_at.is_not(None),
            Job.finished_at.is_not(None),
        )
        .group_by(Job.kind)
    )
    return {
        kind: ([int(c or 0) for c in cumulative], int(count), float(total or 0.0))
        for kind, count, total, *cumulative in connection.execute(query)
    }


def _seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[float]:
    """``end - start`` in seconds, in the database's own arithmetic."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", end - start), Float)
    return (func.julianday(end) - func.julianday(start)) * 86400.0  # SQLite


def read_redis(client: redis.Redis, turn_queue: TurnQueue, buckets: Sequence[str]) -> RedisFacts:
    """RQ queue depths, file claims and lease losses of ``buckets``, the turn queue's length."""
    pipeline = client.pipeline(transaction=False)
    for name in queues.PRIORITY_ORDER:
        pipeline.llen(Queue(name, connection=client).key)
    for bucket in buckets:
        pipeline.get(keys.files_namespace(bucket) + "fence")  # one per claim taken
        pipeline.get(keys.file_lease_losses_key(bucket))
    replies = pipeline.execute()
    depths = dict(zip(queues.PRIORITY_ORDER, map(int, replies), strict=False))
    counters = [int(value or 0) for value in replies[len(queues.PRIORITY_ORDER) :]]
    waiting = turn_queue.snapshot(time.time()).waiting  # deadlines applied, as GET /queue does
    return RedisFacts(depths, sum(counters[0::2]), sum(counters[1::2]), len(waiting))


def database_families(facts: DatabaseFacts) -> Iterable[Metric]:
    """The metric families read from the database."""
    jobs = GaugeMetricFamily("yardmaster_jobs", "Jobs by kind and state", labels=["kind", "state"])
    every = {(kind.value, state.value): 0 for kind in JobKind for state in JobState}
    for (kind, state), n in sorted((every | facts.jobs).items()):
        jobs.add_metric([kind, state], float(n))
    yield jobs
    durations = HistogramMetricFamily(
        "yardmaster_job_duration_seconds",
        "Run time of finished jobs, from their first start to their finish, by kind",
        labels=["kind"],
    )
    none: tuple[list[int], int, float] = ([0] * len(DURATION_BUCKETS), 0, 0.0)
    for kind, (cumulative, count, total) in sorted(
        ({kind.value: none for kind in JobKind} | facts.durations).items()
    ):
        buckets = [(repr(b), float(c)) for b, c in zip(DURATION_BUCKETS, cumulative, strict=True)]
        durations.add_metric([kind], [*buckets, ("+Inf", float(count))], total)
    yield durations
    files = CounterMetricFamily(
        "yardmaster_files", "Bucket files finished for good, by outcome", labels=["state"]
    )
    for state in ("done", "quarantined"):
        files.add_metric([state], float(facts.files.get(state, 0)))
    yield files
    yield GaugeMetricFamily(
        "yardmaster_files_loaded",
        "Bucket files loaded and being processed (or not yet recorded done)",
        value=float(facts.files.get("loaded", 0)),
    )


def redis_families(facts: RedisFacts) -> Iterable[Metric]:
    """The metric families read from Redis."""
    depth = GaugeMetricFamily(
        "yardmaster_queue_depth", "Job segments waiting on each RQ queue", labels=["queue"]
    )
    for name, n in facts.queue_depths.items():
        depth.add_metric([name], float(n))
    yield depth
    yield CounterMetricFamily(
        "yardmaster_file_attempts",
        "Claims of bucket files taken by file workers (each one attempt at a file)",
        value=float(facts.file_attempts),
    )
    yield CounterMetricFamily(
        "yardmaster_file_lease_losses",
        "File leases lost by their worker (renewal refused or overdue, completion refused)",
        value=float(facts.lease_losses),
    )
    yield GaugeMetricFamily(
        "yardmaster_turn_queue_length",
        "Tokens waiting in the turn queue",
        value=float(facts.turn_queue_length),
    )
