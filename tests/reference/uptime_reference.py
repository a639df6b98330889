"""A slow, obviously correct store report: store by store, interval by interval, in plain
Python with zoneinfo. The vectorised report worker must agree with it exactly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
INF = 10**30
WINDOWS = {"hour": (3600, 60), "day": (86400, 3600), "week": (7 * 86400, 3600)}


def ns(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(microseconds=1) * 1000


def local_to_utc_ns(naive: dt.datetime, zone: ZoneInfo) -> int:
    """Earlier instant when ambiguous; the transition instant when the time does not exist."""
    first = naive.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return ns(first)
    low = ns(naive.replace(tzinfo=zone, fold=1)) // 1000
    high = ns(first) // 1000
    while low < high:  # first microsecond whose wall time is past the gap
        middle = (low + high) // 2
        wall = (EPOCH + dt.timedelta(microseconds=middle)).astimezone(zone).replace(tzinfo=None)
        if wall > naive:
            high = middle
        else:
            low = middle + 1
    return low * 1000


def zone_for(name: object) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("America/Chicago")


def business_hours_utc(
    rows: list[tuple[int, dt.time, dt.time]], zone: ZoneInfo, first: dt.date, last: dt.date
) -> list[tuple[int, int]]:
    if not rows:
        return [(-INF, INF)]
    intervals = []
    day = first
    while day <= last:
        for weekday, opens, closes in rows:
            if weekday == day.weekday():
                start = dt.datetime.combine(day, opens)
                end_day = day if closes > opens else day + dt.timedelta(days=1)
                end = dt.datetime.combine(end_day, closes)
                intervals.append((local_to_utc_ns(start, zone), local_to_utc_ns(end, zone)))
        day += dt.timedelta(days=1)
    return intervals


def overlap(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int] | None:
    start, end = max(a[0], b[0]), min(a[1], b[1])
    return (start, end) if end > start else None


def union_measure(pieces: Iterable[tuple[int, int]]) -> int:
    total, reach = 0, -INF
    for start, end in sorted(pieces):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def reference_report(polls: pd.DataFrame, hours: pd.DataFrame, zones: pd.DataFrame) -> pd.DataFrame:
    stamps = [ns(t.to_pydatetime()) for t in pd.to_datetime(polls["timestamp_utc"], utc=True)]
    now = max(stamps)
    zone_of = dict(zip(zones["store_id"].astype(str), zones["timezone_str"], strict=False))
    by_store: dict[str, list[tuple[int, bool]]] = {}
    for store, status, stamp in zip(
        polls["store_id"].astype(str), polls["status"], stamps, strict=True
    ):
        by_store.setdefault(store, []).append((stamp, str(status).lower() == "active"))
    first = (EPOCH + dt.timedelta(microseconds=min(stamps) // 1000)).date() - dt.timedelta(days=3)
    last = (EPOCH + dt.timedelta(microseconds=now // 1000)).date() + dt.timedelta(days=3)
    out = []
    for store in sorted(by_store):
        rows = [
            (
                int(d),
                pd.to_datetime(s).time() if isinstance(s, str) else s,
                pd.to_datetime(e).time() if isinstance(e, str) else e,
            )
            for sid, d, s, e in hours.itertuples(index=False)
            if str(sid) == store
        ]
        business = business_hours_utc(
            rows, zone_for(zone_of.get(store, "America/Chicago")), first, last
        )
        usable = sorted(p for p in by_store[store] if any(s <= p[0] < e for s, e in business))
        row: dict[str, object] = {"store_id": store}
        for name, (seconds, unit) in WINDOWS.items():
            window = (now - seconds * 10**9, now)
            in_window = [piece for b in business if (piece := overlap(b, window))]
            total = union_measure(in_window)
            up = 0
            for k, (stamp, active) in enumerate(usable):
                if not active:
                    continue
                low = -INF if k == 0 else -(-(usable[k - 1][0] + stamp) // 2)
                high = INF if k == len(usable) - 1 else -(-(stamp + usable[k + 1][0]) // 2)
                up += union_measure(p for piece in in_window if (p := overlap(piece, (low, high))))
            if not usable:
                total = up = 0
            row[f"uptime_last_{name}"] = round(up / 1e9 / unit, 2)
            row[f"downtime_last_{name}"] = round((total - up) / 1e9 / unit, 2)
        out.append(row)
    columns = [
        "store_id",
        "uptime_last_hour",
        "uptime_last_day",
        "uptime_last_week",
        "downtime_last_hour",
        "downtime_last_day",
        "downtime_last_week",
    ]
    return pd.DataFrame(out, columns=columns)
