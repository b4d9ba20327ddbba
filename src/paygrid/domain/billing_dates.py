"""Billing dates: the periods of a recurring price, from its billing cycle anchor.

Every boundary is computed from the anchor, never from the previous boundary, and in UTC:
boundary *n* is the anchor moved by ``n * interval_count`` intervals, keeping the anchor's
time of day. A month or year step lands on the anchor's day of the month, or on the last day
of a shorter month, so an anchor on the 31st renews Jan 31 → Feb 29 (2028) → Mar 31 → Apr 30
and returns to the 31st, and a Feb 29 anchor renews on Feb 28 in other years. Boundaries are
defined for every integer *n*, also before the anchor, so every moment lies in exactly one
period: ``[start, end)``, start included, end excluded.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, assert_never

from paygrid.domain.catalog import RecurringInterval

_SECOND: Final = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Period:
    """A billing period, ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "end", as_utc(self.end))
        if not self.start < self.end:
            raise ValueError("a period ends after it starts")

    @property
    def seconds(self) -> int:
        """Its length in whole seconds (what proration divides by)."""
        return whole_seconds(self.end - self.start)

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end


@dataclass(frozen=True, slots=True)
class Cycle:
    """A billing cycle: the anchor and how far apart its boundaries are."""

    anchor: datetime
    interval: RecurringInterval
    interval_count: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "anchor", as_utc(self.anchor))
        object.__setattr__(self, "interval", RecurringInterval(self.interval))
        count = self.interval_count
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("interval_count must be a positive integer")


def whole_seconds(delta: timedelta) -> int:
    """A duration in whole seconds, a partial second dropped (floor)."""
    return delta // _SECOND


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is refused, never guessed."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("billing dates need timezone-aware datetimes")
    return moment.astimezone(UTC)


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` moved by ``months`` calendar months, on the same day of the month or the
    last day of a shorter month, at the same time of day."""
    index = moment.year * 12 + (moment.month - 1) + months
    year, month_index = divmod(index, 12)
    month = month_index + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def boundary(cycle: Cycle, n: int) -> datetime:
    """The ``n``-th boundary of ``cycle`` (0 is the anchor; negative ones precede it)."""
    steps = n * cycle.interval_count
    match cycle.interval:
        case RecurringInterval.DAY:
            return cycle.anchor + timedelta(days=steps)
        case RecurringInterval.WEEK:
            return cycle.anchor + timedelta(weeks=steps)
        case RecurringInterval.MONTH:
            return add_months(cycle.anchor, steps)
        case RecurringInterval.YEAR:
            return add_months(cycle.anchor, 12 * steps)
        case _:
            assert_never(cycle.interval)


def period_index(cycle: Cycle, moment: datetime) -> int:
    """The ``n`` whose period ``[boundary(n), boundary(n + 1))`` contains ``moment``."""
    moment = as_utc(moment)
    n = _estimate(cycle, moment)
    # The estimate is off by at most one or two; boundaries strictly increase with n.
    while boundary(cycle, n) > moment:
        n -= 1
    while boundary(cycle, n + 1) <= moment:
        n += 1
    return n


def _estimate(cycle: Cycle, moment: datetime) -> int:
    anchor = cycle.anchor
    match cycle.interval:
        case RecurringInterval.DAY | RecurringInterval.WEEK:
            step = timedelta(days=1 if cycle.interval is RecurringInterval.DAY else 7)
            return (moment - anchor) // (step * cycle.interval_count)
        case RecurringInterval.MONTH | RecurringInterval.YEAR:
            per_step = cycle.interval_count * (
                12 if cycle.interval is RecurringInterval.YEAR else 1
            )
            months = (moment.year - anchor.year) * 12 + (moment.month - anchor.month)
            return months // per_step
        case _:
            assert_never(cycle.interval)


def period_at(cycle: Cycle, n: int) -> Period:
    """The ``n``-th period: from boundary ``n`` to boundary ``n + 1``."""
    return Period(boundary(cycle, n), boundary(cycle, n + 1))


def period_containing(cycle: Cycle, moment: datetime) -> Period:
    """The period ``moment`` lies in (its start included, its end excluded)."""
    return period_at(cycle, period_index(cycle, moment))


def next_boundary(cycle: Cycle, moment: datetime) -> datetime:
    """The first boundary strictly after ``moment``: when the period it lies in ends."""
    return boundary(cycle, period_index(cycle, moment) + 1)


def periods_between(cycle: Cycle, after: datetime, until: datetime) -> Iterator[Period]:
    """The periods that begin in ``(after, until]``, in order: what a clock moving from
    ``after`` to ``until`` renews. A period that began exactly at ``after`` was renewed by
    the move that reached ``after``; one that begins exactly at ``until`` is renewed now."""
    after, until = as_utc(after), as_utc(until)
    if until < after:
        raise ValueError("a clock only moves forward")
    n = period_index(cycle, after) + 1
    while (period := period_at(cycle, n)).start <= until:
        yield period
        n += 1
