"""Spotting a card number typed into free text (a description, metadata, a customer's name),
so that it is refused before it is stored: paygrid promises never to store a card number.

A candidate is 13 to 19 digits, written together or in groups separated by spaces or dashes
(``4242 4242 4242 4242``, ``4242-4242-4242-4242``). It counts as a card number when it passes
the Luhn check and starts with a card network's prefix. A run of more than 19 digits written
without separators is an identifier, not a card number; runs written in groups are searched
group by group, so a card number followed by its CVC or expiry is still found."""

from __future__ import annotations

import re
import unicodedata

from paygrid.domain.errors import CardNumberInText

MIN_DIGITS = 13
MAX_DIGITS = 19

# Groups of digits joined by at most three spaces or dashes: "4242 4242", "4242 - 4242".
_RUN = re.compile(r"[0-9]+(?:[ \-]{1,3}[0-9]+)*")
_SEPARATORS = re.compile(r"[ \-]+")

# Issuer prefixes (IIN ranges) of the networks whose cards paygrid's providers take: Visa,
# Mastercard, American Express, Discover, Diners Club, JCB, UnionPay, Maestro, Verve, Mir
# and RuPay. Each entry is (first, last) of a range of prefixes of the same length.
_NETWORK_PREFIXES: tuple[tuple[int, int], ...] = (
    (4, 4),  # Visa
    (51, 55),  # Mastercard
    (2221, 2720),  # Mastercard 2-series
    (34, 34),  # American Express
    (37, 37),
    (6011, 6011),  # Discover
    (644, 649),
    (65, 65),
    (300, 305),  # Diners Club
    (36, 36),
    (38, 39),
    (3528, 3589),  # JCB
    (62, 62),  # UnionPay
    (50, 50),  # Maestro, Verve (506099-506198, 507865-507964)
    (56, 58),
    (60, 60),  # Maestro, RuPay
    (63, 63),
    (67, 67),
    (2200, 2204),  # Mir
    (81, 82),  # RuPay
)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number carries in its last digit."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def has_network_prefix(digits: str) -> bool:
    for first, last in _NETWORK_PREFIXES:
        width = len(str(first))
        if first <= int(digits[:width]) <= last:
            return True
    return False


def is_card_number(digits: str) -> bool:
    """True for 13-19 ASCII digits that pass Luhn and start with a network prefix."""
    return (
        MIN_DIGITS <= len(digits) <= MAX_DIGITS
        and digits.isascii()
        and digits.isdigit()
        and has_network_prefix(digits)
        and luhn_valid(digits)
    )


def contains_card_number(text: str) -> bool:
    """Whether ``text`` holds something that looks like a payment card number."""
    # NFKC turns full-width digits and no-break spaces into their ASCII forms.
    normal = unicodedata.normalize("NFKC", text) if not text.isascii() else text
    return any(_run_holds_card(match.group()) for match in _RUN.finditer(normal))


def _run_holds_card(run: str) -> bool:
    groups = _SEPARATORS.split(run)
    if len(groups) == 1:
        return is_card_number(groups[0])
    for start in range(len(groups)):
        digits = ""
        for group in groups[start:]:
            digits += group
            if len(digits) > MAX_DIGITS:
                break
            if is_card_number(digits):
                return True
    return False


def refuse_card_number(text: str | None, param: str) -> None:
    """Raise ``card_number_in_text`` naming ``param`` when ``text`` holds a card number
    (for form fields, which do not pass through the API's request models)."""
    if text is not None and contains_card_number(text):
        raise CardNumberInText(param=param)
