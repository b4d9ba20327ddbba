"""The transition table: every allowed transition and every forbidden one."""

from __future__ import annotations

import itertools

import pytest

from paygrid.domain.errors import PaymentInvalidState
from paygrid.domain.payments import (
    TERMINAL,
    TRANSITIONS,
    AttemptOutcome,
    PaymentAction,
    PaymentStatus,
    action_for_outcome,
    amounts_after,
    apply,
    confirm_sources,
)

S = PaymentStatus
A = PaymentAction

EXPECTED: dict[tuple[PaymentStatus, PaymentAction], PaymentStatus] = {
    (S.REQUIRES_PAYMENT_METHOD, A.ATTACH_PAYMENT_METHOD): S.REQUIRES_CONFIRMATION,
    (S.REQUIRES_CONFIRMATION, A.ATTACH_PAYMENT_METHOD): S.REQUIRES_CONFIRMATION,
    (S.REQUIRES_CONFIRMATION, A.BEGIN_ATTEMPT): S.PROCESSING,
    (S.PROCESSING, A.RELEASE_ATTEMPT): S.REQUIRES_CONFIRMATION,
    (S.PROCESSING, A.REQUIRE_ACTION): S.REQUIRES_ACTION,
    (S.PROCESSING, A.AUTHORIZE): S.REQUIRES_CAPTURE,
    (S.REQUIRES_ACTION, A.AUTHORIZE): S.REQUIRES_CAPTURE,
    (S.PROCESSING, A.SUCCEED): S.SUCCEEDED,
    (S.REQUIRES_ACTION, A.SUCCEED): S.SUCCEEDED,
    (S.PROCESSING, A.FAIL_ATTEMPT): S.REQUIRES_PAYMENT_METHOD,
    (S.REQUIRES_ACTION, A.FAIL_ATTEMPT): S.REQUIRES_PAYMENT_METHOD,
    (S.REQUIRES_CAPTURE, A.CAPTURE): S.SUCCEEDED,
    (S.REQUIRES_PAYMENT_METHOD, A.CANCEL): S.CANCELED,
    (S.REQUIRES_CONFIRMATION, A.CANCEL): S.CANCELED,
    (S.REQUIRES_ACTION, A.CANCEL): S.CANCELED,
    (S.REQUIRES_CAPTURE, A.CANCEL): S.CANCELED,
}


@pytest.mark.parametrize(("status", "action"), list(EXPECTED))
def test_allowed_transition(status: PaymentStatus, action: PaymentAction) -> None:
    assert apply(status, action) is EXPECTED[(status, action)]


FORBIDDEN = [pair for pair in itertools.product(S, A) if pair not in EXPECTED]


@pytest.mark.parametrize(("status", "action"), FORBIDDEN)
def test_forbidden_transition(status: PaymentStatus, action: PaymentAction) -> None:
    with pytest.raises(PaymentInvalidState) as raised:
        apply(status, action)
    assert raised.value.code == "payment_invalid_state"
    assert f"status of {status.value}" in raised.value.message
    assert raised.value.status_code == 409


def test_terminal_states_are_never_left() -> None:
    for status, action in itertools.product(TERMINAL, A):
        with pytest.raises(PaymentInvalidState):
            apply(status, action)


def test_table_is_the_expected_table() -> None:
    derived = {
        (source, action): transition.target
        for action, transition in TRANSITIONS.items()
        for source in transition.sources
    }
    assert derived == EXPECTED


def test_confirm_sources_widen_only_when_attaching() -> None:
    assert confirm_sources(False) == {S.REQUIRES_CONFIRMATION}
    assert confirm_sources(True) == {S.REQUIRES_CONFIRMATION, S.REQUIRES_PAYMENT_METHOD}


@pytest.mark.parametrize(
    ("outcome", "action"),
    [
        (AttemptOutcome.AUTHORIZED, A.AUTHORIZE),
        (AttemptOutcome.CAPTURED, A.SUCCEED),
        (AttemptOutcome.REQUIRES_ACTION, A.REQUIRE_ACTION),
        (AttemptOutcome.DECLINED, A.FAIL_ATTEMPT),
        (AttemptOutcome.UNKNOWN, None),
    ],
)
def test_every_outcome_maps_to_one_action(
    outcome: AttemptOutcome, action: PaymentAction | None
) -> None:
    assert action_for_outcome(outcome) is action


def test_amounts_after_partial_capture_release_the_rest() -> None:
    amounts = amounts_after(A.CAPTURE, 5000, captured=3000)
    assert amounts is not None
    assert (amounts.amount_capturable, amounts.amount_received) == (0, 3000)
    authorized = amounts_after(A.AUTHORIZE, 5000)
    assert authorized is not None
    assert (authorized.amount_capturable, authorized.amount_received) == (5000, 0)
