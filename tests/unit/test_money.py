"""The currency registry and amount validation."""

from __future__ import annotations

import pytest

from paygrid.domain.errors import InvalidAmount, UnsupportedCurrency
from paygrid.money import CURRENCIES, format_minor, get_currency, validate_amount


def test_registry_covers_required_currencies_with_exponents() -> None:
    exponents = {code: c.exponent for code, c in CURRENCIES.items()}
    for code in ("NGN", "GHS", "ZAR", "KES", "USD", "EUR", "GBP", "INR"):
        assert exponents[code] == 2
    assert exponents["JPY"] == 0
    assert exponents["KWD"] == 3


@pytest.mark.parametrize("code", ["NGN", "GHS", "ZAR", "KES", "USD"])
def test_seed_limits_for_paystack_currencies(code: str) -> None:
    currency = get_currency(code)
    assert (currency.min_amount, currency.max_amount) == (100, 99_999_999_900)


def test_lookup_is_case_insensitive_and_unknown_is_rejected() -> None:
    assert get_currency("usd").code == "USD"
    with pytest.raises(UnsupportedCurrency) as raised:
        get_currency("XYZ")
    assert raised.value.code == "currency_not_supported"
    assert raised.value.param == "currency"


def test_limits_are_enforced_in_minor_units() -> None:
    usd = get_currency("USD")
    assert validate_amount(100, usd) == 100
    with pytest.raises(InvalidAmount) as small:
        validate_amount(99, usd)
    assert (small.value.code, small.value.param) == ("amount_too_small", "amount")
    with pytest.raises(InvalidAmount) as large:
        validate_amount(usd.max_amount + 1, usd)
    assert large.value.code == "amount_too_large"


@pytest.mark.parametrize(
    ("amount", "code", "text"),
    [(1050, "USD", "10.50"), (5, "USD", "0.05"), (1234, "JPY", "1234"), (1, "KWD", "0.001")],
)
def test_format_minor(amount: int, code: str, text: str) -> None:
    assert format_minor(amount, get_currency(code)) == text


@pytest.mark.parametrize("code", ["u\u017fd", "\uff35\uff33\uff24", "usd\n", "US", "USDD", "U5D"])
def test_currency_codes_are_three_ascii_letters(code: str) -> None:
    with pytest.raises(UnsupportedCurrency):
        get_currency(code)


def test_currency_codes_are_case_insensitive_ascii() -> None:
    assert get_currency("usd").code == "USD"
