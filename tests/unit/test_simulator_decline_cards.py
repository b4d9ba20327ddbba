"""Stripe's declining test cards and scripted outcomes in the simulator (issue 14 §2): the
card table, the magic ids, and the decline each charge status maps to (Stripe's code and
decline_code)."""

from __future__ import annotations

from datetime import date

import pytest

from paygrid.connectors.base import CardDetails
from paygrid.connectors.simulator.cards import (
    MAGIC_PAYMENT_METHODS,
    TEST_CARDS,
    Behavior,
    validate_card,
)
from paygrid.connectors.simulator.connector import DECLINES, initial_status
from paygrid.connectors.simulator.outcomes import scripted_status
from paygrid.domain.scripted_outcomes import ScriptedOutcome

TODAY = date(2026, 12, 7)


@pytest.mark.parametrize(
    ("number", "behavior", "decline_code"),
    [
        ("4000000000000341", Behavior.DECLINE_AFTER_ATTACH, "generic_decline"),
        ("4000000000009979", Behavior.STOLEN_CARD, "stolen_card"),
        ("4000000000009987", Behavior.LOST_CARD, "lost_card"),
        ("4000000000009995", Behavior.INSUFFICIENT_FUNDS, "insufficient_funds"),
        ("4000000000000069", Behavior.EXPIRED_CARD, "expired_card"),
        ("4000000000000002", Behavior.CARD_DECLINED, "generic_decline"),
    ],
)
def test_declining_cards_decline_with_stripes_decline_code(
    number: str, behavior: Behavior, decline_code: str
) -> None:
    assert TEST_CARDS[number] is behavior
    assert validate_card(CardDetails(number, 12, 2030, "123"), TODAY) == ("visa", behavior)
    for off_session in (False, True):
        status, stored = initial_status(behavior, True, off_session=off_session)
        assert status == "declined"
        assert stored is not None
        assert DECLINES[stored].decline_code == decline_code


def test_stolen_and_lost_cards_are_not_named_to_the_customer() -> None:
    for code in ("stolen_card", "lost_card", "pickup_card", "fraudulent"):
        assert DECLINES[code].code == "card_declined"
        assert DECLINES[code].message == "Your card was declined."


def test_magic_ids_of_the_declining_cards() -> None:
    assert MAGIC_PAYMENT_METHODS["pm_card_visa_chargeDeclinedStolenCard"][1:] == (
        "9979",
        Behavior.STOLEN_CARD,
    )
    assert MAGIC_PAYMENT_METHODS["pm_card_visa_chargeDeclinedLostCard"][1:] == (
        "9987",
        Behavior.LOST_CARD,
    )
    assert MAGIC_PAYMENT_METHODS["pm_card_chargeCustomerFail"][1:] == (
        "0341",
        Behavior.DECLINE_AFTER_ATTACH,
    )


@pytest.mark.parametrize("outcome", list(ScriptedOutcome))
@pytest.mark.parametrize("off_session", [False, True])
def test_every_scripted_outcome_has_a_charge_status(
    outcome: ScriptedOutcome, off_session: bool
) -> None:
    status, decline = scripted_status(outcome, True, off_session=off_session)
    if outcome is ScriptedOutcome.SUCCEEDED:
        assert (status, decline) == ("captured", None)
    elif outcome is ScriptedOutcome.AUTHENTICATION_REQUIRED:
        assert status == "requires_action"
        assert decline == ("authentication_required" if off_session else None)
    else:
        assert status == "declined"
        assert decline is not None
        expected = "generic_decline" if outcome is ScriptedOutcome.CARD_DECLINED else outcome
        assert DECLINES[decline].decline_code == expected


def test_a_scripted_success_only_holds_when_not_capturing() -> None:
    assert scripted_status(ScriptedOutcome.SUCCEEDED, False, off_session=True) == (
        "authorized",
        None,
    )
