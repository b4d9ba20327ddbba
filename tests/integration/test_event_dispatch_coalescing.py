"""The event dispatcher wakes on each commit's NOTIFY but drains a burst of commits in one
transaction: it waits a few milliseconds after a wake-up, never more, and never misses one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from paygrid.dependencies import Deps
from paygrid.ids import new_id
from paygrid.services.merchants import NewMerchant
from paygrid.webhooks.dispatcher import COALESCE_SECONDS, EventDispatcher

NEVER_POLLS = 600.0  # so that only a NOTIFY can make it dispatch within the test


async def _commit_event(pool: asyncpg.Pool, merchant: NewMerchant) -> str:
    event_id = new_id("evt")
    await pool.execute(
        "INSERT INTO events (id, merchant_id, livemode, type, object_id, data)"
        " VALUES ($1, $2, false, 'payment.created', $1, '{}')",
        event_id,
        merchant.id,
    )
    return event_id


async def _dispatched(pool: asyncpg.Pool, ids: list[str], deadline: float) -> list[object]:
    """The dispatched_at of each event (the dispatching transaction's time), once all are."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        stamps = await pool.fetch(
            "SELECT dispatched_at FROM events WHERE id = ANY($1) AND dispatched_at IS NOT NULL",
            ids,
        )
        if len(stamps) == len(ids):
            return [r["dispatched_at"] for r in stamps]
        await asyncio.sleep(0.005)
    raise AssertionError(f"not dispatched within {deadline} s")


async def _running(deps: Deps, coalesce_seconds: float) -> AsyncIterator[None]:
    stopping = asyncio.Event()
    dispatcher = EventDispatcher(deps, poll_seconds=NEVER_POLLS, coalesce_seconds=coalesce_seconds)
    task = asyncio.create_task(dispatcher.run(stopping))
    await asyncio.sleep(0.3)  # listening
    # The backlog of earlier tests drained (it drains once it listens): a drain still
    # running would otherwise take part of a burst in a transaction of its own.
    async with asyncio.timeout(30):
        while await deps.pool.fetchval(  # noqa: ASYNC110 - polls the database: no event to wait on
            "SELECT count(*) FROM events WHERE dispatched_at IS NULL"
        ):
            await asyncio.sleep(0.01)
    yield
    stopping.set()
    await task


@pytest.fixture
async def dispatching(deps: Deps) -> AsyncIterator[None]:
    async for _ in _running(deps, COALESCE_SECONDS):
        yield


@pytest.fixture
async def slowly_dispatching(deps: Deps) -> AsyncIterator[None]:
    async for _ in _running(deps, 1.0):
        yield


async def test_each_committed_event_is_dispatched_promptly(
    dispatching: None, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    assert COALESCE_SECONDS <= 0.05
    for _ in range(3):  # one after the other: no wake-up is lost
        started = time.monotonic()
        event_id = await _commit_event(pool, merchant)
        await _dispatched(pool, [event_id], deadline=2.0)
        assert time.monotonic() - started < 2.0  # far below the poll interval


async def test_a_burst_of_commits_is_dispatched_in_one_or_two_transactions(
    slowly_dispatching: None, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    ids = await asyncio.gather(*(_commit_event(pool, merchant) for _ in range(12)))
    stamps = await _dispatched(pool, list(ids), deadline=5.0)
    # One wake-up, a 1 s wait, then one drain takes them all (a commit that lands during
    # that drain wakes it once more). Without the wait, each commit would wake a drain.
    assert len(set(stamps)) <= 2
