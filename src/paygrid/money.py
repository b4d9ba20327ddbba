"""The currency registry and amount validation. Amounts are integers in minor units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from paygrid.domain.errors import InvalidAmount, UnsupportedCurrency


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    name: str
    exponent: int
    min_amount: int
    max_amount: int


def _currency(code: str, name: str, exponent: int, min_amount: int, max_amount: int) -> Currency:
    return Currency(code, name, exponent, min_amount, max_amount)


# Seed 000 fixes the African currencies and USD at 1.00 .. 999,999,999.00; the others follow
# each processor's usual minimum charge (about 0.50 in the major unit).
CURRENCIES: Final[dict[str, Currency]] = {
    c.code: c
    for c in (
        _currency("NGN", "Nigerian Naira", 2, 100, 99_999_999_900),
        _currency("GHS", "Ghanaian Cedi", 2, 100, 99_999_999_900),
        _currency("ZAR", "South African Rand", 2, 100, 99_999_999_900),
        _currency("KES", "Kenyan Shilling", 2, 100, 99_999_999_900),
        _currency("USD", "US Dollar", 2, 100, 99_999_999_900),
        _currency("EUR", "Euro", 2, 50, 99_999_999_900),
        _currency("GBP", "Pound Sterling", 2, 30, 99_999_999_900),
        _currency("INR", "Indian Rupee", 2, 50, 99_999_999_900),
        _currency("JPY", "Japanese Yen", 0, 50, 9_999_999_999),
        _currency("KWD", "Kuwaiti Dinar", 3, 100, 99_999_999_999),
    )
}


def get_currency(code: str) -> Currency:
    """Look up a currency by ISO 4217 code (case-insensitive)."""
    currency = CURRENCIES.get(code.upper())
    if currency is None:
        raise UnsupportedCurrency(
            f"Currency '{code}' is not supported. Supported: {', '.join(sorted(CURRENCIES))}.",
            param="currency",
        )
    return currency


def validate_amount(amount: int, currency: Currency, *, param: str = "amount") -> int:
    """Check an amount in minor units against the currency's limits."""
    if amount < currency.min_amount:
        raise InvalidAmount(
            f"Amount must be at least {currency.min_amount} (minor units of {currency.code}).",
            param=param,
            code="amount_too_small",
        )
    if amount > currency.max_amount:
        raise InvalidAmount(
            f"Amount must be at most {currency.max_amount} (minor units of {currency.code}).",
            param=param,
            code="amount_too_large",
        )
    return amount


def format_minor(amount: int, currency: Currency) -> str:
    """Render minor units as a plain decimal string, e.g. 1050 USD -> '10.50'."""
    if currency.exponent == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**currency.exponent)
    return f"{sign}{whole}.{fraction:0{currency.exponent}d}"
