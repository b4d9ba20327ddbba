"""The fake clock tests move instead of sleeping: its sleeps end when the test moves it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from paygrid.clock import SYSTEM_CLOCK, FakeClock, FrozenClock

START = datetime(2030, 1, 1, tzinfo=UTC)


async def test_a_sleep_ends_only_once_the_clock_has_moved_past_it() -> None:
    clock = FakeClock(START)
    sleeping = asyncio.ensure_future(clock.sleep(10))
    await asyncio.sleep(0)
    clock.advance(9)
    await asyncio.sleep(0)
    assert not sleeping.done()
    clock.advance(1)
    await asyncio.wait_for(sleeping, 1)
    assert clock.now() == START + timedelta(seconds=10)  # sleeping never moves the clock


async def test_a_sleep_is_measured_from_its_call_not_from_its_first_step() -> None:
    """A worker computes its wait, then yields: a move in between must still wake it."""
    clock = FakeClock(START)
    sleeping = asyncio.ensure_future(clock.sleep(5))  # not started yet
    clock.advance(5)
    await asyncio.wait_for(sleeping, 1)


async def test_set_wakes_the_sleeps_it_jumps_past() -> None:
    clock = FakeClock(START)
    short = asyncio.ensure_future(clock.sleep(60))
    long = asyncio.ensure_future(clock.sleep(3600))
    clock.set(START + timedelta(minutes=30))
    await asyncio.wait_for(short, 1)
    assert not long.done()
    long.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long


async def test_a_sleep_of_nothing_returns_at_once() -> None:
    clock = FakeClock(START)
    await asyncio.wait_for(clock.sleep(0), 1)
    await asyncio.wait_for(clock.sleep(-3), 1)
    assert clock.now() == START


async def test_the_system_clock_sleeps_in_real_time() -> None:
    before = SYSTEM_CLOCK.monotonic()
    await SYSTEM_CLOCK.sleep(0.01)
    assert SYSTEM_CLOCK.monotonic() - before >= 0.01


async def test_a_frozen_clock_stays_at_its_time_and_waits_on_its_base() -> None:
    """A test clock's time: ``now`` never moves, durations and sleeps are the base's."""
    base = FakeClock(START)
    frozen = FrozenClock(datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC), base)
    sleeping = asyncio.ensure_future(frozen.sleep(5))
    await asyncio.sleep(0)
    base.advance(5)
    await asyncio.wait_for(sleeping, 1)
    assert frozen.now() == datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert frozen.monotonic() == base.monotonic() == 5.0
    with pytest.raises(ValueError, match="aware"):
        FrozenClock(datetime(2001, 2, 3))
