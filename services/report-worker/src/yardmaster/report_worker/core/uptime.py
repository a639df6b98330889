"""Store uptime and downtime in business hours over the last hour, day and week (vectorised).

The semantics (README, "Store uptime reports"):

1. ``now`` is the latest poll. Windows are trailing and half-open: [now - 1 h, now),
   [now - 24 h, now), [now - 7 d, now).
2. Business hours are local times in the store's zone (missing: America/Chicago). No rows: open
   24x7; rows for some weekdays only: closed on the others. end <= start runs past midnight
   (end = start: 24 h); several rows on one day are united. Local times become UTC per calendar
   date: a time that does not exist moves forward to the transition, an ambiguous one takes the
   earlier instant.
3. Only polls inside business hours are used.
4. Each business-hours instant takes the status of the nearest usable poll in time (ties: the
   later poll). A store without usable polls gets 0 up and 0 down.
5. One row per polled store; the hour in minutes, day and week in hours, rounded to 2 decimals.

Everything is interval arithmetic on sorted int64 nanosecond arrays: no loop per store.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

DEFAULT_TIMEZONE = "America/Chicago"
NS_PER_S = 1_000_000_000
DAY_NS = 86_400 * NS_PER_S
#: Window name -> (length, unit in ns for the output).
WINDOWS = {
    "hour": (3_600 * NS_PER_S, 60 * NS_PER_S),
    "day": (DAY_NS, 3_600 * NS_PER_S),
    "week": (7 * DAY_NS, 3_600 * NS_PER_S),
}
COLUMNS = [
    "store_id",
    "uptime_last_hour",
    "uptime_last_day",
    "uptime_last_week",
    "downtime_last_hour",
    "downtime_last_day",
    "downtime_last_week",
]


def compute_report(
    polls: pd.DataFrame,
    hours: pd.DataFrame,
    zones: pd.DataFrame,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The report for every polled store.

    ``polls``: store_id (str), status ("active"/"inactive"), timestamp_utc (tz-aware).
    ``hours``: store_id, day_of_week (0 = Monday), start_time_local, end_time_local
    ("HH:MM[:SS[.ffffff]]" strings or ``datetime.time``). ``zones``: store_id, timezone_str.
    """
    stamps = _to_ns(polls["timestamp_utc"])
    if len(stamps) == 0:
        return pd.DataFrame(
            {c: pd.Series(dtype=object if c == "store_id" else float) for c in COLUMNS}
        )
    now_ns = int(now.value) if now is not None else int(stamps.max())
    # Stores are numbered (in sorted id order) so every merge runs on int64 keys.
    names = np.sort(pd.unique(_ids(polls["store_id"])))
    code = pd.Series(np.arange(len(names), dtype="int64"), index=names)
    poll_frame = pd.DataFrame(
        {
            "store_id": code[_ids(polls["store_id"])].to_numpy(),
            "t": stamps,
            "active": (polls["status"].astype(str).str.lower() == "active").to_numpy(),
        }
    )
    stores = code.to_numpy()
    hours = hours[pd.Series(_ids(hours["store_id"]), index=hours.index).isin(code.index)]
    hours = hours.assign(store_id=code[_ids(hours["store_id"])].to_numpy())
    zones = zones[pd.Series(_ids(zones["store_id"]), index=zones.index).isin(code.index)]
    zones = zones.assign(store_id=code[_ids(zones["store_id"])].to_numpy())
    lower = int(min(stamps.min(), now_ns - 7 * DAY_NS)) - 2 * DAY_NS
    upper = now_ns + 2 * DAY_NS
    business = business_intervals(stores, hours, zones, lower, upper)
    usable = usable_polls(poll_frame, business)
    result = pd.DataFrame({"store_id": stores})
    for name, (length, unit) in WINDOWS.items():
        total, up = window_measures(business, usable, now_ns - length, now_ns)
        has_polls = result["store_id"].isin(usable["store_id"])
        up_s = result["store_id"].map(up).fillna(0).where(has_polls, 0)
        total_s = result["store_id"].map(total).fillna(0).where(has_polls, 0)
        result[f"uptime_last_{name}"] = (up_s / unit).round(2)
        result[f"downtime_last_{name}"] = ((total_s - up_s) / unit).round(2)
    result["store_id"] = names
    return result[COLUMNS]


def _ids(values: pd.Series) -> np.ndarray:
    """Store ids as plain Python strings (one dtype everywhere, for the merges)."""
    return values.astype(str).to_numpy(dtype=object)


def _to_ns(values: pd.Series) -> np.ndarray:
    parsed = pd.to_datetime(values, utc=True)
    if not len(parsed):
        return np.array([], dtype="int64")
    return parsed.dt.as_unit("ns").astype("int64").to_numpy()


def business_intervals(
    stores: np.ndarray, hours: pd.DataFrame, zones: pd.DataFrame, lower: int, upper: int
) -> pd.DataFrame:
    """Disjoint UTC business intervals [start, end) per store, covering [lower, upper)."""
    always_open = stores[~np.isin(stores, hours["store_id"].to_numpy())]
    open_rows = pd.DataFrame({"store_id": always_open, "start": lower, "end": upper})
    local = _local_intervals(hours, lower, upper)
    utc = _localise(local, zones)
    intervals = pd.concat([open_rows, utc], ignore_index=True)
    intervals = intervals[(intervals["end"] > lower) & (intervals["start"] < upper)]
    return merge_overlaps(intervals)


def _local_intervals(hours: pd.DataFrame, lower: int, upper: int) -> pd.DataFrame:
    """Every hours row on every calendar date of the range, as naive local ns intervals."""
    first = pd.Timestamp(lower - DAY_NS, unit="ns").normalize()
    last = pd.Timestamp(upper + DAY_NS, unit="ns").normalize()
    dates = pd.date_range(first, last, freq="D").as_unit("ns")
    calendar = pd.DataFrame({"date": dates.astype("int64"), "day_of_week": dates.day_of_week})
    rows = pd.DataFrame(
        {
            "store_id": hours["store_id"].to_numpy(dtype="int64"),
            "day_of_week": pd.to_numeric(hours["day_of_week"]).astype(int).to_numpy(),
            "open": _time_of_day_ns(hours["start_time_local"]),
            "close": _time_of_day_ns(hours["end_time_local"]),
        }
    )
    joined = rows.merge(calendar, on="day_of_week")
    start = joined["date"] + joined["open"]
    end = joined["date"] + joined["close"] + np.where(joined["close"] <= joined["open"], DAY_NS, 0)
    return pd.DataFrame({"store_id": joined["store_id"], "start": start, "end": end})


def _time_of_day_ns(values: pd.Series) -> np.ndarray:
    text = values.astype(str).str.strip()
    return pd.to_timedelta(text).dt.as_unit("ns").astype("int64").to_numpy()


def _localise(local: pd.DataFrame, zones: pd.DataFrame) -> pd.DataFrame:
    """Naive local ns -> UTC ns with each store's zone (gaps forward, overlaps earlier)."""
    zone_of = dict(zip(zones["store_id"], zones["timezone_str"].astype(str), strict=False))
    names = local["store_id"].map(zone_of).fillna(DEFAULT_TIMEZONE).map(_known_zone)
    parts = []
    for zone, group in local.groupby(names.to_numpy(), sort=False):
        name = str(zone)
        converted = {}
        for column in ("start", "end"):
            naive = pd.DatetimeIndex(group[column].to_numpy().astype("datetime64[ns]"))
            aware = naive.tz_localize(
                name, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="shift_forward"
            )
            converted[column] = aware.as_unit("ns").asi8
        parts.append(pd.DataFrame({"store_id": group["store_id"].to_numpy(), **converted}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in ("store_id", "start", "end")})
    return pd.concat(parts, ignore_index=True)


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return DEFAULT_TIMEZONE
    return name


def merge_overlaps(intervals: pd.DataFrame) -> pd.DataFrame:
    """The union of each store's intervals, as disjoint intervals sorted by start."""
    ordered = intervals.sort_values(["store_id", "start"], kind="stable").reset_index(drop=True)
    if ordered.empty:
        return ordered.astype({"start": "int64", "end": "int64"})
    reach = ordered.groupby("store_id", sort=False)["end"].cummax()
    previous_reach = reach.groupby(ordered["store_id"], sort=False).shift(1)
    new_block = previous_reach.isna() | (ordered["start"] > previous_reach)
    block = new_block.cumsum()
    merged = ordered.groupby(block, sort=False).agg(
        store_id=("store_id", "first"), start=("start", "min"), end=("end", "max")
    )
    return merged.reset_index(drop=True).astype({"start": "int64", "end": "int64"})


def usable_polls(polls: pd.DataFrame, business: pd.DataFrame) -> pd.DataFrame:
    """The polls that fall inside their store's business intervals, sorted by store and time."""
    left = polls.sort_values("t", kind="stable")
    right = business.sort_values("start", kind="stable")
    found = pd.merge_asof(
        left, right, left_on="t", right_on="start", by="store_id", direction="backward"
    )
    inside = found[found["end"].notna() & (found["t"] < found["end"])]
    return inside[["store_id", "t", "active"]].sort_values(
        ["store_id", "t", "active"], kind="stable"
    )


def status_segments(usable: pd.DataFrame, origin: int) -> pd.DataFrame:
    """Piecewise-constant status per store: segment k starts at the midpoint between polls
    k-1 and k (the first at ``origin``), with ``before`` = active time before its start."""
    store = usable["store_id"].to_numpy()
    t = usable["t"].to_numpy()
    first = np.r_[True, store[1:] != store[:-1]]
    previous = np.r_[t[:1], t[:-1]]
    start = np.where(first, origin, previous + (t - previous) // 2 + (t - previous) % 2)
    active = usable["active"].to_numpy().astype("int64")
    following = np.r_[start[1:], start[-1:]]
    last = np.r_[store[1:] != store[:-1], True]
    length = np.where(last, 0, following - start)
    frame = pd.DataFrame(
        {"store_id": store, "start": start, "active": active, "gained": active * length}
    )
    frame["before"] = frame.groupby("store_id", sort=False)["gained"].cumsum() - frame["gained"]
    return frame[["store_id", "start", "active", "before"]]


def active_time_until(points: pd.DataFrame, segments: pd.DataFrame) -> np.ndarray:
    """For each (store_id, t) point: active time of its store from the origin up to t."""
    order = np.argsort(points["t"].to_numpy(), kind="stable")
    left = points.iloc[order].reset_index(drop=True)
    found = pd.merge_asof(
        left,
        segments.sort_values("start", kind="stable"),
        left_on="t",
        right_on="start",
        by="store_id",
        direction="backward",
    )
    value = (found["before"] + found["active"] * (found["t"] - found["start"])).to_numpy()
    result = np.empty(len(points), dtype="float64")
    result[order] = value
    return result


def window_measures(
    business: pd.DataFrame, usable: pd.DataFrame, window_start: int, window_end: int
) -> tuple[pd.Series, pd.Series]:
    """Per store: business time in [window_start, window_end), and the active part of it."""
    start = business["start"].clip(lower=window_start)
    end = business["end"].clip(upper=window_end)
    keep = end > start
    clipped = pd.DataFrame(
        {"store_id": business["store_id"][keep], "start": start[keep], "end": end[keep]}
    ).reset_index(drop=True)
    total = (clipped["end"] - clipped["start"]).groupby(clipped["store_id"]).sum()
    clipped = clipped[clipped["store_id"].isin(usable["store_id"])].reset_index(drop=True)
    if clipped.empty or usable.empty:
        return total.astype(float), pd.Series(dtype=float)
    origin = int(min(usable["t"].min(), window_start)) - DAY_NS
    segments = status_segments(usable, origin)
    at_end = active_time_until(
        pd.DataFrame({"store_id": clipped["store_id"], "t": clipped["end"]}), segments
    )
    at_start = active_time_until(
        pd.DataFrame({"store_id": clipped["store_id"], "t": clipped["start"]}), segments
    )
    up = pd.Series(at_end - at_start).groupby(clipped["store_id"]).sum()
    return total.astype(float), up
