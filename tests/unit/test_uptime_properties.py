"""Properties of the store report that hold for any data (hypothesis)."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yardmaster.report_worker.core.uptime import compute_report

NOW = pd.Timestamp("2023-03-13 18:00:00", tz="UTC")  # the week holds the US spring-forward
TIMES = st.sampled_from(
    ["00:00:00", "01:30:00", "02:30:00", "09:00:00", "12:00:00", "18:45:00", "23:59:59"]
)
ZONES = st.sampled_from(["America/Chicago", "Europe/London", "Asia/Kolkata", "Pacific/Auckland"])


@st.composite
def stores(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    count = draw(st.integers(1, 4))
    polls, hours, zones = [], [], []
    for n in range(count):
        store = f"s{n}"
        zones.append((store, draw(ZONES)))
        for _ in range(draw(st.integers(0, 4))):
            hours.append((store, draw(st.integers(0, 6)), draw(TIMES), draw(TIMES)))
        for _ in range(draw(st.integers(1, 12))):
            seconds = draw(st.integers(0, 8 * 86400))
            polls.append(
                (
                    store,
                    draw(st.sampled_from(["active", "inactive"])),
                    NOW - pd.Timedelta(seconds=seconds),
                )
            )
    polls.append(("latest", "active", NOW))
    return (
        pd.DataFrame(polls, columns=["store_id", "status", "timestamp_utc"]),
        pd.DataFrame(
            hours, columns=["store_id", "day_of_week", "start_time_local", "end_time_local"]
        ),
        pd.DataFrame(zones, columns=["store_id", "timezone_str"]),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stores())
def test_uptime_plus_downtime_never_exceeds_the_window_and_nothing_is_negative(
    data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    report = compute_report(*data)

    for name, limit in [("hour", 60), ("day", 24), ("week", 168)]:
        up, down = report[f"uptime_last_{name}"], report[f"downtime_last_{name}"]
        assert (up >= 0).all()
        assert (down >= 0).all()
        assert ((up + down) <= limit + 0.011).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stores(), st.integers(0, 2**32 - 1))
def test_the_report_does_not_depend_on_row_order(
    data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], seed: int
) -> None:
    polls, hours, zones = data

    shuffled = compute_report(
        polls.sample(frac=1, random_state=seed), hours.sample(frac=1, random_state=seed), zones
    )

    pd.testing.assert_frame_equal(compute_report(polls, hours, zones), shuffled)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stores())
def test_a_24x7_store_always_adds_up_to_the_whole_window(
    data: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    polls, _hours, zones = data
    no_hours = pd.DataFrame(
        columns=["store_id", "day_of_week", "start_time_local", "end_time_local"]
    )

    report = compute_report(polls, no_hours, zones)

    # Each figure is rounded on its own, so their sum may be off by one in the last digit.
    assert ((report["uptime_last_hour"] + report["downtime_last_hour"] - 60).abs() <= 0.011).all()
    assert ((report["uptime_last_week"] + report["downtime_last_week"] - 168).abs() <= 0.011).all()
