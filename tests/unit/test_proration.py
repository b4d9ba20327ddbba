"""Proration: integer minor units, rounded half to even once per line, in a zero-decimal and
a three-decimal currency, with the worked examples of docs/billing.md."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygrid.domain import proration as proration_module
from paygrid.domain.billing_dates import Cycle, Period, period_containing
from paygrid.domain.catalog import RecurringInterval
from paygrid.domain.proration import (
    Item,
    ProrationKind,
    ProrationLine,
    prorate,
    proration_lines,
    remaining_seconds,
)
from paygrid.money import get_currency

DOCS = Path(__file__).resolve().parents[2] / "docs" / "billing.md"
CYCLE = Cycle(datetime(2028, 1, 31, 9, 30, tzinfo=UTC), RecurringInterval.MONTH)


def test_jpy_upgrade_with_a_quantity_change() -> None:
    """docs/billing.md's JPY example: 2 x 980 yen to 3 x 1,480 yen on 10 March 2028."""
    assert get_currency("JPY").exponent == 0
    moment = datetime(2028, 3, 10, 14, 27, 9, tzinfo=UTC)
    period = period_containing(CYCLE, moment)
    assert period == Period(
        datetime(2028, 2, 29, 9, 30, tzinfo=UTC), datetime(2028, 3, 31, 9, 30, tzinfo=UTC)
    )
    assert (remaining_seconds(period, moment), period.seconds) == (1_796_571, 2_678_400)
    lines = proration_lines(
        [Item("price_basic", 980, 2)], [Item("price_pro", 1480, 3)], period, moment
    )
    covered = Period(moment, period.end)
    assert lines == (
        ProrationLine(ProrationKind.CREDIT, "price_basic", 980, 2, -1315, covered),
        ProrationLine(ProrationKind.DEBIT, "price_pro", 1480, 3, 2978, covered),
    )
    assert sum(line.amount for line in lines) == 1663


def test_kwd_upgrade_rounds_a_tie_to_even() -> None:
    """docs/billing.md's KWD example: 12.000 KWD to 15.525 KWD on 15 April 2028; the credit
    is exactly 6000.5 fils, a tie, which rounds to the even 6000."""
    assert get_currency("KWD").exponent == 3
    moment = datetime(2028, 4, 15, 9, 28, 12, tzinfo=UTC)
    period = period_containing(CYCLE, moment)
    assert (remaining_seconds(period, moment), period.seconds) == (1_296_108, 2_592_000)
    assert Fraction(12_000 * 1_296_108, 2_592_000) == Fraction(12_001, 2)
    lines = proration_lines(
        [Item("price_standard", 12_000)], [Item("price_plus", 15_525)], period, moment
    )
    assert [(line.kind, line.amount) for line in lines] == [
        (ProrationKind.CREDIT, -6000),
        (ProrationKind.DEBIT, 7763),
    ]
    assert sum(line.amount for line in lines) == 1763


def test_the_docs_show_the_examples_numbers() -> None:
    text = DOCS.read_text()
    section = re.search(r"^## Billing dates and proration\n(.*?)(?=^## )", text, re.M | re.S)
    assert section is not None
    for number in ("1,796,571", "2,678,400", "-1,315", "2,978", "1,663"):
        assert number in section.group(1), number
    for number in ("1,296,108", "2,592,000", "6,000.5", "-6,000", "7,763", "1,763"):
        assert number in section.group(1), number


@pytest.mark.parametrize(
    ("amount", "expected"), [(1, 0), (3, 2), (5, 2), (7, 4), (-1, 0), (-3, -2), (-5, -2)]
)
def test_half_way_rounds_to_even(amount: int, expected: int) -> None:
    assert prorate(amount, 1, 2) == expected


def test_quantity_is_rounded_once_per_line_not_per_unit() -> None:
    moment = datetime(2028, 1, 31, 9, 30, tzinfo=UTC) + timedelta(days=14, hours=12)
    period = period_containing(CYCLE, moment)  # 29 days: half of it remains
    assert Fraction(remaining_seconds(period, moment), period.seconds) == Fraction(1, 2)
    (line,) = proration_lines([], [Item("price_a", 1, 3)], period, moment)
    assert line.amount == 2  # 1.5 rounded once; 3 x round(0.5) would be 0


def test_a_change_at_the_start_of_the_period_moves_whole_amounts() -> None:
    period = period_containing(CYCLE, datetime(2028, 2, 1, tzinfo=UTC))
    lines = proration_lines([Item("price_a", 999, 2)], [Item("price_b", 50)], period, period.start)
    assert [line.amount for line in lines] == [-1998, 50]


def test_unchanged_items_make_no_line_and_a_quantity_change_makes_two() -> None:
    moment = datetime(2028, 2, 10, tzinfo=UTC)
    period = period_containing(CYCLE, moment)
    keep, seat = Item("price_keep", 500, 1), Item("price_seat", 1000, 2)
    lines = proration_lines(
        [keep, seat, Item("price_gone", 300)],
        [Item("price_new", 700), Item("price_seat", 1000, 5), keep],
        period,
        moment,
    )
    assert [(line.kind, line.price, line.quantity) for line in lines] == [
        (ProrationKind.CREDIT, "price_seat", 2),
        (ProrationKind.CREDIT, "price_gone", 1),
        (ProrationKind.DEBIT, "price_new", 1),
        (ProrationKind.DEBIT, "price_seat", 5),
    ]
    assert proration_lines([keep, seat], [seat, keep], period, moment) == ()


def test_the_change_must_lie_within_the_period() -> None:
    period = period_containing(CYCLE, datetime(2028, 2, 10, tzinfo=UTC))
    for moment in (period.end, period.start - timedelta(microseconds=1)):
        with pytest.raises(ValueError, match="within the period"):
            proration_lines([], [Item("price_a", 100)], period, moment)
    with pytest.raises(ValueError, match="timezone-aware"):
        proration_lines([], [Item("price_a", 100)], period, datetime(2028, 2, 10))


def test_a_price_appears_once_per_side() -> None:
    period = period_containing(CYCLE, datetime(2028, 2, 10, tzinfo=UTC))
    twice = [Item("price_a", 100), Item("price_a", 100, 2)]
    with pytest.raises(ValueError, match="at most once"):
        proration_lines(twice, [], period, period.start)


@pytest.mark.parametrize(
    "arguments", [(1.0, 1, 2), (1, 0.5, 2), (1, 1, 2.0), (True, 1, 2), (1, 1, 0), (1, 3, 2)]
)
def test_prorate_refuses_anything_but_integers_within_a_period(
    arguments: tuple[object, object, object],
) -> None:
    with pytest.raises((TypeError, ValueError)):
        prorate(*arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["unit_amount", "quantity"])
@pytest.mark.parametrize("value", [1.5, -1, True, "3"])
def test_items_take_non_negative_integers(field: str, value: object) -> None:
    fields: dict[str, object] = {"price": "price_a", "unit_amount": 100, "quantity": 1}
    fields[field] = value
    with pytest.raises(ValueError, match=field):
        Item(**fields)  # type: ignore[arg-type]


def test_the_module_never_touches_floats() -> None:
    tree = ast.parse(Path(proration_module.__file__).read_text())
    for node in ast.walk(tree):
        assert not isinstance(node, ast.Div), "true division makes floats"
        assert not (isinstance(node, ast.Name) and node.id in {"float", "Decimal"})
        assert not (isinstance(node, ast.Constant) and isinstance(node.value, float))


# -- properties ------------------------------------------------------------------------------

amounts = st.integers(0, 10**12)
quantities = st.integers(0, 10_000)


@given(amounts, st.data())
def test_prorate_is_the_exact_value_rounded_half_to_even(amount: int, data: st.DataObject) -> None:
    total = data.draw(st.integers(1, 366 * 86_400), label="period seconds")
    remaining = data.draw(st.integers(0, total), label="remaining seconds")
    result = prorate(amount, remaining, total)
    exact = Fraction(amount * remaining, total)
    assert type(result) is int
    assert abs(result - exact) <= Fraction(1, 2)
    if abs(result - exact) == Fraction(1, 2):
        assert result % 2 == 0
    assert 0 <= result <= amount
    assert prorate(-amount, remaining, total) == -result
    assert prorate(amount, total, total) == amount
    assert prorate(amount, 0, total) == 0


item_lists = st.lists(
    st.builds(
        Item, st.sampled_from(["price_a", "price_b", "price_c", "price_d"]), amounts, quantities
    ),
    max_size=4,
    unique_by=lambda item: item.price,
)


@st.composite
def changes(draw: st.DrawFn) -> tuple[Period, datetime]:
    anchor = draw(st.datetimes(datetime(2000, 1, 1), datetime(2090, 1, 1), timezones=st.just(UTC)))
    interval = draw(st.sampled_from(RecurringInterval))
    cycle = Cycle(anchor, interval, draw(st.integers(1, 3)))
    period = period_containing(
        cycle, anchor + draw(st.timedeltas(timedelta(0), timedelta(days=900)))
    )
    offset = draw(
        st.timedeltas(timedelta(0), period.end - period.start - timedelta(microseconds=1))
    )
    return period, period.start + offset


@given(item_lists, item_lists, changes())
def test_lines_have_their_sign_and_stay_within_the_full_amount(
    old: list[Item], new: list[Item], change: tuple[Period, datetime]
) -> None:
    period, moment = change
    lines = proration_lines(old, new, period, moment)
    for line in lines:
        assert type(line.amount) is int
        full = line.unit_amount * line.quantity
        if line.kind is ProrationKind.CREDIT:
            assert -full <= line.amount <= 0
        else:
            assert 0 <= line.amount <= full
        assert line.period == Period(moment, period.end)
    assert len(lines) == sum(i not in new for i in old) + sum(i not in old for i in new)


@given(item_lists, item_lists, changes())
def test_reverting_a_change_nets_to_zero(
    old: list[Item], new: list[Item], change: tuple[Period, datetime]
) -> None:
    period, moment = change
    there = proration_lines(old, new, period, moment)
    back = proration_lines(new, old, period, moment)
    assert sum(line.amount for line in there) == -sum(line.amount for line in back)


@given(amounts, quantities, changes(), st.data())
def test_a_later_change_credits_and_charges_no_more(
    unit_amount: int, quantity: int, change: tuple[Period, datetime], data: st.DataObject
) -> None:
    period, moment = change
    later = data.draw(
        st.datetimes(
            moment.replace(tzinfo=None),
            period.end.replace(tzinfo=None) - timedelta(microseconds=1),
            timezones=st.just(UTC),
        )
    )
    item = Item("price_a", unit_amount, quantity)
    (early_line,) = proration_lines([], [item], period, moment)
    (late_line,) = proration_lines([], [item], period, later)
    assert late_line.amount <= early_line.amount
