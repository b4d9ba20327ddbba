"""Properties of amounts for every currency in the registry: formatting and parsing are
inverse, the exponent decides the decimals, and validation takes only in-range integers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygrid.domain.errors import InvalidAmount
from paygrid.money import CURRENCIES, Currency, format_minor, parse_minor, validate_amount

BOUNDED = settings(max_examples=200, deadline=None, database=None)
currencies = st.sampled_from(sorted(CURRENCIES.values(), key=lambda c: c.code))


def in_range(currency: Currency) -> st.SearchStrategy[int]:
    return st.integers(currency.min_amount, currency.max_amount)


@BOUNDED
@given(data=st.data(), currency=currencies)
def test_format_then_parse_is_identity(data: st.DataObject, currency: Currency) -> None:
    amount = data.draw(st.integers(-currency.max_amount, currency.max_amount), label="amount")
    assert parse_minor(format_minor(amount, currency), currency) == amount


@BOUNDED
@given(amount=st.integers(0, 10**15), currency=currencies)
def test_format_shows_exactly_the_exponent_in_decimals(amount: int, currency: Currency) -> None:
    text = format_minor(amount, currency)
    whole, dot, fraction = text.partition(".")
    assert len(fraction) == currency.exponent
    assert bool(dot) == (currency.exponent > 0)
    assert int(whole) == amount // 10**currency.exponent
    assert int(fraction or 0) == amount % 10**currency.exponent


@BOUNDED
@given(
    whole=st.integers(0, 10**9),
    fraction=st.text("0123456789", min_size=1, max_size=4),
    currency=currencies,
)
def test_parse_scales_by_the_exponent(whole: int, fraction: str, currency: Currency) -> None:
    text = f"{whole}.{fraction}"
    if len(fraction) > currency.exponent:
        with pytest.raises(InvalidAmount):
            parse_minor(text, currency)
        return
    expected = whole * 10**currency.exponent + int(fraction) * 10 ** (
        currency.exponent - len(fraction)
    )
    assert parse_minor(text, currency) == expected
    assert parse_minor(str(whole), currency) == whole * 10**currency.exponent


@BOUNDED
@given(
    text=st.text(max_size=12).filter(lambda t: any(c not in "0123456789.-" for c in t)),
    currency=currencies,
)
def test_parse_rejects_what_is_not_a_plain_decimal(text: str, currency: Currency) -> None:
    with pytest.raises(InvalidAmount):
        parse_minor(text, currency)


@pytest.mark.parametrize(
    "text", ["", "-", ".", "1.", ".5", "1e3", "+1", "1,00", " 1", "0x10", "١٢"]
)
@pytest.mark.parametrize("code", sorted(CURRENCIES))
def test_parse_rejects_malformed_text(text: str, code: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_minor(text, CURRENCIES[code])


@BOUNDED
@given(data=st.data(), currency=currencies)
def test_validate_accepts_every_amount_within_limits(
    data: st.DataObject, currency: Currency
) -> None:
    amount = data.draw(in_range(currency), label="amount")
    assert validate_amount(amount, currency) == amount


@BOUNDED
@given(data=st.data(), currency=currencies)
def test_validate_rejects_amounts_outside_limits(data: st.DataObject, currency: Currency) -> None:
    below = data.draw(st.integers(max_value=currency.min_amount - 1), label="below")
    above = data.draw(st.integers(min_value=currency.max_amount + 1), label="above")
    with pytest.raises(InvalidAmount) as small:
        validate_amount(below, currency)
    assert (small.value.code, small.value.param) == ("amount_too_small", "amount")
    with pytest.raises(InvalidAmount) as large:
        validate_amount(above, currency)
    assert large.value.code == "amount_too_large"


@BOUNDED
@given(
    amount=st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.booleans()
    | st.none()
    | st.decimals(allow_nan=False),
    currency=currencies,
)
def test_validate_rejects_what_is_not_an_integer(amount: Any, currency: Currency) -> None:
    with pytest.raises(InvalidAmount) as raised:
        validate_amount(amount, currency)
    assert (raised.value.code, raised.value.param) == ("amount_invalid", "amount")


@pytest.mark.parametrize("code", sorted(CURRENCIES))
def test_limits_are_positive_and_ordered(code: str) -> None:
    currency = CURRENCIES[code]
    assert 0 < currency.min_amount < currency.max_amount
    assert currency.exponent in (0, 2, 3)
