"""The simulator's pure card rules: Luhn, brands, expiry, CVC and the test-card table."""

from __future__ import annotations

from datetime import date

import pytest

from paygrid.connectors.base import CardDetails, InvalidCard
from paygrid.connectors.simulator.cards import TEST_CARDS, Behavior, detect_brand, validate_card
from paygrid.connectors.simulator.connector import initial_status

TODAY = date(2026, 11, 22)


def details(number: str, month: int = 12, year: int = 2030, cvc: str = "123") -> CardDetails:
    return CardDetails(number, month, year, cvc)


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("5061020283705678", "verve"),
        ("6500000000000002", "verve"),
        ("378282246310005", "amex"),
    ],
)
def test_brand_detection(number: str, brand: str) -> None:
    assert detect_brand(number) == brand


def test_every_test_card_is_valid_and_has_its_behavior() -> None:
    for number, behavior in TEST_CARDS.items():
        assert validate_card(details(number), TODAY)[1] is behavior
    assert TEST_CARDS["4000002500003155"] is Behavior.REQUIRE_3DS
    assert TEST_CARDS["4000002760003184"] is Behavior.REQUIRE_3DS_ALWAYS


@pytest.mark.parametrize(
    ("behavior", "off_session", "set_up", "expected"),
    [
        # On-session both cards ask for 3-D Secure.
        (Behavior.REQUIRE_3DS, False, False, ("requires_action", None)),
        (Behavior.REQUIRE_3DS_ALWAYS, False, True, ("requires_action", None)),
        # Off-session, 3155 succeeds once set up and waits for the customer before.
        (Behavior.REQUIRE_3DS, True, True, ("captured", None)),
        (Behavior.REQUIRE_3DS, True, False, ("requires_action", "authentication_required")),
        # 3184 needs the customer every time.
        (Behavior.REQUIRE_3DS_ALWAYS, True, True, ("requires_action", "authentication_required")),
        (Behavior.SUCCEED, True, False, ("captured", None)),
        (Behavior.CARD_DECLINED, True, True, ("declined", "card_declined")),
    ],
)
def test_off_session_charges_of_the_authentication_cards(
    behavior: Behavior, off_session: bool, set_up: bool, expected: tuple[str, str | None]
) -> None:
    assert initial_status(behavior, True, off_session=off_session, set_up=set_up) == expected


@pytest.mark.parametrize(
    ("card", "param"),
    [
        (details("4242424242424241"), "number"),
        (details("42424242"), "number"),
        (details("4242x24242424242"), "number"),
        (details("9999999999999995"), "number"),
        (details("4242424242424242", month=13), "exp_month"),
        (details("4242424242424242", month=10, year=2026), "exp_year"),
        (details("4242424242424242", cvc="12"), "cvc"),
        (details("378282246310005", cvc="123"), "cvc"),
    ],
)
def test_invalid_cards_name_the_field(card: CardDetails, param: str) -> None:
    with pytest.raises(InvalidCard) as raised:
        validate_card(card, TODAY)
    assert raised.value.param == param


def test_current_month_is_not_expired() -> None:
    assert validate_card(details("4242424242424242", month=11, year=2026), TODAY)[0] == "visa"


def test_card_details_never_render_the_number() -> None:
    assert "4242" not in repr(details("4242424242424242"))
