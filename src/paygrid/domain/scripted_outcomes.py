"""Scripted outcomes (issue 14 §2): in test mode, the next charges of a saved method can be
told how to end, so a test can say "decline twice, then succeed". Pure: the outcomes the
simulator knows, and the limits of a script."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from paygrid.domain.errors import InvalidRequest

MAX_OUTCOMES: Final = 50


class ScriptedOutcome(StrEnum):
    """How one charge ends: it succeeds, is declined with this (Stripe) decline code, or
    waits for the customer's authentication (``authentication_required``)."""

    SUCCEEDED = "succeeded"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    CARD_DECLINED = "card_declined"  # Stripe's decline_code for it is generic_decline
    GENERIC_DECLINE = "generic_decline"
    EXPIRED_CARD = "expired_card"
    STOLEN_CARD = "stolen_card"
    LOST_CARD = "lost_card"
    DO_NOT_HONOR = "do_not_honor"
    PROCESSING_ERROR = "processing_error"
    TRY_AGAIN_LATER = "try_again_later"
    ISSUER_NOT_AVAILABLE = "issuer_not_available"
    FRAUDULENT = "fraudulent"
    PICKUP_CARD = "pickup_card"
    INVALID_ACCOUNT = "invalid_account"
    CARD_NOT_SUPPORTED = "card_not_supported"
    AUTHENTICATION_REQUIRED = "authentication_required"


class ScriptNotSupported(InvalidRequest):
    """Scripted outcomes exist only for methods saved at the test-mode simulator."""

    default_code = "scripted_outcomes_unsupported"


class TestHelpersTestModeOnly(InvalidRequest):
    """Test helpers exist in test mode only; use a test-mode key (sk_test_...)."""

    __test__ = False

    default_code = "test_mode_only"
