"""The turn queue's rules, pure: tokens, order of issue, deadlines with an injected clock."""

from __future__ import annotations

import pytest

from yardmaster.shared.turnqueue.core import (
    CAPACITY,
    Ban,
    Event,
    EventType,
    Holder,
    LeaveOutcome,
    MalformedTokenError,
    QueueState,
    RedeemOutcome,
    ReleaseOutcome,
    Settings,
    TakeOutcome,
    advance,
    leave,
    lift_ban,
    parse_token,
    redeem,
    release,
    retry_after_seconds,
    smallest_free,
    take,
    token_at,
    token_index,
)

SETTINGS = Settings()
T0 = 1000.0
IP = "203.0.113.7"
OTHER_IP = "198.51.100.9"


def queue_of(count: int, now: float = T0, state: QueueState | None = None) -> QueueState:
    """``state`` (or an empty queue) after ``count`` takes at ``now``."""
    state = state or QueueState()
    for _ in range(count):
        state = take(state, IP, now, SETTINGS).state
    return state


def waiting(state: QueueState) -> list[str]:
    return [holder.token for holder in state.waiting]


def served(state: QueueState, token: str, now: float) -> QueueState:
    """The state after ``token`` is redeemed successfully at ``now``."""
    step = redeem(state, IP, token, None, now, SETTINGS)
    assert step.result.outcome is RedeemOutcome.SUCCESS, step.result
    return step.state


# Tokens and the order of issue


@pytest.mark.parametrize(
    ("token", "index"),
    [("A00", 0), ("A01", 1), ("A10", 10), ("A99", 99), ("B00", 100), ("Z99", 2599)],
)
def test_tokens_are_numbered_in_the_order_of_issue(token: str, index: int) -> None:
    assert token_index(token) == index
    assert token_at(index) == token


def test_there_are_2600_tokens_and_no_more() -> None:
    assert CAPACITY == 2600
    with pytest.raises(ValueError, match="out of range"):
        token_at(2600)


@pytest.mark.parametrize("text", ["A00", " B17 ", "Z99\n"])
def test_a_token_is_a_capital_letter_and_two_digits(text: str) -> None:
    assert parse_token(text) == text.strip()


@pytest.mark.parametrize(
    "text", ["", "a00", "A0", "A000", "AA0", "0A0", "A 00", "A\u0660\u0660", "Ä00", "A00;B01"]
)
def test_anything_else_is_malformed(text: str) -> None:
    with pytest.raises(MalformedTokenError):
        parse_token(text)


def test_tokens_are_issued_a00_a01_and_so_on_through_b00() -> None:
    issued = waiting(queue_of(101))

    assert issued[:3] == ["A00", "A01", "A02"]
    assert issued[10] == "A10"
    assert issued[99:] == ["A99", "B00"]


def test_a_string_that_left_is_issued_again_before_new_ones() -> None:
    state = served(queue_of(6), "A00", T0)

    state = queue_of(2, T0, state)

    assert waiting(state)[-2:] == ["A00", "A06"]


def test_strings_that_left_come_back_smallest_first() -> None:
    state = queue_of(6)
    for token in ("A03", "A01"):
        state = leave(state, IP, token, None, T0, SETTINGS).state

    assert waiting(queue_of(3, T0, state))[-3:] == ["A01", "A03", "A06"]


def test_the_smallest_free_string_is_next_and_none_when_all_are_waiting() -> None:
    assert smallest_free([]) == "A00"
    assert smallest_free(["A00", "A01", "A03"]) == "A02"
    assert smallest_free(token_at(i) for i in range(CAPACITY)) is None


def test_every_issue_gets_a_new_ticket_even_for_a_recycled_string() -> None:
    first = take(QueueState(), IP, T0, SETTINGS)
    again = take(served(first.state, "A00", T0), IP, T0, SETTINGS)

    assert (first.result.token, again.result.token) == ("A00", "A00")
    assert (first.result.ticket, again.result.ticket) == (1, 2)


def test_all_2600_waiting_means_full_until_the_head_deadline() -> None:
    everyone = tuple(Holder(token_at(i), i + 1) for i in range(CAPACITY))
    state = QueueState(waiting=everyone, head_since=T0, last_ticket=CAPACITY)

    full = take(state, IP, T0 + 20, SETTINGS)
    after_expiry = take(state, IP, T0 + 60, SETTINGS)

    assert full.result.outcome is TakeOutcome.FULL
    assert full.result.retry_after == 40
    assert (after_expiry.result.token, after_expiry.result.position) == ("A00", CAPACITY)


# Deadlines


def test_the_head_has_head_seconds_to_redeem() -> None:
    state = queue_of(1)

    just_in_time = redeem(state, IP, "A00", None, T0 + 59.999, SETTINGS)
    too_late = redeem(state, IP, "A00", None, T0 + 60, SETTINGS)

    assert just_in_time.result.outcome is RedeemOutcome.SUCCESS
    assert too_late.result.outcome is RedeemOutcome.EXPIRED


def test_the_next_head_clock_starts_when_the_previous_head_expires() -> None:
    state = take(queue_of(1), IP, T0 + 30, SETTINGS).state  # A01 joins 30 s later

    moved = advance(state, T0 + 119.5, SETTINGS)

    assert waiting(moved.state) == ["A01"]
    assert moved.state.head_deadline(SETTINGS) == T0 + 120


def test_a_token_joining_an_empty_queue_starts_its_clock_at_once() -> None:
    state = advance(queue_of(1), T0 + 500, SETTINGS).state

    state = take(state, IP, T0 + 700, SETTINGS).state

    assert state.head_deadline(SETTINGS) == T0 + 760


def test_expiry_chains_through_several_heads_at_their_own_instants() -> None:
    moved = advance(queue_of(3), T0 + 150, SETTINGS)

    assert waiting(moved.state) == ["A02"]
    assert moved.result == (
        Event(EventType.EXPIRE, "A00", T0 + 60, head_deadline=T0 + 120),
        Event(EventType.EXPIRE, "A01", T0 + 120, head_deadline=T0 + 180),
    )
    assert moved.state.head_deadline(SETTINGS) == T0 + 180


def test_any_elapsed_time_is_applied_at_once() -> None:
    moved = advance(queue_of(3), T0 + 86400 * 30, SETTINGS)

    assert waiting(moved.state) == []
    assert [event.at for event in moved.result] == [T0 + 60, T0 + 120, T0 + 180]


def test_a_viewer_window_freezes_the_next_head_clock() -> None:
    state = served(queue_of(2), "A00", T0 + 10)  # window until T0 + 70

    frozen = redeem(state, IP, "A01", None, T0 + 69.5, SETTINGS)
    moved = advance(state, T0 + 129.9, SETTINGS)

    assert frozen.result.outcome is RedeemOutcome.WRONG_TURN
    assert (frozen.result.position, frozen.result.retry_after) == (1, 1)
    assert waiting(moved.state) == ["A01"]
    assert moved.state.head_deadline(SETTINGS) == T0 + 130


def test_the_window_passes_even_if_the_viewer_vanished() -> None:
    state = served(queue_of(2), "A00", T0 + 10)

    assert redeem(state, IP, "A01", None, T0 + 70, SETTINGS).result.outcome is RedeemOutcome.SUCCESS
    assert advance(state, T0 + 130, SETTINGS).state.waiting == ()


def test_a_release_ends_the_window_early_and_starts_the_next_head_clock() -> None:
    state = served(queue_of(2), "A00", T0 + 10)

    step = release(state, IP, "A00", None, T0 + 25, SETTINGS)

    assert step.result.outcome is ReleaseOutcome.RELEASED
    assert step.state.head_deadline(SETTINGS) == T0 + 85
    assert step.events == (Event(EventType.RELEASE, "A00", T0 + 25, head_deadline=T0 + 85),)
    assert redeem(step.state, IP, "A01", None, T0 + 25, SETTINGS).result.outcome is (
        RedeemOutcome.SUCCESS
    )


def test_releasing_twice_or_after_the_window_changes_nothing() -> None:
    state = served(queue_of(2), "A00", T0)
    once = release(state, IP, "A00", None, T0 + 5, SETTINGS).state

    assert release(once, IP, "A00", None, T0 + 6, SETTINGS).result.outcome is (
        ReleaseOutcome.NOT_VIEWING
    )
    assert release(state, IP, "A00", None, T0 + 60, SETTINGS).result.outcome is (
        ReleaseOutcome.NOT_VIEWING
    )


def test_a_token_taken_during_a_window_starts_its_clock_when_the_window_ends() -> None:
    state = served(queue_of(1), "A00", T0)

    state = take(state, IP, T0 + 20, SETTINGS).state

    assert state.head_deadline(SETTINGS) == T0 + 120


def test_when_the_head_leaves_the_next_head_clock_starts_then() -> None:
    step = leave(queue_of(2), IP, "A00", None, T0 + 45, SETTINGS)

    assert step.result.outcome is LeaveOutcome.LEFT
    assert step.state.head_deadline(SETTINGS) == T0 + 105
    assert step.events == (Event(EventType.REMOVE, "A00", T0 + 45, 1, head_deadline=T0 + 105),)


# Outcomes of redeem


def test_the_head_is_served_and_its_window_opens() -> None:
    step = redeem(queue_of(2), IP, "A00", None, T0 + 5, SETTINGS)

    assert step.result.outcome is RedeemOutcome.SUCCESS
    assert (step.result.token, step.result.ticket, step.result.view_until) == ("A00", 1, T0 + 65)
    assert step.events == (
        Event(EventType.SERVE, "A00", T0 + 5, until=T0 + 65, head_deadline=T0 + 125),
    )


def test_two_heads_in_a_row_are_served_once_the_first_window_ends() -> None:
    state = served(queue_of(2), "A00", T0)
    state = release(state, IP, "A00", None, T0 + 1, SETTINGS).state

    assert waiting(served(state, "A01", T0 + 2)) == []


def test_a_token_behind_the_head_learns_its_position_and_when_to_retry() -> None:
    step = redeem(queue_of(3), IP, "A02", None, T0 + 15, SETTINGS)

    assert step.result.outcome is RedeemOutcome.WRONG_TURN
    assert (step.result.position, step.result.retry_after) == (3, 45)
    assert step.state == queue_of(3)


def test_a_token_that_expired_is_expired_not_a_cheat() -> None:
    state = queue_of(2)

    step = redeem(state, IP, "A00", None, T0 + 61, SETTINGS)

    assert step.result.outcome is RedeemOutcome.EXPIRED
    assert step.state.active_ban(IP, T0 + 61) is None


def test_a_stale_ticket_for_a_reissued_string_is_expired() -> None:
    first = take(QueueState(), IP, T0, SETTINGS)
    state = take(advance(first.state, T0 + 60, SETTINGS).state, OTHER_IP, T0 + 61, SETTINGS).state
    assert waiting(state) == ["A00"]

    stale = redeem(state, IP, "A00", first.result.ticket, T0 + 62, SETTINGS)
    fresh = redeem(state, OTHER_IP, "A00", 2, T0 + 62, SETTINGS)

    assert stale.result.outcome is RedeemOutcome.EXPIRED
    assert fresh.result.outcome is RedeemOutcome.SUCCESS


def test_a_served_token_presented_again_is_expired() -> None:
    state = served(queue_of(2), "A00", T0)

    assert redeem(state, IP, "A00", None, T0 + 1, SETTINGS).result.outcome is RedeemOutcome.EXPIRED


def test_a_token_never_issued_is_a_cheat_and_bans_the_caller() -> None:
    step = redeem(queue_of(1), IP, "Q42", None, T0, SETTINGS)

    ban = Ban("cheater: presented Q42, never issued", T0, T0 + 3600)
    assert step.result.outcome is RedeemOutcome.CHEATER
    assert step.result.ban == ban
    assert step.state.active_ban(IP, T0 + 3599) == ban
    assert step.state.active_ban(IP, T0 + 3600) is None


def test_a_banned_caller_is_refused_everything_until_the_ban_ends_or_is_lifted() -> None:
    state = redeem(queue_of(1), IP, "Q42", None, T0, SETTINGS).state

    assert take(state, IP, T0 + 1, SETTINGS).result.outcome is TakeOutcome.BANNED
    assert redeem(state, IP, "A00", None, T0 + 1, SETTINGS).result.outcome is RedeemOutcome.BANNED
    assert redeem(state, IP, "bad", None, T0 + 1, SETTINGS).result.outcome is RedeemOutcome.BANNED
    assert release(state, IP, "A00", None, T0 + 1, SETTINGS).result.outcome is ReleaseOutcome.BANNED
    assert leave(state, IP, "A00", None, T0 + 1, SETTINGS).result.outcome is LeaveOutcome.BANNED
    assert take(state, OTHER_IP, T0 + 1, SETTINGS).result.outcome is TakeOutcome.OK
    assert take(state, IP, T0 + 3600, SETTINGS).result.outcome is TakeOutcome.OK
    lifted = lift_ban(state, IP)
    assert lifted.result
    assert take(lifted.state, IP, T0 + 1, SETTINGS).result.outcome is TakeOutcome.OK


def test_an_unknown_token_on_an_empty_queue_is_queue_empty_without_a_ban() -> None:
    step = redeem(QueueState(), IP, "Q42", None, T0, SETTINGS)

    assert step.result.outcome is RedeemOutcome.QUEUE_EMPTY
    assert step.state.bans == {}


def test_a_token_that_left_long_ago_is_forgotten_and_then_a_cheat() -> None:
    settings = Settings(head_seconds=3600, remember_seconds=600)
    state = QueueState()
    for _ in range(2):
        state = take(state, IP, T0, settings).state
    state = leave(state, IP, "A01", None, T0, settings).state

    remembered = redeem(state, IP, "A01", None, T0 + 600, settings)
    forgotten = redeem(state, IP, "A01", None, T0 + 601, settings)

    assert remembered.result.outcome is RedeemOutcome.EXPIRED
    assert forgotten.result.outcome is RedeemOutcome.CHEATER


def test_a_malformed_token_is_refused_without_a_ban() -> None:
    step = redeem(queue_of(1), IP, "A0", None, T0, SETTINGS)

    assert step.result.outcome is RedeemOutcome.MALFORMED
    assert step.state == queue_of(1)


# Settings and retry-after


@pytest.mark.parametrize(
    "bad",
    [
        {"head_seconds": 0},
        {"view_seconds": -1},
        {"ban_seconds": float("inf")},
        {"event_history": 0},
    ],
)
def test_settings_refuse_durations_that_are_not_positive(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Settings(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("wait", "seconds"), [(0.1, 1), (1.0, 1), (1.2, 2), (45.0, 45), (-3.0, 1)])
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(
    wait: float, seconds: int
) -> None:
    assert retry_after_seconds(wait) == seconds
