"""``make run``'s restart policy (tools/supervisor.py): 1 s, doubling to 30 s, a new streak
after a process stayed up a while."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def load_supervisor() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "tools" / "supervisor.py"
    spec = importlib.util.spec_from_file_location("devstack_supervisor", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


Backoff = load_supervisor().Backoff


@pytest.mark.parametrize(
    ("streak", "seconds"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0), (6, 30.0), (7, 30.0), (1000, 30.0)],
)
def test_the_wait_before_a_restart_doubles_from_1_s_up_to_30_s(streak: int, seconds: float) -> None:
    assert Backoff().delay(streak) == seconds


def test_a_process_that_exits_soon_after_its_start_lengthens_the_streak() -> None:
    backoff = Backoff(stable_after=30.0)
    assert backoff.streak_after_exit(0, uptime=0.5) == 1
    assert backoff.streak_after_exit(1, uptime=0.5) == 2
    assert backoff.streak_after_exit(4, uptime=29.9) == 5


def test_a_process_that_stayed_up_a_while_starts_a_new_streak_restarted_after_1_s() -> None:
    backoff = Backoff(stable_after=30.0)
    streak = backoff.streak_after_exit(6, uptime=30.0)
    assert streak == 1
    assert backoff.delay(streak) == 1.0


def test_a_process_crashing_in_a_loop_is_restarted_ever_more_slowly_never_in_a_tight_loop() -> None:
    backoff = Backoff()
    streak, waits = 0, []
    for _ in range(8):
        streak = backoff.streak_after_exit(streak, uptime=0.1)
        waits.append(backoff.delay(streak))
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]
