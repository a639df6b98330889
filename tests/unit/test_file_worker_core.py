"""The file worker's pure parts: the brief's statistics line, file content, tunables."""

from __future__ import annotations

import datetime as dt

import pytest

from yardmaster.file_worker.__main__ import parse_args, tunables_for
from yardmaster.file_worker.core.content import BadFileError, NotReadyError, Poll, parse
from yardmaster.file_worker.core.stats import Stats
from yardmaster.file_worker.core.tunables import Tunables
from yardmaster.shared.errors import ConfigurationError
from yardmaster.shared.settings import Settings


def stats_of(minutes: list[float]) -> Stats:
    stats = Stats()
    for value in minutes:
        stats = stats.add(value)
    return stats


def test_the_briefs_example_5_6_7_8_9_gives_total_35_and_sum_of_squares_30() -> None:
    stats = stats_of([5, 6, 7, 8, 9])

    assert stats.due
    assert stats.line() == "Files processed: 5, Total Time: 35, Sum of Squares: 30"


def test_sum_of_squares_is_over_the_whole_history_against_the_latest_file() -> None:
    times = [
        22.5050827618485,
        36.2682872380298,
        16.2480441711007,
        18.2287934550656,
        3.0,
        7.25,
        40.0,
        1.5,
        12.0,
        9.75,
    ]
    stats = stats_of(times)

    expected = sum((t - times[-1]) ** 2 for t in times)
    assert stats.sum_of_squares == pytest.approx(expected)
    assert (
        stats.line() == f"Files processed: 10, Total Time: {round(sum(times), 2):g}, "
        f"Sum of Squares: {round(expected, 2):g}"
    )


@pytest.mark.parametrize("files", [1, 4, 6, 9])
def test_a_line_is_due_only_every_5_files(files: int) -> None:
    assert not stats_of([1.0] * files).due


def test_numbers_have_at_most_two_decimals_and_no_trailing_zeros() -> None:
    assert (
        stats_of([1.005, 2.5, 3, 4, 5.25]).line()
        == "Files processed: 5, Total Time: 15.75, Sum of Squares: 32.21"
    )


def test_a_file_with_minutes_and_polls_is_parsed() -> None:
    text = '12.5\n{"store_id": 7, "status": "active", "timestamp_utc": "2023-01-25 10:00:00 UTC"}\n'

    content = parse(text)

    assert content.minutes == 12.5
    assert content.polls == [Poll("7", "active", dt.datetime(2023, 1, 25, 10, 0, tzinfo=dt.UTC))]


def test_the_original_simulators_content_without_newline_is_accepted() -> None:
    assert parse("22.5050827618485").minutes == 22.5050827618485


@pytest.mark.parametrize("text", ["", "\n", "22.5a", '3\n{"store_id": 1, "status": "act'])
def test_empty_or_half_written_files_are_not_ready_yet(text: str) -> None:
    with pytest.raises(NotReadyError):
        parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "-1\n",
        "nan\n",
        "3\nnot json\n",
        '3\n{"store_id": 1}\n',
        '3\n{"store_id": 1, "status": "maybe", "timestamp_utc": "x"}\n',
    ],
)
def test_complete_but_unusable_files_are_bad(text: str) -> None:
    with pytest.raises(BadFileError):
        parse(text)


def test_tunables_follow_the_simulation_speed_within_bounds() -> None:
    assert Tunables.for_speed(60) == Tunables(lease_ttl=30.0, heartbeat=7.5, margin=7.5, poll=1.0)
    fast = Tunables.for_speed(0.001)
    assert (fast.lease_ttl, fast.poll) == (0.2, 0.002)
    assert Tunables.for_speed(1).lease_ttl == 2.0


def test_every_tunable_comes_from_its_flag_then_its_variable_then_the_speed() -> None:
    settings = Settings(seconds_in_min=1, file_lease_ttl=4, file_heartbeat=0.5, file_poll=0.1)

    from_env = tunables_for(settings, parse_args([]))
    from_flags = tunables_for(settings, parse_args(["--lease-ttl", "8", "--heartbeat", "1"]))

    assert (from_env.lease_ttl, from_env.heartbeat, from_env.poll) == (4, 0.5, 0.1)
    assert (from_flags.lease_ttl, from_flags.heartbeat) == (8, 1)


def test_a_heartbeat_too_slow_for_its_lease_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="YARDMASTER_FILE_HEARTBEAT"):
        tunables_for(Settings(), parse_args(["--lease-ttl", "1", "--heartbeat", "0.8"]))
