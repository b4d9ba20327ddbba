"""What a delivery attempt's answer means, as a pure decision: done, try again when, or
give up. ``Retry-After`` on 429 and 503 is honoured; 410 Gone disables the endpoint."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Final

MAX_RETRY_AFTER: Final = timedelta(hours=24)
JITTER: Final = 0.1  # +/-10% so a burst of failures does not retry in lockstep


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "pending"
    FAILED = "failed"  # dead-lettered: the schedule is used up, or the endpoint said 410


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    next_attempt_at: datetime | None = None
    disable_endpoint: bool = False


def decide(
    status_code: int | None,
    retry_after: str | None,
    attempt: int,
    schedule: list[int],
    now: datetime,
    rng: random.Random | None = None,
) -> Decision:
    """Decide after attempt number ``attempt`` (from 1). ``schedule[n]`` is the delay before
    attempt ``n + 1``; attempts beyond the schedule are not made."""
    if status_code is not None and 200 <= status_code < 300:
        return Decision(Outcome.SUCCEEDED)
    if status_code == 410:
        return Decision(Outcome.FAILED, disable_endpoint=True)
    if attempt >= len(schedule):
        return Decision(Outcome.FAILED)
    delay = timedelta(seconds=schedule[attempt])
    delay *= 1 + (rng or random).uniform(-JITTER, JITTER)
    if status_code in (429, 503) and retry_after:
        asked = parse_retry_after(retry_after, now)
        if asked is not None:
            delay = max(delay, min(asked, MAX_RETRY_AFTER))
    return Decision(Outcome.RETRY, next_attempt_at=now + delay)


def parse_retry_after(value: str, now: datetime) -> timedelta | None:
    """``Retry-After`` as seconds or as an HTTP date; ``None`` when unreadable."""
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when - now, timedelta(0))
