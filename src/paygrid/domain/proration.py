"""Proration: what a mid-period change of a subscription's items credits and charges.

All of it is integer arithmetic on minor units, whatever the currency's exponent. A line's
amount is

    round_half_even(unit_amount * quantity * seconds_remaining / seconds_in_period)

computed as an exact fraction and rounded once, per line, never per unit and never through
a float. ``seconds_remaining`` runs from the change to the end of the period; both counts
are whole seconds. The unused time of each old item that changes is a credit (negative);
the remaining time of each new item that changes is a debit (positive).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from fractions import Fraction

from paygrid.domain.billing_dates import Period, as_utc, whole_seconds


class ProrationBehavior(StrEnum):
    """Stripe's ``proration_behavior`` on a subscription update."""

    CREATE_PRORATIONS = "create_prorations"  # pending lines, billed on the next invoice
    NONE = "none"  # no lines: the new items bill from the next period
    ALWAYS_INVOICE = "always_invoice"  # the lines are invoiced at once


class ProrationKind(StrEnum):
    CREDIT = "credit"  # unused time of an old item
    DEBIT = "debit"  # remaining time of a new item


@dataclass(frozen=True, slots=True)
class Item:
    """One subscription item: a price (its id and unit amount in minor units) and a
    quantity. A subscription names each price at most once."""

    price: str
    unit_amount: int
    quantity: int = 1

    def __post_init__(self) -> None:
        for name in ("unit_amount", "quantity"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")

    @property
    def amount(self) -> int:
        """A full period of this item, in minor units."""
        return self.unit_amount * self.quantity


@dataclass(frozen=True, slots=True)
class ProrationLine:
    """One proration line: ``amount`` is signed (credits ≤ 0 ≤ debits) and covers
    ``period``, from the change to the end of the billing period."""

    kind: ProrationKind
    price: str
    unit_amount: int
    quantity: int
    amount: int
    period: Period


def prorate(amount: int, remaining_seconds: int, period_seconds: int) -> int:
    """``amount * remaining_seconds / period_seconds``, rounded half to even, once."""
    for value in (amount, remaining_seconds, period_seconds):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("proration takes integers only")
    if period_seconds <= 0 or not 0 <= remaining_seconds <= period_seconds:
        raise ValueError("the remaining time must lie within a non-empty period")
    # Fraction's round() rounds half to even, symmetrically around zero.
    return round(Fraction(amount * remaining_seconds, period_seconds))


def remaining_seconds(period: Period, moment: datetime) -> int:
    """Whole seconds from ``moment`` to the end of ``period``, which must contain it."""
    moment = as_utc(moment)
    if moment not in period:
        raise ValueError("the change must happen within the period")
    return whole_seconds(period.end - moment)


def proration_lines(
    old: Sequence[Item], new: Sequence[Item], period: Period, moment: datetime
) -> tuple[ProrationLine, ...]:
    """The lines of changing ``old`` items to ``new`` ones at ``moment`` within ``period``:
    a credit for each old item that is not kept exactly (same price, same quantity), in the
    order of ``old``, then a debit for each new item that was not there, in the order of
    ``new``. Unchanged items make no line; a changed quantity makes a credit of the old
    quantity and a debit of the new one, as Stripe does."""
    _require_unique_prices(old)
    _require_unique_prices(new)
    remaining = remaining_seconds(period, moment)
    total = period.seconds
    covered = Period(as_utc(moment), period.end)
    credits = [
        _line(ProrationKind.CREDIT, item, -prorate(item.amount, remaining, total), covered)
        for item in old
        if item not in new
    ]
    debits = [
        _line(ProrationKind.DEBIT, item, prorate(item.amount, remaining, total), covered)
        for item in new
        if item not in old
    ]
    return (*credits, *debits)


def _line(kind: ProrationKind, item: Item, amount: int, period: Period) -> ProrationLine:
    return ProrationLine(kind, item.price, item.unit_amount, item.quantity, amount, period)


def _require_unique_prices(items: Sequence[Item]) -> None:
    prices = [item.price for item in items]
    if len(set(prices)) != len(prices):
        raise ValueError("a subscription names each price at most once")
