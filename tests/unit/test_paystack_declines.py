"""Paystack's issuer answers (gateway_response) mapped to our code and Stripe's decline_code
(issue 14 §2), so dunning classifies a Paystack decline as it does Stripe's."""

from __future__ import annotations

import pytest

from paygrid.connectors.paystack import mapping
from paygrid.domain.scripted_outcomes import ScriptedOutcome
from tests.fakes.paystack.state import DECLINE_LATER_CARDS

# The decline codes issue 14 names; every Paystack answer maps to one of them.
KNOWN_DECLINE_CODES = {o.value for o in ScriptedOutcome} - {"succeeded", "card_declined"}


@pytest.mark.parametrize(
    ("gateway_response", "code", "decline_code"),
    [
        ("Declined", "card_declined", "generic_decline"),
        ("Insufficient Funds", "insufficient_funds", "insufficient_funds"),
        ("Expired Card", "expired_card", "expired_card"),
        ("Stolen Card, Pick-Up", "card_declined", "stolen_card"),
        ("Lost Card, Pick-Up", "card_declined", "lost_card"),
        ("Pick-up card", "card_declined", "pickup_card"),
        ("Do Not Honor", "card_declined", "do_not_honor"),
        ("Suspected Fraud", "card_declined", "fraudulent"),
        ("Blocked by fraud system", "card_declined", "fraudulent"),
        ("Invalid Card Number", "card_declined", "invalid_account"),
        ("Account Closed", "card_declined", "invalid_account"),
        ("Restricted Card", "card_declined", "card_not_supported"),
        ("Transaction not Permitted to Cardholder", "card_declined", "card_not_supported"),
        ("Issuer or Switch Inoperative", "card_declined", "issuer_not_available"),
        ("Unable to process transaction", "processing_error", "processing_error"),
    ],
)
def test_issuer_answers_map_to_stripes_decline_codes(
    gateway_response: str, code: str, decline_code: str
) -> None:
    decline = mapping.decline_for(gateway_response)
    assert (decline.code, decline.decline_code, decline.message) == (
        code,
        decline_code,
        gateway_response,
    )


def test_every_mapped_answer_has_one_of_our_decline_codes() -> None:
    for code, decline_code in mapping._GATEWAY_DECLINES.values():
        assert decline_code in KNOWN_DECLINE_CODES, decline_code
        assert code in {"card_declined", "insufficient_funds", "expired_card", "processing_error"}


def test_the_fakes_decline_later_cards_map_as_stripes_cards_decline() -> None:
    expected = {
        "4000000000000341": "generic_decline",
        "4000000000009979": "stolen_card",
        "4000000000009987": "lost_card",
        "4000000000009995": "insufficient_funds",
        "4000000000000069": "expired_card",
    }
    mapped = {n: mapping.decline_for(text).decline_code for n, text in DECLINE_LATER_CARDS.items()}
    assert mapped == expected


def test_case_spaces_and_punctuation_do_not_matter() -> None:
    assert mapping.decline_for("STOLEN CARD - PICK UP").decline_code == "stolen_card"
    assert mapping.decline_for("  lost card,pick-up ").decline_code == "lost_card"
    # Unknown text: a plain decline, keeping Paystack's words.
    unknown = mapping.decline_for("Declined by the issuer for reasons unknown")
    assert (unknown.code, unknown.decline_code) == ("card_declined", "generic_decline")
