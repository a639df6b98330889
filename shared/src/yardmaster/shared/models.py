"""The database schema, as SQLAlchemy 2 models. Change it only together with a migration."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Constraint names are fixed so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Auto-incrementing 64-bit key (SQLite only auto-increments ``INTEGER PRIMARY KEY``).
BigId = BigInteger().with_variant(Integer(), "sqlite")
STORE_ID_LENGTH = 64


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back time-zone aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one (UTC)")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every Yardmaster table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StoreStatus(Base):
    """One poll of a store: was it active or inactive at ``timestamp_utc``.

    Readers read :data:`visible_store_status`, never this table: it also holds the rows of
    imports not yet published and the rows a ``replace`` import has hidden until the sweeper
    deletes them (see :class:`ImportFloor`).
    """

    __tablename__ = "store_status"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'inactive')", name="status"),
        Index("ix_store_status_store_time", "store_id", "timestamp_utc"),
        Index(
            "ix_store_status_import_job",
            "import_job",
            sqlite_where=text("import_job IS NOT NULL"),
            postgresql_where=text("import_job IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(String(STORE_ID_LENGTH))
    status: Mapped[str] = mapped_column(String(8))
    timestamp_utc: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: The import that wrote the row (NULL: a file worker did, visible at once).
    import_job: Mapped[str | None] = mapped_column(String(32))


class ImportBatch(Base):
    """The rows one import wrote into ``store_status``: hidden until ``seq`` is set (the
    import published them, in one short transaction), hidden again once a later ``replace``
    raises its table's ``floor_seq`` to or above ``seq``."""

    __tablename__ = "import_batches"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ImportFloor(Base):
    """What of a table a ``replace`` import has replaced: file-worker rows up to ``floor_id``
    and published imports up to ``floor_seq``. ``last_seq`` numbers publications;
    ``swept_id``: hidden file-worker rows up to it are deleted already."""

    __tablename__ = "import_floors"

    table_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    floor_id: Mapped[int] = mapped_column(BigInteger, default=0)
    floor_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    swept_id: Mapped[int] = mapped_column(BigInteger, default=0)


class BusinessHours(Base):
    """One opening interval of a store, in local time, on one weekday (0 = Monday)."""

    __tablename__ = "business_hours"
    __table_args__ = (
        CheckConstraint("day_of_week BETWEEN 0 AND 6", name="day_of_week"),
        Index("ix_business_hours_store", "store_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(String(STORE_ID_LENGTH))
    day_of_week: Mapped[int] = mapped_column(SmallInteger)
    start_time_local: Mapped[dt.time] = mapped_column(Time)
    end_time_local: Mapped[dt.time] = mapped_column(Time)


class StoreTimezone(Base):
    """The IANA time zone a store's business hours are written in."""

    __tablename__ = "timezones"

    store_id: Mapped[str] = mapped_column(String(STORE_ID_LENGTH), primary_key=True)
    timezone_str: Mapped[str] = mapped_column(String(64))


class Job(Base):
    """A long-running job: the source of truth for its state (RQ only carries its segments)."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state", "state"),
        Index("ix_jobs_created", "created_at"),
        Index("ix_jobs_owner", "owner"),
        Index("ix_jobs_customer_state", "customer_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(128))
    site: Mapped[str | None] = mapped_column(String(128))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))
    #: The state before the latest transition (so that one statement tells who it moved from).
    previous_state: Mapped[str | None] = mapped_column(String(16))
    #: Bumped on every change of the row; the ETag of the job and the id of its events.
    state_version: Mapped[int] = mapped_column(Integer, default=0)
    #: Fencing token: incremented by every claim; every write by a worker must match it.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    queue: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    #: Id of the RQ job carrying the current or last segment of work.
    segment: Mapped[str | None] = mapped_column(String(64))
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    checkpoint_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    progress_fraction: Mapped[float] = mapped_column(Float, default=0.0)
    progress_message: Mapped[str] = mapped_column(String(256), default="")
    progress_done: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_total: Mapped[int | None] = mapped_column(BigInteger)
    result_path: Mapped[str | None] = mapped_column(String(512))
    result_name: Mapped[str | None] = mapped_column(String(256))
    result_type: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    stop_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Scheduling (see yardmaster.shared.scheduling): who the job is for and how it was placed.
    customer_id: Mapped[int | None] = mapped_column(Integer)
    site_id: Mapped[int | None] = mapped_column(Integer)
    job_class: Mapped[int | None] = mapped_column(SmallInteger)
    volume_tier: Mapped[str | None] = mapped_column(String(16))
    activity_tier: Mapped[str | None] = mapped_column(String(16))
    #: When the current segment was put on its queue: the wait that aging measures.
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    promotions: Mapped[int] = mapped_column(Integer, default=0)
    #: Times the job yielded its worker to a more urgent one (checkpointed and requeued).
    preemptions: Mapped[int] = mapped_column(Integer, default=0)
    #: Attempts that crashed or lost their worker (``attempt`` also counts pauses and yields);
    #: the job fails when this reaches ``max_attempts``.
    failures: Mapped[int] = mapped_column(Integer, default=0)


class JobHistory(Base):
    """One change of a job's state, written in the transaction that made it (creation first)."""

    __tablename__ = "job_history"
    __table_args__ = (Index("ix_job_history_job", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    #: None for the entry of the job's creation.
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: Why or by whom, when known: "pause requested", "worker rw-1 claimed (attempt 2)".
    reason: Mapped[str | None] = mapped_column(String(256))
    #: The job's attempt (its fencing token) once the change was made.
    attempt: Mapped[int] = mapped_column(Integer, default=0)


class Site(Base):
    """A customer site (the brief's ``Site``): its customers' record volume sets their tier."""

    __tablename__ = "sites"
    __table_args__ = {"sqlite_autoincrement": True}  # ids never reused: jobs refer to them

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    domain: Mapped[str] = mapped_column(String(255), default="")
    url: Mapped[str] = mapped_column(String(512), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Customer(Base):
    """A user record of a site (the brief's ``UserRecords``); jobs are submitted for one."""

    __tablename__ = "customers"
    __table_args__ = (
        Index("ix_customers_site_active", "site_id", "is_active"),
        {"sqlite_autoincrement": True},  # ids never reused: jobs refer to them
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(128))
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    country: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(64), default="")
    city: Mapped[str] = mapped_column(String(64), default="")
    pincode: Mapped[str] = mapped_column(String(16), default="")
    dob: Mapped[dt.date | None] = mapped_column(Date)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class StagedBusinessHours(Base):
    """Rows of a running import into ``business_hours``."""

    __tablename__ = "staging_business_hours"
    __table_args__ = (Index("ix_staging_business_hours_job", "job_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32))
    store_id: Mapped[str] = mapped_column(String(STORE_ID_LENGTH))
    day_of_week: Mapped[int] = mapped_column(SmallInteger)
    start_time_local: Mapped[dt.time] = mapped_column(Time)
    end_time_local: Mapped[dt.time] = mapped_column(Time)


class StagedTimezone(Base):
    """Rows of a running import into ``timezones``."""

    __tablename__ = "staging_timezones"
    __table_args__ = (Index("ix_staging_timezones_job", "job_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32))
    store_id: Mapped[str] = mapped_column(String(STORE_ID_LENGTH))
    timezone_str: Mapped[str] = mapped_column(String(64))


class FileLedger(Base):
    """One bucket file's record in the database: loaded once, then done or quarantined."""

    __tablename__ = "file_ledger"
    __table_args__ = (Index("ix_file_ledger_state", "state"),)

    bucket: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # loaded, done, quarantined
    worker: Mapped[str | None] = mapped_column(String(128))
    minutes: Mapped[float | None] = mapped_column(Float)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


#: The polls a reader sees (a view; kept out of ``Base.metadata``, which holds tables only).
#: Defined by migration 0007: file-worker rows above the floor, and published imports' rows
#: above the floor's publication.
views = MetaData()
visible_store_status = Table(
    "visible_store_status",
    views,
    Column("id", BigId, primary_key=True),
    Column("store_id", String(STORE_ID_LENGTH)),
    Column("status", String(8)),
    Column("timestamp_utc", DateTime(timezone=True)),
)
