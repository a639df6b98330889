"""The job contract: kinds, states, user actions and the transition table, written once.

Pure: values in, values out. The database enforces these decisions with conditional updates
(see :mod:`yardmaster.shared.jobstore`), so two racing requests cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobKind(StrEnum):
    """What a job does."""

    REPORT = "report"
    IMPORT = "import"
    EXPORT = "export"
    WORK = "work"


class JobState(StrEnum):
    """Where a job is in its life (design note job-control.md, 6.3)."""

    QUEUED = "queued"
    #: Waiting, but not to be started: its customer is deactivated (:mod:`.holds`).
    ON_HOLD = "on_hold"
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    RESUMING = "resuming"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        """True once nothing can change the job any more."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.STOPPED, JobState.FINISHED, JobState.FAILED})
#: States in which a worker holds the job (and its lease).
HELD_STATES = frozenset({JobState.RUNNING, JobState.PAUSING, JobState.STOPPING})
#: States from which a worker may claim the job.
CLAIMABLE_STATES = frozenset({JobState.QUEUED, JobState.RESUMING})


class Action(StrEnum):
    """What a user can ask of a job over HTTP."""

    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


class Outcome(StrEnum):
    """How a request is answered."""

    TRANSITION = "transition"  # the state changes
    NOOP = "noop"  # already there or on the way: answer with the current state
    ILLEGAL = "illegal"  # 409 Conflict


@dataclass(frozen=True)
class Decision:
    """The answer of the transition table to one action in one state."""

    outcome: Outcome
    to_state: JobState | None
    status: int
    retry_after: int | None = None


def _move(to: JobState, status: int) -> Decision:
    return Decision(Outcome.TRANSITION, to, status)


def _noop(status: int) -> Decision:
    return Decision(Outcome.NOOP, None, status)


_ILLEGAL = Decision(Outcome.ILLEGAL, None, 409)

#: The matrix of the design note (6.4), plus ``on_hold``: state x action -> decision.
TABLE: dict[JobState, dict[Action, Decision]] = {
    JobState.QUEUED: {
        Action.PAUSE: _move(JobState.PAUSED, 200),
        Action.RESUME: _noop(200),
        Action.STOP: _move(JobState.STOPPED, 200),
    },
    JobState.ON_HOLD: {
        Action.PAUSE: _move(JobState.PAUSED, 200),
        Action.RESUME: _noop(200),  # it starts once its customer is active again
        Action.STOP: _move(JobState.STOPPED, 200),
    },
    JobState.RUNNING: {
        Action.PAUSE: _move(JobState.PAUSING, 202),
        Action.RESUME: _noop(200),
        Action.STOP: _move(JobState.STOPPING, 202),
    },
    JobState.PAUSING: {
        Action.PAUSE: _noop(202),
        Action.RESUME: Decision(Outcome.ILLEGAL, None, 409, retry_after=1),
        Action.STOP: _move(JobState.STOPPING, 202),
    },
    JobState.PAUSED: {
        Action.PAUSE: _noop(200),
        Action.RESUME: _move(JobState.RESUMING, 202),
        Action.STOP: _move(JobState.STOPPED, 200),
    },
    JobState.RESUMING: {
        Action.PAUSE: _move(JobState.PAUSED, 200),
        Action.RESUME: _noop(202),
        Action.STOP: _move(JobState.STOPPED, 200),
    },
    JobState.STOPPING: {
        Action.PAUSE: _ILLEGAL,
        Action.RESUME: _ILLEGAL,
        Action.STOP: _noop(202),
    },
    JobState.STOPPED: {Action.PAUSE: _ILLEGAL, Action.RESUME: _ILLEGAL, Action.STOP: _noop(200)},
    JobState.FINISHED: {Action.PAUSE: _ILLEGAL, Action.RESUME: _ILLEGAL, Action.STOP: _ILLEGAL},
    JobState.FAILED: {Action.PAUSE: _ILLEGAL, Action.RESUME: _ILLEGAL, Action.STOP: _ILLEGAL},
}


def decide(state: JobState, action: Action) -> Decision:
    """What ``action`` does to a job in ``state``."""
    return TABLE[state][action]


def allowed_actions(state: JobState) -> list[Action]:
    """The actions that change a job in ``state`` (no-ops and conflicts excluded)."""
    return [a for a in Action if TABLE[state][a].outcome is Outcome.TRANSITION]


def transition_sources(action: Action) -> frozenset[JobState]:
    """Every state from which ``action`` moves the job (for conditional updates)."""
    return frozenset(s for s, row in TABLE.items() if row[action].outcome is Outcome.TRANSITION)
