"""The subscription transition table: Stripe's statuses, every allowed transition and every
forbidden one."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygrid.domain.errors import SubscriptionInvalidState
from paygrid.domain.subscriptions import (
    BILLING,
    INCOMPLETE_EXPIRY,
    TERMINAL,
    TRANSITIONS,
    SubscriptionAction,
    SubscriptionStatus,
    allowed_sources,
    apply,
    incomplete_expires_at,
    initial_status,
    trial_will_end_at,
)

S = SubscriptionStatus
A = SubscriptionAction
STARTED = [S.TRIALING, S.ACTIVE, S.PAST_DUE, S.UNPAID, S.PAUSED]

EXPECTED: dict[tuple[SubscriptionStatus, SubscriptionAction], SubscriptionStatus] = {
    (S.TRIALING, A.END_TRIAL): S.ACTIVE,
    (S.INCOMPLETE, A.PAYMENT_SUCCEEDED): S.ACTIVE,
    (S.ACTIVE, A.PAYMENT_SUCCEEDED): S.ACTIVE,
    (S.PAST_DUE, A.PAYMENT_SUCCEEDED): S.ACTIVE,
    (S.UNPAID, A.PAYMENT_SUCCEEDED): S.ACTIVE,
    (S.ACTIVE, A.PAYMENT_FAILED): S.PAST_DUE,
    (S.PAST_DUE, A.PAYMENT_FAILED): S.PAST_DUE,
    (S.INCOMPLETE, A.INITIAL_PAYMENT_FAILED): S.INCOMPLETE,
    (S.INCOMPLETE, A.EXPIRE_INCOMPLETE): S.INCOMPLETE_EXPIRED,
    (S.PAST_DUE, A.MARK_UNPAID): S.UNPAID,
    (S.ACTIVE, A.PAUSE_EXHAUSTED): S.PAUSED,
    (S.PAST_DUE, A.PAUSE_EXHAUSTED): S.PAUSED,
    (S.ACTIVE, A.RENEW): S.ACTIVE,
    (S.PAST_DUE, A.RENEW): S.PAST_DUE,
    (S.UNPAID, A.RENEW): S.UNPAID,
    (S.TRIALING, A.UPDATE_ITEMS): S.TRIALING,
    (S.ACTIVE, A.UPDATE_ITEMS): S.ACTIVE,
    (S.PAST_DUE, A.UPDATE_ITEMS): S.PAST_DUE,
    (S.UNPAID, A.UPDATE_ITEMS): S.UNPAID,
    (S.TRIALING, A.PAUSE): S.PAUSED,
    (S.ACTIVE, A.PAUSE): S.PAUSED,
    (S.PAUSED, A.RESUME): S.ACTIVE,
    **{(status, A.SCHEDULE_CANCEL): status for status in STARTED},
    **{(status, A.UNSCHEDULE_CANCEL): status for status in STARTED},
    **{(status, A.PERIOD_END_CANCEL): S.CANCELED for status in STARTED},
    **{(status, A.CANCEL): S.CANCELED for status in [S.INCOMPLETE, *STARTED]},
}


def test_the_statuses_are_exactly_stripes() -> None:
    assert {status.value for status in S} == {
        "incomplete",
        "incomplete_expired",
        "trialing",
        "active",
        "past_due",
        "unpaid",
        "paused",
        "canceled",
    }


@pytest.mark.parametrize(("status", "action"), list(EXPECTED))
def test_allowed_transition(status: SubscriptionStatus, action: SubscriptionAction) -> None:
    assert apply(status, action) is EXPECTED[(status, action)]
    assert status in allowed_sources(action)


FORBIDDEN = [pair for pair in itertools.product(S, A) if pair not in EXPECTED]


@pytest.mark.parametrize(("status", "action"), FORBIDDEN)
def test_forbidden_transition(status: SubscriptionStatus, action: SubscriptionAction) -> None:
    with pytest.raises(SubscriptionInvalidState) as raised:
        apply(status, action)
    assert raised.value.code == "subscription_invalid_state"
    assert raised.value.status_code == 409
    assert raised.value.extra == {"current_status": status.value}
    assert raised.value.message.endswith(f"because it has a status of {status.value}.")
    assert status not in allowed_sources(action)


def test_every_pair_is_either_allowed_or_forbidden() -> None:
    assert len(EXPECTED) + len(FORBIDDEN) == len(S) * len(A)


def test_table_is_the_expected_table() -> None:
    derived = {
        (source, action): transition.target or source
        for action, transition in TRANSITIONS.items()
        for source in transition.sources
    }
    assert derived == EXPECTED
    assert set(TRANSITIONS) == set(A)


def test_terminal_states_are_never_left() -> None:
    assert {S.INCOMPLETE_EXPIRED, S.CANCELED} == TERMINAL
    for status, action in itertools.product(TERMINAL, A):
        with pytest.raises(SubscriptionInvalidState):
            apply(status, action)


def test_only_billing_statuses_renew() -> None:
    """No invoice while paused, trialing, incomplete or ended."""
    assert allowed_sources(A.RENEW) == BILLING == {S.ACTIVE, S.PAST_DUE, S.UNPAID}


@pytest.mark.parametrize(
    ("trial", "paid", "status"),
    [
        (True, False, S.TRIALING),
        (True, True, S.TRIALING),
        (False, True, S.ACTIVE),
        (False, False, S.INCOMPLETE),
    ],
)
def test_initial_status(trial: bool, paid: bool, status: SubscriptionStatus) -> None:
    assert initial_status(trial=trial, paid=paid) is status


def test_deadlines() -> None:
    created = datetime(2028, 1, 31, 23, 0, tzinfo=UTC)
    assert incomplete_expires_at(created) == datetime(2028, 2, 1, 22, 0, tzinfo=UTC)
    assert INCOMPLETE_EXPIRY.total_seconds() == 23 * 3600
    assert trial_will_end_at(datetime(2028, 3, 1, tzinfo=UTC)) == datetime(2028, 2, 27, tzinfo=UTC)


@given(st.lists(st.sampled_from(A), max_size=30))
def test_random_action_sequences_keep_the_invariants(actions: list[SubscriptionAction]) -> None:
    """Refused actions change nothing; an ended subscription stays ended; a paused one makes
    no invoice until it is resumed."""
    status = S.ACTIVE
    for action in actions:
        before = status
        try:
            status = apply(status, action)
        except SubscriptionInvalidState:
            assert before not in allowed_sources(action)
            continue
        assert before not in TERMINAL
        if action is A.RENEW:
            assert before is not S.PAUSED
        if before is S.PAUSED:
            assert status in (S.PAUSED, S.ACTIVE, S.CANCELED)
