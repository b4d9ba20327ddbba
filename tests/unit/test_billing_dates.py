"""Billing dates: boundaries from the anchor, the last day of shorter months, UTC, and the
periods a clock advance crosses."""

from __future__ import annotations

import calendar
import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygrid.domain.billing_dates import (
    Cycle,
    Period,
    boundary,
    next_boundary,
    period_at,
    period_containing,
    period_index,
    periods_between,
)
from paygrid.domain.catalog import MAX_INTERVAL_COUNT, RecurringInterval


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def monthly(anchor: datetime, count: int = 1) -> Cycle:
    return Cycle(anchor, RecurringInterval.MONTH, count)


def test_an_anchor_on_the_31st_renews_on_the_last_day_of_shorter_months() -> None:
    cycle = monthly(utc(2028, 1, 31, 9, 30, 15))
    renewals = [boundary(cycle, n) for n in range(1, 6)]
    assert renewals == [
        utc(2028, 2, 29, 9, 30, 15),
        utc(2028, 3, 31, 9, 30, 15),
        utc(2028, 4, 30, 9, 30, 15),
        utc(2028, 5, 31, 9, 30, 15),
        utc(2028, 6, 30, 9, 30, 15),
    ]


def test_february_of_a_common_year_ends_on_the_28th() -> None:
    cycle = monthly(utc(2027, 1, 31))
    assert [boundary(cycle, n) for n in (1, 2)] == [utc(2027, 2, 28), utc(2027, 3, 31)]


def test_a_february_29_anchor_renews_yearly_on_the_28th_until_the_next_leap_year() -> None:
    cycle = Cycle(utc(2028, 2, 29, 12), RecurringInterval.YEAR)
    assert [boundary(cycle, n) for n in range(1, 5)] == [
        utc(2029, 2, 28, 12),
        utc(2030, 2, 28, 12),
        utc(2031, 2, 28, 12),
        utc(2032, 2, 29, 12),
    ]


def test_interval_count_steps_several_months_from_the_anchor() -> None:
    cycle = monthly(utc(2027, 11, 30, 6), count=3)
    assert [boundary(cycle, n) for n in (-1, 1, 2, 3)] == [
        utc(2027, 8, 30, 6),
        utc(2028, 2, 29, 6),
        utc(2028, 5, 30, 6),
        utc(2028, 8, 30, 6),
    ]


def test_days_and_weeks_are_fixed_lengths() -> None:
    anchor = utc(2028, 3, 25, 23, 59, 59)
    assert boundary(Cycle(anchor, RecurringInterval.DAY, 10), 1) == utc(2028, 4, 4, 23, 59, 59)
    assert boundary(Cycle(anchor, RecurringInterval.WEEK, 2), -1) == utc(2028, 3, 11, 23, 59, 59)


def test_an_anchor_in_another_offset_bills_on_utc_dates() -> None:
    new_york = timezone(timedelta(hours=-5))
    cycle = monthly(datetime(2028, 1, 31, 23, 30, tzinfo=new_york))
    assert cycle.anchor == utc(2028, 2, 1, 4, 30)
    assert boundary(cycle, 1) == utc(2028, 3, 1, 4, 30)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Cycle(datetime(2028, 1, 31), RecurringInterval.MONTH)
    cycle = monthly(utc(2028, 1, 31))
    with pytest.raises(ValueError, match="timezone-aware"):
        period_containing(cycle, datetime(2028, 2, 3))


@pytest.mark.parametrize("count", [0, -1, True, 1.0])
def test_interval_count_must_be_positive(count: int) -> None:
    with pytest.raises(ValueError, match="interval_count"):
        Cycle(utc(2028, 1, 1), RecurringInterval.DAY, count)


def test_a_plain_string_interval_becomes_the_enum() -> None:
    cycle = Cycle(utc(2028, 1, 1), "week", 1)  # type: ignore[arg-type]
    assert cycle.interval is RecurringInterval.WEEK
    with pytest.raises(ValueError):
        Cycle(utc(2028, 1, 1), "fortnight", 1)  # type: ignore[arg-type]


def test_period_containing_includes_its_start_and_excludes_its_end() -> None:
    cycle = monthly(utc(2028, 1, 31, 9, 30))
    feb = Period(utc(2028, 2, 29, 9, 30), utc(2028, 3, 31, 9, 30))
    assert period_containing(cycle, utc(2028, 2, 29, 9, 30)) == feb
    assert period_containing(cycle, utc(2028, 3, 31, 9, 29, 59, 999_999)) == feb
    assert period_containing(cycle, utc(2028, 3, 31, 9, 30)).start == utc(2028, 3, 31, 9, 30)
    assert period_containing(cycle, utc(2028, 2, 29, 9, 29)).start == utc(2028, 1, 31, 9, 30)
    assert next_boundary(cycle, utc(2028, 2, 29, 9, 30)) == utc(2028, 3, 31, 9, 30)
    assert feb.seconds == 31 * 86_400
    assert utc(2028, 3, 1) in feb
    assert feb.end not in feb


def test_moments_before_the_anchor_have_periods_too() -> None:
    cycle = monthly(utc(2028, 1, 31))
    assert period_index(cycle, utc(2027, 12, 1)) == -2
    assert period_containing(cycle, utc(2027, 12, 1)) == Period(
        utc(2027, 11, 30), utc(2027, 12, 31)
    )


def test_a_period_must_end_after_it_starts_in_utc() -> None:
    with pytest.raises(ValueError, match="ends after"):
        Period(utc(2028, 1, 1), utc(2028, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        Period(datetime(2028, 1, 1), datetime(2028, 1, 2))
    lagos = timezone(timedelta(hours=1))
    period = Period(datetime(2028, 1, 1, 1, tzinfo=lagos), utc(2028, 1, 2))
    assert period.start == utc(2028, 1, 1)
    assert period.start.tzinfo is UTC
    assert period.seconds == 86_400


def test_periods_between_lists_each_period_a_clock_move_begins() -> None:
    cycle = monthly(utc(2028, 1, 31, 9, 30))
    starts = [p.start for p in periods_between(cycle, utc(2028, 1, 31, 9, 30), utc(2028, 5, 1))]
    assert starts == [utc(2028, 2, 29, 9, 30), utc(2028, 3, 31, 9, 30), utc(2028, 4, 30, 9, 30)]
    # The end of the move is included, its start is not.
    exact = list(periods_between(cycle, utc(2028, 2, 1), utc(2028, 2, 29, 9, 30)))
    assert [p.start for p in exact] == [utc(2028, 2, 29, 9, 30)]
    assert list(periods_between(cycle, utc(2028, 2, 29, 9, 30), utc(2028, 3, 31, 9))) == []


def test_periods_between_refuses_a_backward_move() -> None:
    cycle = monthly(utc(2028, 1, 31))
    with pytest.raises(ValueError, match="forward"):
        list(periods_between(cycle, utc(2028, 3, 1), utc(2028, 2, 1)))


def test_a_daily_advance_of_ten_years_crosses_every_day_in_order() -> None:
    cycle = Cycle(utc(2028, 1, 1, 0, 0, 1), RecurringInterval.DAY)
    periods = list(periods_between(cycle, utc(2028, 1, 1), utc(2038, 1, 1)))
    assert len(periods) == (utc(2038, 1, 1) - utc(2028, 1, 1)).days
    assert all(a.end == b.start for a, b in itertools.pairwise(periods))


# -- properties ------------------------------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC)
)


@st.composite
def cycles(draw: st.DrawFn) -> Cycle:
    interval = draw(st.sampled_from(RecurringInterval))
    count = draw(st.integers(1, MAX_INTERVAL_COUNT[interval]))
    return Cycle(draw(moments), interval, count)


@given(cycles(), st.integers(-40, 40))
def test_periods_are_contiguous_and_strictly_increasing(cycle: Cycle, n: int) -> None:
    period, following = period_at(cycle, n), period_at(cycle, n + 1)
    assert period.end == following.start
    assert period.start < period.end < following.end
    assert boundary(cycle, 0) == cycle.anchor


@given(cycles(), st.integers(-40, 40))
def test_boundaries_keep_the_time_of_day_and_the_anchor_day(cycle: Cycle, n: int) -> None:
    moment = boundary(cycle, n)
    assert moment.tzinfo is UTC
    assert moment.time() == cycle.anchor.time()
    if cycle.interval in (RecurringInterval.MONTH, RecurringInterval.YEAR):
        days_in_month = calendar.monthrange(moment.year, moment.month)[1]
        assert moment.day == min(cycle.anchor.day, days_in_month)
        months = (moment.year - cycle.anchor.year) * 12 + moment.month - cycle.anchor.month
        per_step = cycle.interval_count * (12 if cycle.interval is RecurringInterval.YEAR else 1)
        assert months == n * per_step
    else:
        days = cycle.interval_count * (7 if cycle.interval is RecurringInterval.WEEK else 1)
        assert period_at(cycle, n).end - moment == timedelta(days=days)


@given(cycles(), moments)
def test_every_moment_lies_in_exactly_its_period(cycle: Cycle, moment: datetime) -> None:
    n = period_index(cycle, moment)
    period = period_containing(cycle, moment)
    assert period == period_at(cycle, n)
    assert period.start <= moment < period.end
    assert next_boundary(cycle, moment) == period.end
    assert period_index(cycle, period.start) == n
    assert period_index(cycle, period.end) == n + 1


@given(cycles(), moments, st.timedeltas(timedelta(0), timedelta(days=800)))
def test_periods_between_have_no_gaps_or_overlaps(
    cycle: Cycle, after: datetime, span: timedelta
) -> None:
    until = after + span
    periods = list(periods_between(cycle, after, until))
    assert len(periods) == period_index(cycle, until) - period_index(cycle, after)
    assert all(after < p.start <= until for p in periods)
    assert all(a.end == b.start for a, b in itertools.pairwise(periods))
    if periods:
        assert periods[0].start == next_boundary(cycle, after)
        assert periods[-1] == period_containing(cycle, until)


@given(cycles(), moments, st.timedeltas(timedelta(0), timedelta(days=400)), st.data())
def test_two_advances_cross_the_periods_of_one(
    cycle: Cycle, start: datetime, span: timedelta, data: st.DataObject
) -> None:
    middle = start + data.draw(st.timedeltas(timedelta(0), span), label="first advance")
    end = start + span
    split = [*periods_between(cycle, start, middle), *periods_between(cycle, middle, end)]
    assert split == list(periods_between(cycle, start, end))
