"""A payments summary's parameters, checked: the time zone (IANA, as ``zoneinfo`` knows it),
the window and the dimensions. Shared by the synchronous summary, report runs and the
dashboard, so the same parameters always mean the same report."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from paygrid.domain.errors import InvalidRequest
from paygrid.domain.reports import (
    SummaryRequest,
    check_window,
    default_window,
    parse_group_by,
    parse_moment,
)


@cache
def _known_zones() -> frozenset[str]:
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


def zone(name: str) -> ZoneInfo:
    """An IANA time zone by name (``Europe/Paris``, ``UTC``); a 400 for anything else."""
    if name not in _known_zones():
        raise InvalidRequest(
            f"Unknown timezone {name[:64]!r}; use an IANA name such as 'America/New_York'.",
            param="timezone",
        )
    return ZoneInfo(name)


def summary_request(
    now: datetime,
    *,
    start: str | int | None,
    end: str | int | None,
    timezone: str | None,
    group_by: str | list[str] | None,
    synchronous: bool,
) -> SummaryRequest:
    """Checked parameters. Without ``from``/``to``: the last 30 days up to ``now``."""
    name = timezone or "UTC"
    tz = zone(name)
    dimensions = parse_group_by(group_by)
    default_start, default_end = default_window(now)
    first = default_start if start is None else parse_moment(start, tz, "from")
    last = default_end if end is None else parse_moment(end, tz, "to")
    check_window(first, last, synchronous=synchronous)
    return SummaryRequest(first, last, name, dimensions)
