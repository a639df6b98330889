"""The store report: the vectorised computation agrees with the slow reference everywhere,
including DST weeks, overnight and split hours, closed days and stores with few polls."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest
from reference.uptime_reference import reference_report

from yardmaster.report_worker.core.uptime import compute_report

ZONES = [
    "America/Chicago",
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Pacific/Auckland",
    "America/Denver",
    "Not/AZone",
]
#: Ends of weeks around DST changes: US spring (2023-03-12), US fall (2023-11-05),
#: Europe spring (2023-03-26), Australia/NZ autumn (2023-04-02), and an ordinary week.
NOWS = [
    "2023-03-13 18:13:22.47922",
    "2023-11-06 09:00:00",
    "2023-03-27 03:30:00",
    "2023-04-03 01:00:00",
    "2023-01-25 18:13:22.47922",
]


def random_hours(rng: random.Random, store: str) -> list[tuple[str, int, str, str]]:
    shape = rng.choice(["24x7", "day", "split", "overnight", "some-days", "full-day", "odd"])
    if shape == "24x7":
        return []
    rows = []
    for day in range(7):
        if shape == "some-days" and rng.random() < 0.5:
            continue
        if shape == "day":
            rows.append((store, day, "09:00:00", "17:30:00"))
        elif shape == "split":
            rows += [(store, day, "00:00:00", "00:10:00"), (store, day, "11:00:00", "23:59:00")]
        elif shape == "overnight":
            rows.append((store, day, "18:00:00", "02:00:00"))
        elif shape == "full-day":
            rows.append((store, day, "10:00:00", "10:00:00"))
        else:  # odd: around the DST gap and overlap hours, overlapping rows
            rows += [(store, day, "01:30:00", "03:30:00"), (store, day, "02:15:00", "06:00:00")]
        if shape == "some-days" and rows:
            rows[-1] = (store, day, "08:00:00", "20:00:00")
    return rows


def random_data(seed: int, stores: int = 40) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = random.Random(seed)
    now = pd.Timestamp(rng.choice(NOWS), tz="UTC")
    polls, hours, zones = [], [], []
    for n in range(stores):
        store = f"s{seed}-{n}"
        hours += random_hours(rng, store)
        if rng.random() < 0.9:
            zones.append((store, rng.choice(ZONES)))
        count = rng.choice([1, 2, 5, 30, 150])
        for _ in range(count):
            at = now - pd.Timedelta(seconds=rng.uniform(0, 8.5 * 86400))
            at = at.floor("h") if rng.random() < 0.1 else at.floor("us")  # exact boundaries too
            polls.append((store, "active" if rng.random() < 0.8 else "inactive", at))
    polls.append(("the-latest", "active", now))
    frame = pd.DataFrame(polls, columns=["store_id", "status", "timestamp_utc"])
    return (
        frame,
        pd.DataFrame(
            hours, columns=["store_id", "day_of_week", "start_time_local", "end_time_local"]
        ),
        pd.DataFrame(zones, columns=["store_id", "timezone_str"]),
    )


@pytest.mark.parametrize("seed", range(12))
def test_the_vectorised_report_matches_the_reference_on_edge_case_data(seed: int) -> None:
    polls, hours, zones = random_data(seed)

    fast = compute_report(polls, hours, zones).reset_index(drop=True)
    slow = reference_report(polls, hours, zones).reset_index(drop=True)

    assert list(fast["store_id"]) == list(slow["store_id"])
    pd.testing.assert_frame_equal(fast, slow, check_exact=False, atol=0.011, check_dtype=False)


def brief_store(polls: list[tuple[str, str]]) -> pd.DataFrame:
    """The brief's example store: open 9 AM to 12 PM local (Chicago) every day."""
    hours = pd.DataFrame(
        [("s", d, "09:00:00", "12:00:00") for d in range(7)],
        columns=["store_id", "day_of_week", "start_time_local", "end_time_local"],
    )
    zones = pd.DataFrame([("s", "America/Chicago")], columns=["store_id", "timezone_str"])
    frame = pd.DataFrame(
        [
            ("s", status, pd.Timestamp(f"2023-01-25 {hhmm}", tz="America/Chicago"))
            for hhmm, status in polls
        ],
        columns=["store_id", "status", "timestamp_utc"],
    )
    return compute_report(frame, hours, zones)


def test_the_briefs_example_store_polled_at_10_14_and_11_15() -> None:
    report = brief_store([("10:14", "active"), ("11:15", "inactive")]).iloc[0]

    # now = 11:15 local. Last hour 10:15-11:15: active until the midpoint 10:44:30.
    assert report["uptime_last_hour"] == 29.5
    assert report["downtime_last_hour"] == 30.5
    # Last day: today 9:00-11:15 (2.25 h): active 9:00-10:44:30, inactive after; plus
    # yesterday 11:15-12:00, nearest poll today 10:14 (active).
    assert report["uptime_last_day"] == round((104.5 + 45) / 60, 2)
    assert report["downtime_last_day"] == round(30.5 / 60, 2)


def test_up_plus_down_is_the_business_time_in_each_window() -> None:
    report = brief_store([("09:05", "inactive"), ("11:59", "active")]).iloc[0]

    assert report["uptime_last_hour"] + report["downtime_last_hour"] == 60
    # The week [now - 7 d, now): 11:59-12:00 seven days ago, six full days, today 9:00-11:59.
    assert round(report["uptime_last_week"] + report["downtime_last_week"], 2) == 21.0


def test_a_store_without_polls_in_business_hours_gets_zero_up_and_down() -> None:
    report = brief_store([("20:00", "inactive")]).iloc[0]

    assert report[1:].tolist() == [0, 0, 0, 0, 0, 0]


def test_row_order_does_not_matter() -> None:
    polls, hours, zones = random_data(99, stores=15)

    shuffled = compute_report(
        polls.sample(frac=1, random_state=1), hours.sample(frac=1, random_state=2), zones
    )

    pd.testing.assert_frame_equal(compute_report(polls, hours, zones), shuffled)


def test_a_nonexistent_opening_time_moves_to_the_transition_and_an_ambiguous_one_is_earlier() -> (
    None
):
    from zoneinfo import ZoneInfo

    from reference.uptime_reference import local_to_utc_ns, ns

    chicago = ZoneInfo("America/Chicago")
    gap = local_to_utc_ns(dt.datetime(2023, 3, 12, 2, 30), chicago)
    fold = local_to_utc_ns(dt.datetime(2023, 11, 5, 1, 30), chicago)

    assert gap == ns(dt.datetime(2023, 3, 12, 8, 0, tzinfo=dt.UTC))  # 03:00 CDT
    assert fold == ns(dt.datetime(2023, 11, 5, 6, 30, tzinfo=dt.UTC))  # 01:30 CDT, the first
