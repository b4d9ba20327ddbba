"""The payment state machine, modelled on Stripe's PaymentIntent.

There is one transition table, ``TRANSITIONS``. ``apply`` is the only function that decides a
new status, and the SQL layer guards every status write with ``allowed_sources`` from the same
table, so the database refuses what the table refuses even under concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, assert_never

from paygrid.domain.errors import PaymentInvalidState


class PaymentStatus(StrEnum):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"


class PaymentAction(StrEnum):
    ATTACH_PAYMENT_METHOD = "attach_payment_method"
    BEGIN_ATTEMPT = "begin_attempt"
    RELEASE_ATTEMPT = "release_attempt"  # the attempt provably never reached the provider
    REQUIRE_ACTION = "require_action"
    AUTHORIZE = "authorize"
    SUCCEED = "succeed"
    FAIL_ATTEMPT = "fail_attempt"
    CAPTURE = "capture"
    CANCEL = "cancel"


class AttemptOutcome(StrEnum):
    """What a provider said about one authorization attempt."""

    AUTHORIZED = "authorized"  # funds held, capture pending
    CAPTURED = "captured"  # money moved
    REQUIRES_ACTION = "requires_action"  # the customer must authenticate or redirect
    DECLINED = "declined"  # definite failure
    UNKNOWN = "unknown"  # timeout or ambiguous answer: must be synced, never retried elsewhere


class CaptureMethod(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class AttemptOperation(StrEnum):
    """What one call to a provider on behalf of a payment does."""

    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


class AttemptStatus(StrEnum):
    """Where one attempt stands. The first five are what an authorization's provider said
    (``AttemptOutcome``); capture, void and refund calls end ``succeeded`` or ``failed``."""

    PENDING = "pending"  # recorded before the provider is called
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    REQUIRES_ACTION = "requires_action"
    DECLINED = "declined"
    UNKNOWN = "unknown"
    UNREACHABLE = "unreachable"  # provably never reached the provider
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_SENT = "not_sent"  # its process died before the call went out


# An attempt in one of these may still change; every other status is final.
OPEN_ATTEMPT_STATUSES: Final = frozenset(
    {AttemptStatus.PENDING, AttemptStatus.REQUIRES_ACTION, AttemptStatus.UNKNOWN}
)


def attempt_status_for(outcome: AttemptOutcome) -> AttemptStatus:
    """The status an authorize attempt takes on a provider's answer."""
    match outcome:
        case AttemptOutcome.AUTHORIZED:
            return AttemptStatus.AUTHORIZED
        case AttemptOutcome.CAPTURED:
            return AttemptStatus.CAPTURED
        case AttemptOutcome.REQUIRES_ACTION:
            return AttemptStatus.REQUIRES_ACTION
        case AttemptOutcome.DECLINED:
            return AttemptStatus.DECLINED
        case AttemptOutcome.UNKNOWN:
            return AttemptStatus.UNKNOWN
        case _:
            assert_never(outcome)


@dataclass(frozen=True, slots=True)
class Transition:
    sources: frozenset[PaymentStatus]
    target: PaymentStatus


S = PaymentStatus
TERMINAL: Final = frozenset({S.SUCCEEDED, S.CANCELED})

TRANSITIONS: Final[dict[PaymentAction, Transition]] = {
    PaymentAction.ATTACH_PAYMENT_METHOD: Transition(
        frozenset({S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_CONFIRMATION}), S.REQUIRES_CONFIRMATION
    ),
    PaymentAction.BEGIN_ATTEMPT: Transition(frozenset({S.REQUIRES_CONFIRMATION}), S.PROCESSING),
    PaymentAction.RELEASE_ATTEMPT: Transition(frozenset({S.PROCESSING}), S.REQUIRES_CONFIRMATION),
    PaymentAction.REQUIRE_ACTION: Transition(frozenset({S.PROCESSING}), S.REQUIRES_ACTION),
    PaymentAction.AUTHORIZE: Transition(
        frozenset({S.PROCESSING, S.REQUIRES_ACTION}), S.REQUIRES_CAPTURE
    ),
    PaymentAction.SUCCEED: Transition(frozenset({S.PROCESSING, S.REQUIRES_ACTION}), S.SUCCEEDED),
    PaymentAction.FAIL_ATTEMPT: Transition(
        frozenset({S.PROCESSING, S.REQUIRES_ACTION}), S.REQUIRES_PAYMENT_METHOD
    ),
    PaymentAction.CAPTURE: Transition(frozenset({S.REQUIRES_CAPTURE}), S.SUCCEEDED),
    PaymentAction.CANCEL: Transition(
        frozenset(
            {
                S.REQUIRES_PAYMENT_METHOD,
                S.REQUIRES_CONFIRMATION,
                S.REQUIRES_ACTION,
                S.REQUIRES_CAPTURE,
            }
        ),
        S.CANCELED,
    ),
}


def allowed_sources(action: PaymentAction) -> frozenset[PaymentStatus]:
    return TRANSITIONS[action].sources


def confirm_sources(attaching_method: bool) -> frozenset[PaymentStatus]:
    """Statuses a confirm may start from: attaching a method first widens them."""
    sources = allowed_sources(PaymentAction.BEGIN_ATTEMPT)
    if attaching_method:
        sources |= allowed_sources(PaymentAction.ATTACH_PAYMENT_METHOD)
    return sources


def apply(status: PaymentStatus, action: PaymentAction) -> PaymentStatus:
    """Return the status after ``action``, or raise ``PaymentInvalidState``."""
    transition = TRANSITIONS[action]
    if status not in transition.sources:
        raise invalid_state(status, action)
    return transition.target


_VERBS: Final[dict[PaymentAction, str]] = {
    PaymentAction.ATTACH_PAYMENT_METHOD: "attach a payment method to",
    PaymentAction.BEGIN_ATTEMPT: "confirm",
    PaymentAction.RELEASE_ATTEMPT: "release the attempt of",
    PaymentAction.REQUIRE_ACTION: "request customer action for",
    PaymentAction.AUTHORIZE: "authorize",
    PaymentAction.SUCCEED: "complete",
    PaymentAction.FAIL_ATTEMPT: "fail the attempt of",
    PaymentAction.CAPTURE: "capture",
    PaymentAction.CANCEL: "cancel",
}


def invalid_state(status: PaymentStatus | str, action: PaymentAction) -> PaymentInvalidState:
    return PaymentInvalidState(
        f"You cannot {_VERBS[action]} this payment because it has a status of {status}.",
        current_status=str(status),
    )


def action_for_outcome(outcome: AttemptOutcome) -> PaymentAction | None:
    """The transition a provider's answer causes; ``None`` keeps the payment processing."""
    match outcome:
        case AttemptOutcome.AUTHORIZED:
            return PaymentAction.AUTHORIZE
        case AttemptOutcome.CAPTURED:
            return PaymentAction.SUCCEED
        case AttemptOutcome.REQUIRES_ACTION:
            return PaymentAction.REQUIRE_ACTION
        case AttemptOutcome.DECLINED:
            return PaymentAction.FAIL_ATTEMPT
        case AttemptOutcome.UNKNOWN:
            return None
        case _:
            assert_never(outcome)


@dataclass(frozen=True, slots=True)
class Amounts:
    """The money fields of a payment after a transition."""

    amount_capturable: int
    amount_received: int


def amounts_after(
    action: PaymentAction, amount: int, captured: int | None = None
) -> Amounts | None:
    """How a transition moves the money fields; ``None`` leaves them unchanged."""
    match action:
        case PaymentAction.AUTHORIZE:
            return Amounts(amount_capturable=amount, amount_received=0)
        case PaymentAction.SUCCEED:
            return Amounts(amount_capturable=0, amount_received=amount)
        case PaymentAction.CAPTURE:
            # A partial capture releases the rest of the authorization.
            return Amounts(amount_capturable=0, amount_received=captured if captured else amount)
        case PaymentAction.CANCEL | PaymentAction.FAIL_ATTEMPT:
            return Amounts(amount_capturable=0, amount_received=0)
        case (
            PaymentAction.ATTACH_PAYMENT_METHOD
            | PaymentAction.BEGIN_ATTEMPT
            | PaymentAction.RELEASE_ATTEMPT
            | PaymentAction.REQUIRE_ACTION
        ):
            return None
        case _:
            assert_never(action)


def refundable(amount_received: int, amount_refunded: int) -> int:
    return amount_received - amount_refunded
