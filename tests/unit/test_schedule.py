"""The simulator's schedule: the shipped 96 files, release times, repetition, bad input."""

from __future__ import annotations

import math
from importlib import resources

import pytest

from yardmaster.shared.bucket import is_bucket_file, oldest_first, partial_name
from yardmaster.simulator.core.schedule import (
    ScheduledFile,
    ScheduleError,
    file_content,
    parse_schedule,
    releases,
)


def shipped() -> list[ScheduledFile]:
    text = resources.files("yardmaster.simulator").joinpath("data/file-schedule.csv").read_text()
    return parse_schedule(text)


def test_the_shipped_schedule_is_the_briefs_96_files_of_2524_minutes() -> None:
    files = shipped()

    assert len(files) == 96
    assert files[0] == ScheduledFile("2018_06_28_00_00.txt", 22.5050827618485)
    assert files[-1].name == "2018_06_28_23_45.txt"
    assert math.isclose(sum(f.processing_minutes for f in files), 2524.0003, abs_tol=1e-3)


def test_file_k_is_released_after_k_plus_one_slots_of_15_simulated_minutes() -> None:
    times = [r.at_seconds for r in releases(shipped(), seconds_in_min=0.01)]

    assert times[0] == pytest.approx(0.15)
    assert times[1] == pytest.approx(0.30)
    assert times[95] == pytest.approx(14.40)


def test_further_days_repeat_the_schedule_under_the_next_dates() -> None:
    two_days = list(releases(shipped(), seconds_in_min=1, days=2))

    assert len(two_days) == 192
    assert two_days[96].file == ScheduledFile("2018_06_29_00_00.txt", 22.5050827618485)
    assert two_days[96].at_seconds == pytest.approx(97 * 15)
    assert two_days[-1].file.name == "2018_06_29_23_45.txt"


def test_days_none_repeats_until_the_caller_stops_reading() -> None:
    forever = releases(shipped(), seconds_in_min=1, days=None)

    names = [next(forever).file.name for _ in range(96 * 3 + 1)]
    assert names[-1] == "2018_07_01_00_00.txt"


def test_a_file_holds_its_processing_minutes_at_full_precision_on_the_first_line() -> None:
    content = file_content(ScheduledFile("2018_06_28_00_00.txt", 22.5050827618485))

    assert content.splitlines()[0] == "22.5050827618485"
    assert float(content.splitlines()[0]) == 22.5050827618485


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("name,minutes\n", "lacks column"),
        ("filename,processing_minutes\n", "no files"),
        ("filename,processing_minutes\nreport.csv,1\n", "line 2: 'report.csv'"),
        ("filename,processing_minutes\n2018_06_28_00_00.txt,ten\n", "line 2: processing_minutes"),
        ("filename,processing_minutes\n2018_06_28_00_00.txt,-1\n", "0 or more"),
        (
            "filename,processing_minutes\n2018_06_28_00_00.txt,1\n2018_06_28_00_00.txt,2\n",
            "twice",
        ),
    ],
)
def test_a_bad_schedule_is_refused_saying_where(text: str, error: str) -> None:
    with pytest.raises(ScheduleError, match=error):
        parse_schedule(text)


@pytest.mark.parametrize(
    ("name", "is_file"),
    [
        ("2018_06_28_02_15.txt", True),
        ("2018_06_28_02_15.txt.partial", False),
        (".2018_06_28_02_15.txt.partial", False),
        ("2018_06_28_02_15.csv", False),
        ("2018_6_28_02_15.txt", False),
        ("notes.txt", False),
    ],
)
def test_only_slot_names_are_bucket_files(name: str, is_file: bool) -> None:
    assert is_bucket_file(name) is is_file


def test_the_partial_name_of_a_file_is_never_a_bucket_file() -> None:
    assert not is_bucket_file(partial_name("2018_06_28_02_15.txt"))


def test_files_are_taken_oldest_first_and_others_ignored() -> None:
    names = ["2018_06_28_10_00.txt", "x.txt", "2018_06_28_09_45.txt", "2018_06_29_00_00.txt"]

    assert oldest_first(names) == [
        "2018_06_28_09_45.txt",
        "2018_06_28_10_00.txt",
        "2018_06_29_00_00.txt",
    ]
