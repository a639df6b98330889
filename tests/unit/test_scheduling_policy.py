"""The scheduling policy, table by table: classes, tiers, scores, queues, aging, site caps."""

from __future__ import annotations

import math

import pytest

from yardmaster.shared import queues
from yardmaster.shared.scheduling import (
    ActivityTier,
    JobClass,
    Running,
    VolumeTier,
    activity_tier,
    aging_bound,
    capped,
    choose_victim,
    job_class,
    place,
    priority,
    promotion_due,
    queue_for,
    site_cap,
    volume_tier,
)

A, VA, H = ActivityTier.ACTIVE, ActivityTier.VERY_ACTIVE, ActivityTier.HYPERACTIVE
LOW, MEDIUM, HIGH = VolumeTier.LOW, VolumeTier.MEDIUM, VolumeTier.HIGH


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (1e-9, 1),
        (0.001, 1),
        (0.0010001, 2),
        (0.01, 2),
        (0.0100001, 3),
        (0.1, 3),
        (0.1000001, 4),
        (1.0, 4),
        (1.0000001, 5),
        (9.8887, 5),
        (10.0, 5),
    ],
)
def test_the_job_class_comes_from_the_expected_run_time_bounds_inclusive(
    seconds: float, expected: int
) -> None:
    assert job_class(seconds) == JobClass(expected)


@pytest.mark.parametrize("seconds", [0.0, -1.0, 10.0000001, 3600.0, math.nan, math.inf])
def test_no_positive_time_up_to_10_s_means_no_class(seconds: float) -> None:
    with pytest.raises(ValueError, match="at most 10 s"):
        job_class(seconds)


@pytest.mark.parametrize(
    ("records", "tier"),
    [(0, LOW), (10_000, LOW), (10_001, MEDIUM), (50_000, MEDIUM), (50_001, HIGH)],
)
def test_a_sites_volume_tier_follows_the_briefs_bands(records: int, tier: VolumeTier) -> None:
    assert volume_tier(records) is tier


@pytest.mark.parametrize(("queued", "tier"), [(0, A), (4, A), (5, VA), (9, VA), (10, H), (99, H)])
def test_a_customers_activity_tier_follows_its_queued_jobs(queued: int, tier: ActivityTier) -> None:
    assert activity_tier(queued) is tier


@pytest.mark.parametrize(
    ("cls", "volume", "activity", "score", "queue"),
    [
        (1, LOW, A, 5, queues.HIGH),
        (1, HIGH, A, 7, queues.HIGH),
        (1, LOW, H, 3, queues.DEFAULT),
        (2, LOW, A, 4, queues.HIGH),
        (2, LOW, H, 2, queues.DEFAULT),
        (2, MEDIUM, A, 5, queues.HIGH),
        (3, LOW, A, 2, queues.DEFAULT),
        (4, LOW, A, 1, queues.LOW),
        (4, HIGH, A, 3, queues.DEFAULT),
        (5, LOW, A, 0, queues.LOW),
        (5, HIGH, A, 2, queues.DEFAULT),
        (5, LOW, H, 0, queues.LOW),
    ],
)
def test_class_and_tiers_add_up_to_a_score_that_picks_the_queue(
    cls: int, volume: VolumeTier, activity: ActivityTier, score: int, queue: str
) -> None:
    placement = place(JobClass(cls), volume, activity)

    assert (placement.priority, placement.queue) == (score, queue)


def test_a_mixed_batch_is_ordered_light_jobs_and_large_sites_first_floods_last() -> None:
    batch = {
        "heavy, small site": (JobClass.C5, LOW, A),
        "light, small site": (JobClass.C1, LOW, A),
        "medium, large site": (JobClass.C3, HIGH, A),
        "light, flooding customer": (JobClass.C1, LOW, H),
        "heavy, large site": (JobClass.C5, HIGH, A),
    }
    order = sorted(batch, key=lambda name: -priority(*batch[name]))

    assert order == [
        "light, small site",
        "medium, large site",
        "light, flooding customer",
        "heavy, large site",
        "heavy, small site",
    ]


def test_scores_map_to_queues_in_listening_order() -> None:
    assert [queue_for(score) for score in range(8)] == [
        queues.LOW,
        queues.LOW,
        queues.DEFAULT,
        queues.DEFAULT,
        queues.HIGH,
        queues.HIGH,
        queues.HIGH,
        queues.HIGH,
    ]


def test_heavier_classes_may_wait_longer_before_aging() -> None:
    bounds = [aging_bound(cls, base_seconds=30) for cls in JobClass]

    assert bounds == [30, 30, 60, 120, 240]


def test_a_starving_job_is_promoted_at_half_its_bound_not_before() -> None:
    assert not promotion_due(JobClass.C5, waited_seconds=119.9, base_seconds=30)
    assert promotion_due(JobClass.C5, waited_seconds=120.0, base_seconds=30)
    assert promotion_due(JobClass.C1, waited_seconds=15.0, base_seconds=30)


@pytest.mark.parametrize(
    ("workers", "share", "cap"), [(1, 0.5, 1), (2, 0.5, 1), (3, 0.5, 1), (4, 0.5, 2), (4, 1, 4)]
)
def test_one_site_may_use_a_share_of_the_live_workers_and_always_at_least_one(
    workers: int, share: float, cap: int
) -> None:
    assert site_cap(workers, share) == cap


def test_only_the_heavier_classes_count_against_a_sites_cap() -> None:
    assert [capped(cls) for cls in JobClass] == [False, False, True, True, True]
    assert capped(None)  # a job of unknown class is treated as heavy


def running(job_id: str, cls: int, score: int, preemptions: int = 0) -> Running:
    return Running(job_id, cls, score, preemptions)


def test_nobody_yields_while_a_worker_is_free() -> None:
    assert choose_victim([running("heavy", 5, 0)], live_workers=2, urgent_priority=4) is None


def test_with_every_worker_busy_the_lowest_priority_heavy_job_yields() -> None:
    busy = [running("medium", 3, 0), running("heavy", 5, 1), running("heavier", 5, 0)]

    assert choose_victim(busy, live_workers=3, urgent_priority=4) == "heavier"


def test_light_jobs_equal_priorities_and_often_preempted_jobs_never_yield() -> None:
    busy = [running("light", 2, 0), running("peer", 5, 4), running("tired", 5, 0, 3)]

    assert choose_victim(busy, live_workers=3, urgent_priority=4) is None
