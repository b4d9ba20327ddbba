"""A reconciliation run's states (one transition table) and when the daily run is due.
Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class RunTrigger(StrEnum):
    API = "api"
    SCHEDULE = "schedule"
    CLI = "cli"


# The one transition table of a run.
RUN_TRANSITIONS: Final[Mapping[RunStatus, frozenset[RunStatus]]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.FAILED}),
    RunStatus.RUNNING: frozenset({RunStatus.COMPLETED, RunStatus.FAILED}),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.FAILED: frozenset(),
}


def sources_of(target: RunStatus) -> frozenset[RunStatus]:
    """The statuses a run may move to ``target`` from (for the guarded UPDATE)."""
    return frozenset(s for s, targets in RUN_TRANSITIONS.items() if target in targets)


def daily_window(now: datetime, timezone: str, at: time) -> tuple[datetime, datetime]:
    """The next daily run after ``now``: due at ``at`` local time in ``timezone`` (an IANA
    name; an unknown one is UTC), covering the 24 local hours before it. In UTC."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = now.astimezone(zone)
    due = datetime.combine(local.date(), at, tzinfo=zone)
    if due <= local:
        due = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=zone)
    start = datetime.combine(due.date() - timedelta(days=1), at, tzinfo=zone)
    return start.astimezone(UTC), due.astimezone(UTC)
