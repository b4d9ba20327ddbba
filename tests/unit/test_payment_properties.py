"""Random sequences of operations over the payment state machine keep its invariants.

The model drives only ``domain.payments`` (``apply``, ``amounts_after``, ``refundable``); the
refund and capture limits mirror what the services check before a transition."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from paygrid.domain.errors import PaymentInvalidState
from paygrid.domain.payments import (
    TERMINAL,
    TRANSITIONS,
    PaymentAction,
    PaymentStatus,
    amounts_after,
    apply,
    refundable,
)

S = PaymentStatus
A = PaymentAction
PROGRESS = [a for a in A if a not in (A.CAPTURE, A.CANCEL)]


class PaymentMachine(RuleBasedStateMachine):
    """One payment: a status, its money fields, and what every operation did to them."""

    def __init__(self) -> None:
        super().__init__()
        self.amount = 1
        self.status = S.REQUIRES_PAYMENT_METHOD
        self.capturable = 0
        self.received = 0
        self.refunded = 0
        self.terminal_at: PaymentStatus | None = None

    @initialize(amount=st.integers(min_value=1, max_value=10_000))
    def create(self, amount: int) -> None:
        self.amount = amount

    def _move(self, action: PaymentAction, captured: int | None = None) -> None:
        before = self.status
        try:
            after = apply(before, action)
        except PaymentInvalidState as error:
            assert before not in TRANSITIONS[action].sources
            assert error.extra["current_status"] == before
            assert error.status_code == 409
            return
        assert before in TRANSITIONS[action].sources
        assert before not in TERMINAL, f"{action} left terminal {before}"
        self.status = after
        amounts = amounts_after(action, self.amount, captured)
        if amounts is not None:
            self.capturable = amounts.amount_capturable
            self.received = amounts.amount_received

    @precondition(lambda self: any(self.status in TRANSITIONS[a].sources for a in PROGRESS))
    @rule(data=st.data())
    def progress(self, data: st.DataObject) -> None:
        """A transition the current status allows. Cancel is left to ``any_transition``:
        drawn as often as the others, it would end most runs before a capture or refund."""
        allowed = [a for a in PROGRESS if self.status in TRANSITIONS[a].sources]
        self._move(data.draw(st.sampled_from(allowed), label="action"))

    @rule(action=st.sampled_from(list(A)))
    def any_transition(self, action: PaymentAction) -> None:
        """Any action at all: the forbidden ones must raise and change nothing."""
        self._move(action)

    @rule(data=st.data())
    def capture(self, data: st.DataObject) -> None:
        """A full capture, or a partial one within what the authorization holds."""
        captured = None
        if self.capturable > 0:
            captured = data.draw(st.none() | st.integers(1, self.capturable), label="captured")
        self._move(A.CAPTURE, captured)

    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        """The services refund only a succeeded payment, and only what is left."""
        available = refundable(self.received, self.refunded)
        wanted = data.draw(st.integers(1, max(1, self.amount)), label="refund")
        if self.status is not S.SUCCEEDED or wanted > available:
            return  # rejected: nothing moves
        self.refunded += wanted

    @precondition(lambda self: self.status in TERMINAL)
    @rule(action=st.sampled_from(list(A)))
    def terminal_refuses_every_transition(self, action: PaymentAction) -> None:
        with pytest.raises(PaymentInvalidState):
            apply(self.status, action)

    @invariant()
    def money_fits(self) -> None:
        assert 0 <= self.received <= self.amount
        assert 0 <= self.refunded <= self.received
        assert 0 <= self.capturable <= self.amount
        assert refundable(self.received, self.refunded) >= 0

    @invariant()
    def capturable_only_while_authorized(self) -> None:
        if self.status is not S.REQUIRES_CAPTURE:
            assert self.capturable == 0
        else:
            assert self.capturable == self.amount

    @invariant()
    def received_only_once_succeeded(self) -> None:
        assert (self.received > 0) == (self.status is S.SUCCEEDED)

    @invariant()
    def terminal_is_never_left(self) -> None:
        if self.terminal_at is not None:
            assert self.status is self.terminal_at
        elif self.status in TERMINAL:
            self.terminal_at = self.status


PaymentMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPaymentMachine = PaymentMachine.TestCase
