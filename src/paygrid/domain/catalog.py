"""The catalog's vocabulary: price types, billing intervals and how many of each one
recurrence may span (Stripe's rule: at most one year between two billing dates). Pure."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class PriceType(StrEnum):
    ONE_TIME = "one_time"
    RECURRING = "recurring"


class RecurringInterval(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


# The largest ``interval_count`` of each interval: one year in all.
MAX_INTERVAL_COUNT: Final[dict[RecurringInterval, int]] = {
    RecurringInterval.DAY: 365,
    RecurringInterval.WEEK: 52,
    RecurringInterval.MONTH: 12,
    RecurringInterval.YEAR: 1,
}


def interval_count_error(interval: RecurringInterval, count: int) -> str | None:
    """Why ``count`` intervals are not a valid recurrence, if they are not."""
    most = MAX_INTERVAL_COUNT[interval]
    if 1 <= count <= most:
        return None
    return (
        f"interval_count must be between 1 and {most} for interval '{interval.value}' "
        "(at most one year between billing dates)"
    )
