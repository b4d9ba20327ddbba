"""The card number detector: every network's test numbers in the shapes people type them,
and the near-misses a shop's free text is full of (order numbers, phone numbers, numbers
that fail Luhn or start with no network's prefix)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygrid.domain.card_numbers import contains_card_number, is_card_number, luhn_valid

NETWORK_TEST_NUMBERS = [
    "4242424242424242",  # Visa
    "4000056655665556",  # Visa debit
    "4222222222222",  # Visa, 13 digits
    "4111111111111111110",  # Visa, 19 digits
    "5555555555554444",  # Mastercard
    "2223003122003222",  # Mastercard 2-series
    "378282246310005",  # American Express
    "371449635398431",
    "6011111111111117",  # Discover
    "6445644564456445",  # Discover 644-649
    "30569309025904",  # Diners Club
    "36227206271667",
    "3566002020360505",  # JCB
    "6200000000000005",  # UnionPay
    "5061460410120223210",  # Verve
    "2200000000000004",  # Mir
]


def _with_luhn(body: str) -> str:
    """``body`` plus the check digit that makes it Luhn-valid."""
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


@pytest.mark.parametrize("number", NETWORK_TEST_NUMBERS)
def test_network_test_numbers_are_cards(number: str) -> None:
    assert is_card_number(number)


@pytest.mark.parametrize("number", NETWORK_TEST_NUMBERS)
@pytest.mark.parametrize(
    "shape",
    [
        "{}",
        "card {} exp 12/34",
        "my card is {}!",
        "order:{}",
        "ref{}x",
    ],
)
def test_found_inside_text(number: str, shape: str) -> None:
    assert contains_card_number(shape.format(number))


@pytest.mark.parametrize(
    "text",
    [
        "4242 4242 4242 4242",
        "4242-4242-4242-4242",
        "4242 - 4242 - 4242 - 4242",
        "4242  4242  4242  4242",
        "3782 822463 10005",
        "Pay with 4242 4242 4242 4242 cvc 123",
        "4242 4242 4242 4242 12 34 123",
        "phone +1 555 0100, card 5555-5555-5555-4444",
        "".join(chr(0xFF10 + int(d)) for d in "4242424242424242"),  # full-width digits
        "4242\u00a04242\u00a04242\u00a04242",  # no-break spaces
    ],
)
def test_separated_and_disguised_numbers(text: str) -> None:
    assert contains_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Order #1043",
        "Order 2024-000123-4567",  # an order number with dashes
        "+44 20 7946 0958",  # a phone number
        "+234 801 234 5678",
        "0800 123 4567 8910",
        "4242424242424241",  # Visa prefix, fails Luhn
        "4242 4242 4242 4241",
        "5555555555554445",
        _with_luhn("123456789012345"),  # Luhn-valid, prefix 1: no network
        _with_luhn("900000000000000"),  # prefix 9
        _with_luhn("700000000000000"),  # prefix 7
        _with_luhn("3100000000000"),  # prefix 31
        "424242424242",  # 12 digits
        _with_luhn("42424242424242424242"),  # 21 digits together: an identifier
        "42424242424242424242424242",  # a long id
        "4242.4242.4242.4242",  # dots are not a card separator
        "pay_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0",
        "Amount 424242 paid on 2024-12-31",
    ],
)
def test_near_misses_are_not_cards(text: str) -> None:
    assert not contains_card_number(text)


def test_each_prefix_decides() -> None:
    for prefix, expected in [("4", True), ("51", True), ("59", False), ("1", False)]:
        number = _with_luhn(prefix + "0" * (15 - len(prefix)))
        assert is_card_number(number) is expected, number


@given(st.text(alphabet="0123456789 -abc", max_size=400))
def test_never_raises_and_agrees_with_the_digits(text: str) -> None:
    found = contains_card_number(text)
    if found:
        digits = [c for c in text if c.isdigit()]
        assert len(digits) >= 13


@given(st.from_regex(r"4[0-9]{14}", fullmatch=True), st.sampled_from(["", " ", "-", " - "]))
def test_any_luhn_valid_visa_number_is_found(body: str, separator: str) -> None:
    number = _with_luhn(body)
    grouped = separator.join(number[i : i + 4] for i in range(0, 16, 4))
    assert contains_card_number(f"note: {grouped} thanks")
