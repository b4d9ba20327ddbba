"""Where time comes from. Every business decision that depends on time (expiry, retry and
sync schedules, leases, janitor and rate-limit windows, audit timestamps) reads it from a
``Clock`` chosen at start-up, so tests, and later test clocks for subscriptions, can move it.

This is the only module allowed to read the wall clock (ruff's banned-api rule, TID251,
forbids ``datetime.now``, ``datetime.utcnow``, ``time.time``, ``time.time_ns`` and
``date.today`` elsewhere).
Latency measurements use ``time.perf_counter`` and are not the clock's business.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol


class Clock(Protocol):
    """The current time, and a way to wait for it to pass."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never go backwards, for durations (circuit
        breakers, back-off windows)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Final = SystemClock()


class FrozenClock:
    """A clock stopped at ``at``: a test clock's time, for what runs on it (a customer's
    billing, in API requests and in the worker's advance). Durations and waits are still
    ``base``'s, so leases, timeouts and back-off keep real time."""

    def __init__(self, at: datetime, base: Clock = SYSTEM_CLOCK) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at.astimezone(UTC)
        self._base = base

    def now(self) -> datetime:
        return self._at

    def monotonic(self) -> float:
        return self._base.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self._base.sleep(seconds)


def wall_milliseconds() -> int:
    """Milliseconds since the epoch on the machine's clock, whatever clock is injected: the
    time part of object ids (``paygrid.ids``), which order objects as they were really
    made."""
    return time.time_ns() // 1_000_000


class FakeClock:
    """A clock that moves only when told to, for tests.

    It starts at ``start`` (by default the real time at creation, so rows the database
    stamps with its own ``now()`` sit close to it) and stays there until ``advance`` or
    ``set`` moves it. ``sleep`` never waits in real time: it returns as soon as the test has
    moved the clock past its end, so a worker's heartbeat, poll and retry waits happen
    exactly when the test says. (A sleep that moved the clock itself would let a worker's
    idle loop race time ahead while a job awaits real I/O, and expire its lease.)
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime.now(UTC)
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._monotonic = 0.0
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, delta: timedelta | float) -> datetime:
        """Move the clock forward by ``delta`` (a timedelta or seconds); returns the new now."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("a clock does not go backwards; use set() to jump")
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds
        self._wake_sleepers()
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (forwards or backwards; monotonic time moves only forwards)."""
        if when.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        when = when.astimezone(UTC)
        self._monotonic += max(0.0, (when - self._now).total_seconds())
        self._now = when
        self._wake_sleepers()

    def sleep(self, seconds: float) -> Coroutine[Any, Any, None]:
        """Return once the clock has been moved ``seconds`` past its time at this call (at
        once, after one turn of the event loop, when it already has been). The end is fixed
        when ``sleep`` is called, not when the coroutine first runs, so a test that moves the
        clock in between still wakes it."""
        end = self._now + timedelta(seconds=max(0.0, seconds))
        if end <= self._now:
            return asyncio.sleep(0)
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((end, woken))
        return self._until(woken)

    async def _until(self, woken: asyncio.Future[None]) -> None:
        try:
            await woken
        finally:
            woken.cancel()  # a cancelled sleep: _wake_sleepers forgets it

    def _wake_sleepers(self) -> None:
        for end, woken in self._sleepers:
            if end <= self._now and not woken.done():
                woken.set_result(None)
        self._sleepers = [(end, woken) for end, woken in self._sleepers if not woken.done()]
