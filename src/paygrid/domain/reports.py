"""Reports: what a payments summary groups by, the window it covers, and the life of a report
run. Pure: parameters in, a checked ``SummaryRequest`` or a 400 out.

A window is half-open, ``[from, to)``. ``from`` and ``to`` are Unix seconds or ISO dates
(``YYYY-MM-DD``); a date means the midnight that starts that day in the report's time zone,
so ``from=2026-03-01&to=2026-04-01`` is March there, however long its days are (23 and 25
hours on DST changes). Days are bucketed in the same time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Final

from paygrid.domain.errors import InvalidRequest


class ReportType(StrEnum):
    PAYMENTS_SUMMARY = "payments_summary"


class Dimension(StrEnum):
    """What a summary's rows can be grouped by, in the order its columns appear."""

    DAY = "day"
    STATUS = "status"
    CURRENCY = "currency"
    CONNECTOR = "connector"


# Amounts in different currencies are never added together: every summary groups by it.
ALWAYS_GROUPED: Final = Dimension.CURRENCY
MEASURES: Final = (
    "count",
    "amount",
    "amount_received",
    "amount_refunded",
    "fee",
    "net",
    "fee_pending_count",
)
SYNC_MAX_DAYS: Final = 366
RUN_MAX_DAYS: Final = 3660
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)
DEFAULT_DAYS: Final = 30
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UNIX: Final = re.compile(r"[0-9]{1,12}")


class ReportRunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# The one transition table: a run is claimed (again, after a worker died mid-run), then
# ends once. Every status write in SQL is guarded by it.
TRANSITIONS: Final[dict[ReportRunStatus, frozenset[ReportRunStatus]]] = {
    ReportRunStatus.RUNNING: frozenset({ReportRunStatus.QUEUED, ReportRunStatus.RUNNING}),
    ReportRunStatus.SUCCEEDED: frozenset({ReportRunStatus.RUNNING}),
    ReportRunStatus.FAILED: frozenset({ReportRunStatus.QUEUED, ReportRunStatus.RUNNING}),
}


def sources(target: ReportRunStatus) -> frozenset[ReportRunStatus]:
    """The statuses a run may move to ``target`` from."""
    return TRANSITIONS.get(target, frozenset())


class ReportWindowTooLarge(InvalidRequest):
    """The window is too large for a synchronous report; create a report run instead
    (POST /v1/report_runs)."""

    default_code = "report_window_too_large"


@dataclass(frozen=True, slots=True)
class SummaryRequest:
    """A checked payments summary request: the window as instants, the zone days are cut
    in, and the dimensions grouped by (currency always among them), in column order."""

    start: datetime
    end: datetime
    timezone: str
    group_by: tuple[Dimension, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """The report's columns, in their stable order: dimensions, then measures."""
        return (*(d.value for d in self.group_by), *MEASURES)

    def parameters(self) -> dict[str, object]:
        """What a report run stores and shows: the window as Unix seconds, so the same
        parameters always name the same window."""
        return {
            "from": int(self.start.timestamp()),
            "to": int(self.end.timestamp()),
            "timezone": self.timezone,
            "group_by": [d.value for d in self.group_by],
        }


def parse_group_by(value: str | list[str] | None) -> tuple[Dimension, ...]:
    """``day,status`` (or a list) to the dimensions in column order, currency added."""
    if value is None:
        names: list[str] = [Dimension.DAY.value]
    elif isinstance(value, str):
        names = [part.strip() for part in value.split(",") if part.strip()]
    else:
        names = list(value)
    known = {d.value for d in Dimension}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InvalidRequest(
            f"Unknown group_by {', '.join(repr(u) for u in unknown)}; "
            f"group by any of {', '.join(known_names())}.",
            param="group_by",
        )
    chosen = {Dimension(name) for name in names} | {ALWAYS_GROUPED}
    return tuple(d for d in Dimension if d in chosen)


def known_names() -> list[str]:
    return [d.value for d in Dimension]


def parse_moment(value: str | int, zone: tzinfo, param: str) -> datetime:
    """Unix seconds, or an ISO date meaning its first instant in ``zone``."""
    text = str(value).strip()
    if _UNIX.fullmatch(text):
        moment = datetime.fromtimestamp(int(text), UTC)
    elif _DATE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise _bad_moment(param) from None
        moment = day_start(day, zone)
    else:
        raise _bad_moment(param)
    if not EARLIEST <= moment <= LATEST:
        raise InvalidRequest(f"{param} must be between 2000-01-01 and 2100-01-01.", param=param)
    return moment


def day_start(day: date, zone: tzinfo) -> datetime:
    """The first instant whose date in ``zone`` is ``day``. A midnight skipped by a DST
    change resolves (``fold=0``) to the instant the clocks jumped at."""
    return datetime.combine(day, time.min, zone).astimezone(UTC)


def _bad_moment(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"{param} must be Unix seconds or a date (YYYY-MM-DD) in the report's timezone.",
        param=param,
    )


def check_window(start: datetime, end: datetime, *, synchronous: bool) -> None:
    """``from`` before ``to``, and no longer than the synchronous (or run) limit."""
    if start >= end:
        raise InvalidRequest("from must be earlier than to.", param="from")
    limit = SYNC_MAX_DAYS if synchronous else RUN_MAX_DAYS
    if end - start > timedelta(days=limit):
        if synchronous:
            raise ReportWindowTooLarge(
                f"A synchronous report covers at most {SYNC_MAX_DAYS} days; create a report "
                "run (POST /v1/report_runs) for a larger window.",
                param="to",
            )
        raise InvalidRequest(f"A report run covers at most {RUN_MAX_DAYS} days.", param="to")


def default_window(now: datetime) -> tuple[datetime, datetime]:
    """Without ``from``/``to``: the last 30 days up to now, in whole seconds (what a report
    run stores names exactly the window it read)."""
    end = now.replace(microsecond=0)
    return end - timedelta(days=DEFAULT_DAYS), end
