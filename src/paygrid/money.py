"""The currency registry and amount validation. Amounts are integers in minor units."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from babel.numbers import format_currency

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


# The largest amount any currency allows: a bound for amounts that are not yet tied to a
# currency (routing-rule conditions), so none can exceed what a payment could carry.
MAX_AMOUNT: Final = max(c.max_amount for c in CURRENCIES.values())


# Three ASCII letters and nothing else: str.upper() alone folds look-alikes such as "u\u017fd"
# (U+017F, long s) into "USD".
_CODE: Final = re.compile(r"[A-Za-z]{3}")


def get_currency(code: str) -> Currency:
    """Look up a currency by ISO 4217 code (three ASCII letters, case-insensitive)."""
    currency = CURRENCIES.get(code.upper()) if _CODE.fullmatch(code) else None
    if currency is None:
        raise UnsupportedCurrency(
            f"Currency '{code}' is not supported. Supported: {', '.join(sorted(CURRENCIES))}.",
            param="currency",
        )
    return currency


def validate_amount(amount: int, currency: Currency, *, param: str = "amount") -> int:
    """Check an amount in minor units against the currency's limits."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(
            f"Amount must be an integer in minor units of {currency.code}.",
            param=param,
            code="amount_invalid",
        )
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


# The locale each currency is shown in to customers (hosted checkout): its home market's.
DISPLAY_LOCALES: Final[dict[str, str]] = {
    "NGN": "en_NG",
    "GHS": "en_GH",
    "ZAR": "en_ZA",
    "KES": "en_KE",
    "USD": "en_US",
    "EUR": "de_DE",
    "GBP": "en_GB",
    "INR": "en_IN",
    "JPY": "ja_JP",
    "KWD": "en_US",
}


def format_display(amount: int, currency: Currency) -> str:
    """Minor units as a customer reads them, in the currency's locale: 2000 USD -> '$20.00',
    500000 NGN -> '₦5,000.00'."""
    major = Decimal(amount).scaleb(-currency.exponent)
    locale = DISPLAY_LOCALES.get(currency.code, "en_US")
    return str(format_currency(major, currency.code, locale=locale))


# ASCII digits only: ``\d`` would also take other scripts' digits.
_DECIMAL: Final = re.compile(r"(?P<sign>-)?(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")


def parse_minor(text: str, currency: Currency) -> int:
    """The inverse of ``format_minor``: '10.50' USD -> 1050. Fewer decimals than the
    exponent are allowed ('10.5'); more, or any for a zero-exponent currency, are not."""
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise InvalidAmount(f"'{text}' is not a decimal amount.", code="amount_invalid")
    sign: str | None = match["sign"]
    whole: str = match["whole"]
    fraction: str = match["fraction"] or ""
    if len(fraction) > currency.exponent:
        raise InvalidAmount(
            f"{currency.code} amounts have at most {currency.exponent} decimal places.",
            code="amount_invalid",
        )
    scale: int = 10**currency.exponent  # int ** int is typed Any: a negative power is a float
    minor = int(whole) * scale + int(fraction.ljust(currency.exponent, "0") or 0)
    return -minor if sign else minor
