"""The turn queue's rules, pure: tokens, order of issue, deadlines with an injected clock."""

from __future__ import annotations

import pytest

from yardmaster.shared.turnqueue.core import (
    CAPACITY,
    Ban,
    Claimed,
    Event,
    EventType,
    Holder,
    LeaveOutcome,
    MalformedTokenError,
    QueueState,
    RedeemOutcome,
    ReleaseOutcome,
    Settings,
    Step,
    Strikes,
    TakeOutcome,
    TakeResult,
    advance,
    claim_hash,
    claimed,
    leave,
    lift_ban,
    parse_token,
    presented_claim,
    redeem,
    release,
    retry_after_seconds,
    smallest_free,
    strike,
    take,
    token_at,
    token_index,
)

SETTINGS = Settings()
T0 = 1000.0
IP = "203.0.113.7"
OTHER_IP = "198.51.100.9"


def claim(ticket: int) -> str:
    """The claim these tests hand out with ticket ``ticket`` (the store draws random ones)."""
    return f"claim-{ticket}"


def take_one(
    state: QueueState, now: float, ip: str = IP, settings: Settings = SETTINGS
) -> Step[TakeResult]:
    return take(state, ip, claim(state.last_ticket + 1), now, settings)


def queue_of(count: int, now: float = T0, state: QueueState | None = None) -> QueueState:
    """``state`` (or an empty queue) after ``count`` takes at ``now``, each from its own
    address (so no address reaches its share)."""
    state = state or QueueState()
    for n in range(count):
        state = take_one(state, now, f"10.0.{n // 256}.{n % 256}").state
    return state


def own(state: QueueState, token: str) -> str:
    """The claim of the waiting (else the viewing) issue of ``token``."""
    holder = state.holder(token)
    if holder is not None:
        return claim(holder.ticket)
    assert state.viewer is not None
    assert state.viewer.token == token
    return claim(state.viewer.ticket)


def waiting(state: QueueState) -> list[str]:
    return [holder.token for holder in state.waiting]


def served(state: QueueState, token: str, now: float) -> QueueState:
    """The state after ``token`` is redeemed successfully at ``now``."""
    step = redeem(state, IP, token, own(state, token), now, SETTINGS)
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
        state = leave(state, IP, token, own(state, token), T0, SETTINGS).state

    assert waiting(queue_of(3, T0, state))[-3:] == ["A01", "A03", "A06"]


def test_the_smallest_free_string_is_next_and_none_when_all_are_waiting() -> None:
    assert smallest_free([]) == "A00"
    assert smallest_free(["A00", "A01", "A03"]) == "A02"
    assert smallest_free(token_at(i) for i in range(CAPACITY)) is None


def test_every_issue_gets_a_new_ticket_even_for_a_recycled_string() -> None:
    first = take_one(QueueState(), T0)
    again = take_one(served(first.state, "A00", T0), T0)

    assert (first.result.token, again.result.token) == ("A00", "A00")
    assert (first.result.ticket, again.result.ticket) == (1, 2)


def test_all_2600_waiting_means_full_until_the_head_deadline() -> None:
    everyone = tuple(
        Holder(token_at(i), i + 1, claim_hash(claim(i + 1)), f"10.1.{i // 256}.{i % 256}")
        for i in range(CAPACITY)
    )
    state = QueueState(waiting=everyone, head_since=T0, last_ticket=CAPACITY)

    full = take_one(state, T0 + 20)
    after_expiry = take_one(state, T0 + 60)

    assert full.result.outcome is TakeOutcome.FULL
    assert full.result.retry_after == 40
    assert (after_expiry.result.token, after_expiry.result.position) == ("A00", CAPACITY)


# Deadlines


def test_the_head_has_head_seconds_to_redeem() -> None:
    state = queue_of(1)

    just_in_time = redeem(state, IP, "A00", own(state, "A00"), T0 + 59.999, SETTINGS)
    too_late = redeem(state, IP, "A00", own(state, "A00"), T0 + 60, SETTINGS)

    assert just_in_time.result.outcome is RedeemOutcome.SUCCESS
    assert too_late.result.outcome is RedeemOutcome.EXPIRED


def test_the_next_head_clock_starts_when_the_previous_head_expires() -> None:
    state = take_one(queue_of(1), T0 + 30).state  # A01 joins 30 s later

    moved = advance(state, T0 + 119.5, SETTINGS)

    assert waiting(moved.state) == ["A01"]
    assert moved.state.head_deadline(SETTINGS) == T0 + 120


def test_a_token_joining_an_empty_queue_starts_its_clock_at_once() -> None:
    state = advance(queue_of(1), T0 + 500, SETTINGS).state

    state = take_one(state, T0 + 700).state

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

    frozen = redeem(state, IP, "A01", own(state, "A01"), T0 + 69.5, SETTINGS)
    moved = advance(state, T0 + 129.9, SETTINGS)

    assert frozen.result.outcome is RedeemOutcome.WRONG_TURN
    assert (frozen.result.position, frozen.result.retry_after) == (1, 1)
    assert waiting(moved.state) == ["A01"]
    assert moved.state.head_deadline(SETTINGS) == T0 + 130


def test_the_window_passes_even_if_the_viewer_vanished() -> None:
    state = served(queue_of(2), "A00", T0 + 10)

    assert (
        redeem(state, IP, "A01", own(state, "A01"), T0 + 70, SETTINGS).result.outcome
        is RedeemOutcome.SUCCESS
    )
    assert advance(state, T0 + 130, SETTINGS).state.waiting == ()


def test_a_release_ends_the_window_early_and_starts_the_next_head_clock() -> None:
    state = served(queue_of(2), "A00", T0 + 10)

    step = release(state, IP, "A00", own(state, "A00"), T0 + 25, SETTINGS)

    assert step.result.outcome is ReleaseOutcome.RELEASED
    assert step.state.head_deadline(SETTINGS) == T0 + 85
    assert step.events == (Event(EventType.RELEASE, "A00", T0 + 25, head_deadline=T0 + 85),)
    assert redeem(
        step.state, IP, "A01", own(step.state, "A01"), T0 + 25, SETTINGS
    ).result.outcome is (RedeemOutcome.SUCCESS)


def test_releasing_twice_or_after_the_window_changes_nothing() -> None:
    state = served(queue_of(2), "A00", T0)
    once = release(state, IP, "A00", own(state, "A00"), T0 + 5, SETTINGS).state

    assert release(once, IP, "A00", claim(1), T0 + 6, SETTINGS).result.outcome is (
        ReleaseOutcome.NOT_VIEWING
    )
    assert release(state, IP, "A00", own(state, "A00"), T0 + 60, SETTINGS).result.outcome is (
        ReleaseOutcome.NOT_VIEWING
    )


def test_a_token_taken_during_a_window_starts_its_clock_when_the_window_ends() -> None:
    state = served(queue_of(1), "A00", T0)

    state = take_one(state, T0 + 20).state

    assert state.head_deadline(SETTINGS) == T0 + 120


def test_when_the_head_leaves_the_next_head_clock_starts_then() -> None:
    step = leave(queue_of(2), IP, "A00", own(queue_of(2), "A00"), T0 + 45, SETTINGS)

    assert step.result.outcome is LeaveOutcome.LEFT
    assert step.state.head_deadline(SETTINGS) == T0 + 105
    assert step.events == (Event(EventType.REMOVE, "A00", T0 + 45, 1, head_deadline=T0 + 105),)


# Outcomes of redeem


def test_the_head_is_served_and_its_window_opens() -> None:
    step = redeem(queue_of(2), IP, "A00", own(queue_of(2), "A00"), T0 + 5, SETTINGS)

    assert step.result.outcome is RedeemOutcome.SUCCESS
    assert (step.result.token, step.result.ticket, step.result.view_until) == ("A00", 1, T0 + 65)
    assert step.events == (
        Event(EventType.SERVE, "A00", T0 + 5, until=T0 + 65, head_deadline=T0 + 125),
    )


def test_two_heads_in_a_row_are_served_once_the_first_window_ends() -> None:
    state = served(queue_of(2), "A00", T0)
    state = release(state, IP, "A00", own(state, "A00"), T0 + 1, SETTINGS).state

    assert waiting(served(state, "A01", T0 + 2)) == []


def test_a_token_behind_the_head_learns_its_position_and_when_to_retry() -> None:
    step = redeem(queue_of(3), IP, "A02", own(queue_of(3), "A02"), T0 + 15, SETTINGS)

    assert step.result.outcome is RedeemOutcome.WRONG_TURN
    assert (step.result.position, step.result.retry_after) == (3, 45)
    assert step.state == queue_of(3)


def test_a_token_that_expired_is_expired_not_a_cheat() -> None:
    state = queue_of(2)

    step = redeem(state, IP, "A00", own(state, "A00"), T0 + 61, SETTINGS)

    assert step.result.outcome is RedeemOutcome.EXPIRED
    assert step.state.active_ban(IP, T0 + 61) is None


def test_a_stale_claim_of_a_reissued_string_is_expired_and_no_strike() -> None:
    first = take_one(QueueState(), T0)
    state = take_one(advance(first.state, T0 + 60, SETTINGS).state, T0 + 61, OTHER_IP).state
    assert waiting(state) == ["A00"]

    stale = redeem(state, IP, "A00", first.result.claim, T0 + 62, SETTINGS)
    fresh = redeem(state, OTHER_IP, "A00", claim(2), T0 + 62, SETTINGS)

    assert stale.result.outcome is RedeemOutcome.EXPIRED
    assert stale.state.strikes == {}
    assert fresh.result.outcome is RedeemOutcome.SUCCESS


def test_a_served_token_presented_again_is_expired() -> None:
    state = served(queue_of(2), "A00", T0)

    assert (
        redeem(state, IP, "A00", own(state, "A00"), T0 + 1, SETTINGS).result.outcome
        is RedeemOutcome.EXPIRED
    )


def test_a_token_never_issued_is_a_cheat_and_bans_the_caller() -> None:
    step = redeem(queue_of(1), IP, "Q42", "any claim", T0, SETTINGS)

    ban = Ban("cheater: presented Q42, never issued", T0, T0 + 3600)
    assert step.result.outcome is RedeemOutcome.CHEATER
    assert step.result.ban == ban
    assert step.state.active_ban(IP, T0 + 3599) == ban
    assert step.state.active_ban(IP, T0 + 3600) is None


def test_a_banned_caller_is_refused_everything_until_the_ban_ends_or_is_lifted() -> None:
    state = redeem(queue_of(1), IP, "Q42", None, T0, SETTINGS).state
    mine = own(state, "A00")

    assert take_one(state, T0 + 1).result.outcome is TakeOutcome.BANNED
    assert redeem(state, IP, "A00", mine, T0 + 1, SETTINGS).result.outcome is RedeemOutcome.BANNED
    assert redeem(state, IP, "bad", None, T0 + 1, SETTINGS).result.outcome is RedeemOutcome.BANNED
    assert release(state, IP, "A00", mine, T0 + 1, SETTINGS).result.outcome is (
        ReleaseOutcome.BANNED
    )
    assert leave(state, IP, "A00", mine, T0 + 1, SETTINGS).result.outcome is LeaveOutcome.BANNED
    assert take_one(state, T0 + 1, OTHER_IP).result.outcome is TakeOutcome.OK
    assert take_one(state, T0 + 3600).result.outcome is TakeOutcome.OK
    lifted = lift_ban(state, IP)
    assert lifted.result
    assert take_one(lifted.state, T0 + 1).result.outcome is TakeOutcome.OK


def test_an_unknown_token_on_an_empty_queue_is_queue_empty_without_a_ban() -> None:
    step = redeem(QueueState(), IP, "Q42", None, T0, SETTINGS)

    assert step.result.outcome is RedeemOutcome.QUEUE_EMPTY
    assert step.state.bans == {}


def test_a_token_that_left_long_ago_is_forgotten_and_then_a_cheat() -> None:
    settings = Settings(head_seconds=3600, remember_seconds=600)
    state = QueueState()
    for _ in range(2):
        state = take_one(state, T0, settings=settings).state
    state = leave(state, IP, "A01", claim(2), T0, settings).state

    remembered = redeem(state, IP, "A01", claim(2), T0 + 600, settings)
    forgotten = redeem(state, IP, "A01", claim(2), T0 + 601, settings)

    assert remembered.result.outcome is RedeemOutcome.EXPIRED
    assert forgotten.result.outcome is RedeemOutcome.CHEATER


def test_a_malformed_token_is_refused_without_a_ban() -> None:
    step = redeem(queue_of(1), IP, "A0", None, T0, SETTINGS)

    assert step.result.outcome is RedeemOutcome.MALFORMED
    assert step.state == queue_of(1)


# Owned turns: claims, strikes, the per-address cap


def test_a_claim_is_kept_as_its_sha256() -> None:
    assert claim_hash("secret") == (
        "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
    )


@pytest.mark.parametrize(
    ("sent", "claim"), [(" abc \n", "abc"), ("", None), ("   ", None), (None, None), (7, None)]
)
def test_a_presented_claim_is_trimmed_and_nothing_is_no_claim(sent: object, claim: str) -> None:
    assert presented_claim(sent) == claim


def test_claims_say_whose_turn_the_caller_holds() -> None:
    first = take_one(QueueState(), T0)
    state = take_one(advance(first.state, T0 + 60, SETTINGS).state, T0 + 61, OTHER_IP).state
    state = take_one(state, T0 + 61, "10.9.9.9").state  # A00 (issue 2), A01 (issue 3)
    viewing = served(state, "A00", T0 + 62)

    assert claimed(state, "A00", claim(2)) is Claimed.HOLDER
    assert claimed(state, "A00", claim(1)) is Claimed.STALE  # an earlier issue's: own
    assert claimed(state, "A00", claim(3)) is Claimed.WRONG  # A01's
    assert claimed(state, "A00", "a guess") is Claimed.WRONG
    assert claimed(state, "A00", None) is Claimed.MISSING
    assert claimed(viewing, "A00", claim(2)) is Claimed.VIEWER


def test_nobody_takes_the_heads_turn_without_its_claim() -> None:
    state = queue_of(2)

    for presented in (None, "a guess", own(state, "A01")):
        step = redeem(state, OTHER_IP, "A00", presented, T0, SETTINGS)
        assert step.result.outcome in (RedeemOutcome.CLAIM_REQUIRED, RedeemOutcome.WRONG_CLAIM)
        assert waiting(step.state) == ["A00", "A01"]
        assert step.events == ()


def test_a_missing_claim_is_refused_without_a_strike() -> None:
    step = redeem(queue_of(1), IP, "A00", None, T0, SETTINGS)

    assert step.result.outcome is RedeemOutcome.CLAIM_REQUIRED
    assert step.state.strikes == {}


def test_the_fifth_wrong_claim_within_ban_seconds_bans() -> None:
    state = queue_of(1)
    for n in range(4):
        step = release(state, IP, "A00", "a guess", T0 + n, SETTINGS)
        assert (step.result.outcome, step.result.ban) == (ReleaseOutcome.WRONG_CLAIM, None)
        state = step.state
    assert state.strikes[IP] == Strikes(4, T0 + 3 + 3600)

    fifth = leave(state, IP, "A00", "a guess", T0 + 4, SETTINGS)

    ban = Ban("guessing: 5 wrong claims for tokens it was not given", T0 + 4, T0 + 3604)
    assert (fifth.result.outcome, fifth.result.ban) == (LeaveOutcome.WRONG_CLAIM, ban)
    assert fifth.state.active_ban(IP, T0 + 4) == ban
    assert fifth.state.strikes == {}


def test_strikes_are_forgotten_ban_seconds_after_the_last() -> None:
    state = strike(QueueState(), IP, T0, SETTINGS).state

    assert strike(state, IP, T0 + 3599, SETTINGS).state.strikes[IP].count == 2
    assert strike(state, IP, T0 + 3600, SETTINGS).state.strikes[IP].count == 1


def test_lifting_a_ban_forgets_the_strikes() -> None:
    state = strike(QueueState(), IP, T0, SETTINGS).state

    assert lift_ban(state, IP).state.strikes == {}


def test_a_stranger_cannot_end_the_viewers_window() -> None:
    state = served(queue_of(2), "A00", T0)

    stranger = release(state, OTHER_IP, "A00", own(state, "A01"), T0 + 1, SETTINGS)

    assert stranger.result.outcome is ReleaseOutcome.WRONG_CLAIM
    assert stranger.state.viewer == state.viewer


def test_an_address_holding_its_share_is_told_when_the_queue_next_moves() -> None:
    state = QueueState()
    for _ in range(SETTINGS.tokens_per_address):
        state = take_one(state, T0).state

    refused = take_one(state, T0 + 15)
    elsewhere = take_one(state, T0 + 15, OTHER_IP)
    after_expiry = take_one(state, T0 + 60)

    assert (refused.result.outcome, refused.result.retry_after) == (TakeOutcome.TOO_MANY, 45)
    assert refused.state.last_ticket == SETTINGS.tokens_per_address
    assert elsewhere.result.outcome is TakeOutcome.OK
    assert after_expiry.result.outcome is TakeOutcome.OK


# Settings and retry-after


@pytest.mark.parametrize(
    "bad",
    [
        {"head_seconds": 0},
        {"view_seconds": -1},
        {"ban_seconds": float("inf")},
        {"event_history": 0},
        {"tokens_per_address": 0},
        {"strikes_to_ban": 0},
    ],
)
def test_settings_refuse_durations_and_limits_that_are_not_positive(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Settings(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("wait", "seconds"), [(0.1, 1), (1.0, 1), (1.2, 2), (45.0, 45), (-3.0, 1)])
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(
    wait: float, seconds: int
) -> None:
    assert retry_after_seconds(wait) == seconds
