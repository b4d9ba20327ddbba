"""Retry schedules: what follows a failed attempt. Pure, so the policy is tested without a
database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delays, in seconds, before each retry. A job gets one attempt plus one per delay."""

    delays: tuple[float, ...]

    def __post_init__(self) -> None:
        if any(delay < 0 for delay in self.delays):
            raise ValueError("retry delays cannot be negative")

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def delay_after(self, attempt: int) -> float | None:
        """The delay before the attempt after ``attempt`` (counted from 1), or ``None`` when
        the schedule is used up."""
        if attempt < 1:
            raise ValueError("attempts are counted from 1")
        return self.delays[attempt - 1] if attempt <= len(self.delays) else None


DEFAULT_RETRY = RetryPolicy((10.0, 60.0, 300.0, 1800.0))
"""Five attempts over about 36 minutes."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Run the job again after ``delay_seconds``; ``next_period`` starts a periodic job's
    next run afresh instead of retrying this one."""

    delay_seconds: float
    next_period: bool


def after_failure(
    policy: RetryPolicy, attempt: int, repeat_every: timedelta | None
) -> Retry | None:
    """What follows failed attempt number ``attempt``: a retry while the schedule lasts, then
    the next period for a periodic job (which must never stop for good), else ``None``: the
    job is dead."""
    delay = policy.delay_after(attempt)
    if delay is not None:
        return Retry(delay, next_period=False)
    if repeat_every is not None:
        return Retry(repeat_every.total_seconds(), next_period=True)
    return None
