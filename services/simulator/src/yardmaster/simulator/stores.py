"""``python -m yardmaster.simulator.stores --out DIR [--stores N] [--seed S]``

Writes realistic store-monitoring data in the public data set's own formats: ``store_status.csv``
(about 129 polls per store over 7.76 days, loosely hourly, ending 2023-01-25 18:13:22.47922 UTC),
``menu_hours.csv`` (24x7 stores without rows, daily hours, split rows past midnight, closed days)
and ``timezones.csv`` (mostly US zones, a few stores without a row). Seeded and deterministic.
The default size is the real one: 14,092 stores, about 1.8 M polls.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

HOUR_US = 3_600_000_000
NOW_US = int(np.datetime64("2023-01-25T18:13:22.479220", "us").astype(np.int64))
START_US = int(np.datetime64("2023-01-18T00:00:00", "us").astype(np.int64))
ZONES = [
    "America/Chicago",
    "America/New_York",
    "America/Los_Angeles",
    "America/Denver",
    "America/Boise",
    "America/Phoenix",
    "Asia/Beirut",
    "Europe/London",
    "Australia/Sydney",
]
ZONE_WEIGHTS = [0.40, 0.28, 0.15, 0.08, 0.03, 0.02, 0.02, 0.01, 0.01]


def store_ids(rng: np.random.Generator, stores: int) -> np.ndarray:
    """Distinct 64-bit integer ids, as strings (the first version of the data set)."""
    ids = np.unique(rng.integers(10**15, 2**63 - 1, size=stores * 2, dtype=np.int64))
    return rng.permutation(ids)[:stores].astype(str)


def polls(rng: np.random.Generator, ids: np.ndarray) -> list[tuple[str, str, str]]:
    """About 0.7 polls per store per hour, mostly in the first 15 minutes of the hour."""
    hours = (NOW_US - START_US) // HOUR_US + 1
    store = np.repeat(np.arange(len(ids)), hours)
    hour = np.tile(np.arange(hours), len(ids))
    keep = rng.random(store.size) < 0.7
    store, hour = store[keep], hour[keep]
    minute = np.where(
        rng.random(store.size) < 0.8, rng.uniform(0, 15, store.size), rng.uniform(0, 60, store.size)
    )
    at = START_US + hour * HOUR_US + (minute * 60e6).astype(np.int64)
    inside = at <= NOW_US
    store, at = store[inside], at[inside]
    reliability = rng.beta(30, 1.5, size=len(ids))
    active = rng.random(store.size) < reliability[store]
    store, at = np.r_[store, 0], np.r_[at, NOW_US]  # the latest poll: "now" is the real one
    status = np.where(np.r_[active, True], "active", "inactive")
    order = rng.permutation(store.size)
    stamps = format_stamps(at[order])
    return list(zip(ids[store[order]].tolist(), status[order].tolist(), stamps, strict=True))


def format_stamps(microseconds: np.ndarray) -> list[str]:
    """``2023-01-22 12:09:39.388884 UTC``, trailing zeros of the fraction trimmed (as BigQuery)."""
    text = np.datetime_as_string(microseconds.astype("datetime64[us]"), unit="us")
    return [t.replace("T", " ").rstrip("0").rstrip(".") + " UTC" for t in text.tolist()]


def business_hours(rng: np.random.Generator, ids: np.ndarray) -> list[tuple[str, int, str, str]]:
    """Hours rows by the shapes of the real file; about 21 % of stores have none (24x7)."""
    rows: list[tuple[str, int, str, str]] = []
    shapes = rng.choice(
        ["24x7", "daily", "split", "closed-days", "all-day"],
        size=len(ids),
        p=[0.21, 0.50, 0.10, 0.10, 0.09],
    )
    for store, shape in zip(ids, shapes, strict=True):
        if shape == "24x7":
            continue
        opens = f"{int(rng.integers(6, 12)):02d}:{int(rng.choice([0, 15, 30, 45])):02d}:00"
        closes = f"{int(rng.integers(18, 24)):02d}:{int(rng.choice([0, 30, 59])):02d}:00"
        for day in range(7):
            if shape == "closed-days" and day in (0, 6):
                continue
            if shape == "split":
                rows += [(store, day, "00:00:00", "00:10:00"), (store, day, "11:00:00", "23:59:00")]
            elif shape == "all-day":
                rows.append((store, day, "00:00:00", "23:59:59"))
            else:
                rows.append((store, day, opens, closes))
    return rows


def timezones(rng: np.random.Generator, ids: np.ndarray) -> list[tuple[str, str]]:
    """A zone for about 96 % of the stores (the others default to America/Chicago)."""
    listed = ids[rng.random(len(ids)) < 0.96]
    zones = rng.choice(ZONES, size=len(listed), p=ZONE_WEIGHTS)
    return list(zip(listed.tolist(), zones.tolist(), strict=True))


def write_csv(path: Path, header: list[str], rows: Iterable[tuple[object, ...]]) -> int:
    """Write a CSV with a header; return the number of data rows."""
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def generate(out: Path, stores: int, seed: int) -> dict[str, int]:
    """Write the three files into ``out``; return their row counts."""
    rng = np.random.default_rng(seed)
    ids = store_ids(rng, stores)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "store_status": write_csv(
            out / "store_status.csv", ["store_id", "status", "timestamp_utc"], polls(rng, ids)
        ),
        "business_hours": write_csv(
            out / "menu_hours.csv",
            ["store_id", "day", "start_time_local", "end_time_local"],
            business_hours(rng, ids),
        ),
        "timezones": write_csv(
            out / "timezones.csv", ["store_id", "timezone_str"], timezones(rng, ids)
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m yardmaster.simulator.stores",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stores", type=int, default=14_092)
    parser.add_argument("--seed", type=int, default=2023)
    args = parser.parse_args(argv)
    if args.stores < 1:
        parser.error("--stores must be at least 1")
    counts = generate(args.out, args.stores, args.seed)
    print(", ".join(f"{name}: {rows:,} rows" for name, rows in counts.items()) + f" in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
