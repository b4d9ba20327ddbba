"""Pure card rules of the simulator: Luhn, brand detection, expiry and the test-card table."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Final

from paygrid.connectors.base import CardDetails, InvalidCard


class Behavior(StrEnum):
    SUCCEED = "succeed"
    CARD_DECLINED = "card_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    INCORRECT_CVC = "incorrect_cvc"
    # On-session charges need 3-D Secure; once authenticated for off-session use (a setup,
    # or a payment with ``setup_future_usage``), off-session charges succeed (Stripe's 3155).
    REQUIRE_3DS = "require_3ds"
    # Every charge needs 3-D Secure, off-session ones included (Stripe's 3184).
    REQUIRE_3DS_ALWAYS = "require_3ds_always"
    # Attaching (a setup) succeeds; every charge is declined (Stripe's 0341).
    DECLINE_AFTER_ATTACH = "decline_after_attach"
    STOLEN_CARD = "stolen_card"
    LOST_CARD = "lost_card"


TEST_CARDS: Final[dict[str, Behavior]] = {
    "4242424242424242": Behavior.SUCCEED,
    "4084084084084081": Behavior.SUCCEED,
    "4000000000000002": Behavior.CARD_DECLINED,
    "5061020283705678": Behavior.INSUFFICIENT_FUNDS,
    "4000000000009995": Behavior.INSUFFICIENT_FUNDS,
    "4000000000000069": Behavior.EXPIRED_CARD,
    "4000000000000341": Behavior.DECLINE_AFTER_ATTACH,
    "4000000000009979": Behavior.STOLEN_CARD,
    "4000000000009987": Behavior.LOST_CARD,
    "4000000000000127": Behavior.INCORRECT_CVC,
    "4000002500003155": Behavior.REQUIRE_3DS,
    "4000002760003184": Behavior.REQUIRE_3DS_ALWAYS,
}

# Stripe-style magic payment method ids: (brand, last4, behavior).
MAGIC_PAYMENT_METHODS: Final[dict[str, tuple[str, str, Behavior]]] = {
    "pm_card_visa": ("visa", "4242", Behavior.SUCCEED),
    "pm_card_mastercard": ("mastercard", "4444", Behavior.SUCCEED),
    "pm_card_chargeDeclined": ("visa", "0002", Behavior.CARD_DECLINED),
    "pm_card_chargeDeclinedInsufficientFunds": ("visa", "9995", Behavior.INSUFFICIENT_FUNDS),
    "pm_card_chargeDeclinedExpiredCard": ("visa", "0069", Behavior.EXPIRED_CARD),
    "pm_card_chargeDeclinedIncorrectCvc": ("visa", "0127", Behavior.INCORRECT_CVC),
    "pm_card_authenticationRequired": ("visa", "3155", Behavior.REQUIRE_3DS),
    "pm_card_chargeCustomerFail": ("visa", "0341", Behavior.DECLINE_AFTER_ATTACH),
    "pm_card_visa_chargeDeclinedStolenCard": ("visa", "9979", Behavior.STOLEN_CARD),
    "pm_card_visa_chargeDeclinedLostCard": ("visa", "9987", Behavior.LOST_CARD),
}


def luhn_valid(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def detect_brand(number: str) -> str | None:
    if number.startswith(("506", "650")) and len(number) in (16, 18, 19):
        return "verve"
    if number.startswith(("34", "37")) and len(number) == 15:
        return "amex"
    if number.startswith("4") and len(number) in (13, 16, 19):
        return "visa"
    prefix = int(number[:4]) if len(number) >= 4 else 0
    if len(number) == 16 and (51 <= prefix // 100 <= 55 or 2221 <= prefix <= 2720):
        return "mastercard"
    return None


def validate_card(card: CardDetails, today: date) -> tuple[str, Behavior]:
    """Return the card's brand and test behavior, or raise ``InvalidCard`` naming the field."""
    number = card.number.replace(" ", "").replace("-", "")
    # Listed test cards skip the Luhn check: Paystack's published Verve test card
    # 5061020283705678 fails it, and merchants copy that number from Paystack's docs.
    listed = number in TEST_CARDS
    if not number.isdigit() or not 12 <= len(number) <= 19 or not (listed or luhn_valid(number)):
        raise InvalidCard("Your card number is incorrect.", "number")
    brand = detect_brand(number)
    if brand is None:
        raise InvalidCard("Your card's brand is not supported.", "number")
    if not 1 <= card.exp_month <= 12:
        raise InvalidCard("Your card's expiration month is invalid.", "exp_month")
    if (card.exp_year, card.exp_month) < (today.year, today.month):
        raise InvalidCard("Your card's expiration date is in the past.", "exp_year")
    expected_cvc = 4 if brand == "amex" else 3
    if not card.cvc.isdigit() or len(card.cvc) != expected_cvc:
        raise InvalidCard("Your card's security code is invalid.", "cvc")
    return brand, TEST_CARDS.get(number, Behavior.SUCCEED)


def last4(card: CardDetails) -> str:
    return card.number.replace(" ", "").replace("-", "")[-4:]
