"""The job state machine: every cell of the design note's state x action matrix (6.4)."""

from __future__ import annotations

import pytest

from yardmaster.shared.jobs import (
    TABLE,
    Action,
    JobState,
    Outcome,
    allowed_actions,
    decide,
    transition_sources,
)

Q, RUN, PING, PD, RES = "queued", "running", "pausing", "paused", "resuming"
STING, STD, FIN, FAIL = "stopping", "stopped", "finished", "failed"
HOLD = "on_hold"

#: (state, action) -> (outcome, resulting state or None, HTTP status), as the design note says.
MATRIX = {
    (Q, "pause"): ("transition", PD, 200),
    (Q, "resume"): ("noop", None, 200),
    (Q, "stop"): ("transition", STD, 200),
    (HOLD, "pause"): ("transition", PD, 200),
    (HOLD, "resume"): ("noop", None, 200),
    (HOLD, "stop"): ("transition", STD, 200),
    (RUN, "pause"): ("transition", PING, 202),
    (RUN, "resume"): ("noop", None, 200),
    (RUN, "stop"): ("transition", STING, 202),
    (PING, "pause"): ("noop", None, 202),
    (PING, "resume"): ("illegal", None, 409),
    (PING, "stop"): ("transition", STING, 202),
    (PD, "pause"): ("noop", None, 200),
    (PD, "resume"): ("transition", RES, 202),
    (PD, "stop"): ("transition", STD, 200),
    (RES, "pause"): ("transition", PD, 200),
    (RES, "resume"): ("noop", None, 202),
    (RES, "stop"): ("transition", STD, 200),
    (STING, "pause"): ("illegal", None, 409),
    (STING, "resume"): ("illegal", None, 409),
    (STING, "stop"): ("noop", None, 202),
    (STD, "pause"): ("illegal", None, 409),
    (STD, "resume"): ("illegal", None, 409),
    (STD, "stop"): ("noop", None, 200),
    (FIN, "pause"): ("illegal", None, 409),
    (FIN, "resume"): ("illegal", None, 409),
    (FIN, "stop"): ("illegal", None, 409),
    (FAIL, "pause"): ("illegal", None, 409),
    (FAIL, "resume"): ("illegal", None, 409),
    (FAIL, "stop"): ("illegal", None, 409),
}


def test_the_matrix_covers_every_state_and_action() -> None:
    assert set(MATRIX) == {(s.value, a.value) for s in JobState for a in Action}
    assert set(TABLE) == set(JobState)


@pytest.mark.parametrize(("cell", "expected"), MATRIX.items(), ids=[f"{s}-{a}" for s, a in MATRIX])
def test_each_action_in_each_state_is_decided_as_the_design_says(
    cell: tuple[str, str], expected: tuple[str, str | None, int]
) -> None:
    decision = decide(JobState(cell[0]), Action(cell[1]))

    assert (decision.outcome.value, decision.to_state, decision.status) == expected


def test_resume_while_pausing_asks_the_client_to_retry_shortly() -> None:
    assert decide(JobState.PAUSING, Action.RESUME).retry_after == 1


def test_terminal_states_allow_nothing_and_others_allow_something() -> None:
    for state in JobState:
        assert (allowed_actions(state) == []) is (
            state in {JobState.FINISHED, JobState.FAILED, JobState.STOPPED, JobState.STOPPING}
        )
        assert state.terminal is (state in {JobState.FINISHED, JobState.FAILED, JobState.STOPPED})


def test_a_running_job_can_be_paused_or_stopped() -> None:
    assert allowed_actions(JobState.RUNNING) == [Action.PAUSE, Action.STOP]


def test_transition_sources_are_the_states_an_action_moves() -> None:
    assert transition_sources(Action.RESUME) == {JobState.PAUSED}
    assert transition_sources(Action.PAUSE) == {
        JobState.QUEUED,
        JobState.ON_HOLD,
        JobState.RUNNING,
        JobState.RESUMING,
    }
    assert all(
        decide(s, Action.STOP).outcome is Outcome.TRANSITION
        for s in transition_sources(Action.STOP)
    )
