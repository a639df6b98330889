"""The database schema, as SQLAlchemy 2 models. Change it only together with a migration."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Time,
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


class Base(DeclarativeBase):
    """Declarative base of every Yardmaster table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StoreStatus(Base):
    """One poll of a store: was it active or inactive at ``timestamp_utc``."""

    __tablename__ = "store_status"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'inactive')", name="status"),
        Index("ix_store_status_store_time", "store_id", "timestamp_utc"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(String(STORE_ID_LENGTH))
    status: Mapped[str] = mapped_column(String(8))
    timestamp_utc: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


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
