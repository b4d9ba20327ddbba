"""The setup intent state machine (Stripe's SetupIntent statuses): one transition table."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class SetupIntentStatus(StrEnum):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"


class SetupAction(StrEnum):
    ATTACH_METHOD = "attach_method"  # a payment method is given, not confirmed yet
    BEGIN = "begin"  # confirm: the provider is being asked
    REQUIRE_ACTION = "require_action"  # the customer must authenticate
    SUCCEED = "succeed"
    FAIL = "fail"  # declined: back to requires_payment_method
    RELEASE = "release"  # the provider could not be reached: confirm again
    CANCEL = "cancel"


S = SetupIntentStatus
# action -> (allowed sources, target)
TRANSITIONS: Final[dict[SetupAction, tuple[frozenset[SetupIntentStatus], SetupIntentStatus]]] = {
    SetupAction.ATTACH_METHOD: (
        frozenset({S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_CONFIRMATION}),
        S.REQUIRES_CONFIRMATION,
    ),
    SetupAction.BEGIN: (
        frozenset({S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_CONFIRMATION}),
        S.PROCESSING,
    ),
    SetupAction.REQUIRE_ACTION: (frozenset({S.PROCESSING}), S.REQUIRES_ACTION),
    SetupAction.SUCCEED: (frozenset({S.PROCESSING, S.REQUIRES_ACTION}), S.SUCCEEDED),
    SetupAction.FAIL: (frozenset({S.PROCESSING, S.REQUIRES_ACTION}), S.REQUIRES_PAYMENT_METHOD),
    SetupAction.RELEASE: (frozenset({S.PROCESSING}), S.REQUIRES_CONFIRMATION),
    SetupAction.CANCEL: (
        frozenset({S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_CONFIRMATION, S.REQUIRES_ACTION}),
        S.CANCELED,
    ),
}


def sources_of(action: SetupAction) -> frozenset[SetupIntentStatus]:
    return TRANSITIONS[action][0]


def target_of(action: SetupAction) -> SetupIntentStatus:
    return TRANSITIONS[action][1]
