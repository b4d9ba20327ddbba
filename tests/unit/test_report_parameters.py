"""A payments summary's parameters (domain/reports.py and services/reports/parameters.py):
windows as half-open instants cut at local midnights, dimensions in column order with the
currency always among them, and clear 400s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from paygrid.domain.errors import InvalidRequest
from paygrid.domain.reports import (
    Dimension,
    ReportRunStatus,
    ReportWindowTooLarge,
    SummaryRequest,
    check_window,
    parse_group_by,
    sources,
)
from paygrid.services.reports.parameters import summary_request

NOW = datetime(2026, 12, 7, 10, 30, 15, 123456, tzinfo=UTC)


def request(
    start: str | None = None, end: str | None = None, timezone: str | None = None
) -> SummaryRequest:
    return summary_request(
        NOW, start=start, end=end, timezone=timezone, group_by=None, synchronous=True
    )


def test_dates_mean_local_midnights_and_unix_seconds_the_same_instants() -> None:
    by_date = summary_request(
        NOW, start="2026-03-08", end="2026-03-09", timezone="America/New_York",
        group_by=None, synchronous=True,
    )  # fmt: skip
    assert by_date.start == datetime(2026, 3, 8, 5, tzinfo=UTC)
    assert by_date.end - by_date.start == timedelta(hours=23)  # the spring-forward day
    by_unix = summary_request(
        NOW, start=int(by_date.start.timestamp()), end=str(int(by_date.end.timestamp())),
        timezone="America/New_York", group_by=None, synchronous=True,
    )  # fmt: skip
    assert (by_unix.start, by_unix.end) == (by_date.start, by_date.end)
    assert by_date.parameters() == {
        "from": int(by_date.start.timestamp()),
        "to": int(by_date.end.timestamp()),
        "timezone": "America/New_York",
        "group_by": ["day", "currency"],
    }


def test_a_midnight_skipped_by_dst_starts_the_day_when_the_clocks_jump() -> None:
    # Santiago jumps from 00:00 to 01:00 on 2026-09-06: that day starts at 04:00 UTC, the
    # first instant whose local date is the 6th (what PostgreSQL's AT TIME ZONE buckets).
    checked = summary_request(
        NOW, start="2026-09-06", end="2026-09-07", timezone="America/Santiago",
        group_by=None, synchronous=True,
    )  # fmt: skip
    assert checked.start == datetime(2026, 9, 6, 4, tzinfo=UTC)
    zone = ZoneInfo("America/Santiago")
    assert checked.start.astimezone(zone).date().isoformat() == "2026-09-06"
    assert (checked.start - timedelta(seconds=1)).astimezone(zone).date().isoformat() == (
        "2026-09-05"
    )


def test_the_default_window_is_the_last_30_days_in_whole_seconds() -> None:
    checked = summary_request(
        NOW, start=None, end=None, timezone=None, group_by=None, synchronous=True
    )
    assert checked.end == NOW.replace(microsecond=0)
    assert checked.end - checked.start == timedelta(days=30)
    assert checked.timezone == "UTC"


def test_dimensions_come_in_column_order_with_the_currency() -> None:
    assert parse_group_by("connector, day") == (
        Dimension.DAY,
        Dimension.CURRENCY,
        Dimension.CONNECTOR,
    )
    assert parse_group_by([]) == (Dimension.CURRENCY,)
    assert parse_group_by(None) == (Dimension.DAY, Dimension.CURRENCY)
    with pytest.raises(InvalidRequest) as refused:
        parse_group_by("day,week")
    assert refused.value.param == "group_by" and "'week'" in refused.value.message


@pytest.mark.parametrize(
    ("given", "param"),
    [
        ({"timezone": "Not/AZone"}, "timezone"),
        ({"timezone": "/etc/localtime"}, "timezone"),
        ({"start": "2026-13-01"}, "from"),
        ({"start": "1.5"}, "from"),
        ({"end": "4102444801"}, "to"),
        ({"start": "2026-05-02", "end": "2026-05-01"}, "from"),
    ],
)
def test_bad_parameters_name_themselves(given: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        request(**given)
    assert refused.value.param == param


def test_windows_are_limited_differently_for_runs() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    check_window(start, start + timedelta(days=366), synchronous=True)
    with pytest.raises(ReportWindowTooLarge) as refused:
        check_window(start, start + timedelta(days=366, seconds=1), synchronous=True)
    assert refused.value.code == "report_window_too_large"
    check_window(start, start + timedelta(days=3660), synchronous=False)
    with pytest.raises(InvalidRequest):
        check_window(start, start + timedelta(days=3661), synchronous=False)


def test_a_run_ends_once() -> None:
    assert sources(ReportRunStatus.RUNNING) == {ReportRunStatus.QUEUED, ReportRunStatus.RUNNING}
    assert sources(ReportRunStatus.SUCCEEDED) == {ReportRunStatus.RUNNING}
    assert ReportRunStatus.SUCCEEDED not in sources(ReportRunStatus.FAILED)
    assert sources(ReportRunStatus.QUEUED) == frozenset()
