"""The event dispatcher wakes on each commit's NOTIFY but drains a burst of commits in one
transaction: it waits a few milliseconds after a wake-up, never more, and never misses one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from paygrid.db import webhooks as webhooks_db
from paygrid.db.executor import Executor
from paygrid.db.webhooks import UndispatchedEvent
from paygrid.dependencies import Deps
from paygrid.ids import new_id
from paygrid.services.merchants import NewMerchant
from paygrid.webhooks.dispatcher import COALESCE_SECONDS, EventDispatcher
from tests.integration.worker_harness import eventually

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


class Drains:
    """The events of each batch the dispatcher took out of the outbox: one batch is one
    dispatching transaction. Wraps the real ``claim_undispatched_events``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches: list[set[str]] = []
        claim = webhooks_db.claim_undispatched_events

        async def recorded(conn: Executor, limit: int) -> list[UndispatchedEvent]:
            events = await claim(conn, limit)
            if events:
                self.batches.append({event.id for event in events})
            return events

        monkeypatch.setattr(webhooks_db, "claim_undispatched_events", recorded)

    def holding(self, ids: list[str]) -> list[set[str]]:
        return [batch for batch in self.batches if batch & set(ids)]


async def _dispatched(pool: asyncpg.Pool, ids: list[str], deadline: float) -> None:
    """Wait until no event of ``ids`` is left in the outbox."""

    async def out_of_the_outbox() -> bool:
        left = await pool.fetchval(
            "SELECT count(*) FROM event_outbox WHERE event_id = ANY($1)", ids
        )
        return bool(left == 0)

    try:
        await eventually(out_of_the_outbox, deadline)
    except TimeoutError:
        raise AssertionError(f"not dispatched within {deadline} s") from None


async def _running(deps: Deps, coalesce_seconds: float) -> AsyncIterator[None]:
    stopping = asyncio.Event()
    dispatcher = EventDispatcher(deps, poll_seconds=NEVER_POLLS, coalesce_seconds=coalesce_seconds)
    task = asyncio.create_task(dispatcher.run(stopping))
    await asyncio.sleep(0.3)  # listening

    # The backlog of earlier tests drained (it drains once it listens): a drain still
    # running would otherwise take part of a burst in a transaction of its own.
    async def drained() -> bool:
        return not await deps.pool.fetchval("SELECT count(*) FROM event_outbox")

    await eventually(drained, 30)
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
    monkeypatch: pytest.MonkeyPatch,
    slowly_dispatching: None,
    pool: asyncpg.Pool,
    merchant: NewMerchant,
) -> None:
    drains = Drains(monkeypatch)
    ids = list(await asyncio.gather(*(_commit_event(pool, merchant) for _ in range(12))))
    await _dispatched(pool, ids, deadline=5.0)
    # One wake-up, a 1 s wait, then one drain takes them all (a commit that lands during
    # that drain wakes it once more). Without the wait, each commit would wake a drain.
    batches = drains.holding(ids)
    assert set().union(*batches) == set(ids)
    assert 1 <= len(batches) <= 2
