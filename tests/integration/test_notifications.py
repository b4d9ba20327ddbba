"""The process's one LISTEN connection (``paygrid.db.listener.Notifications``): every
subscriber's channels on one connection, each notification to its channel's subscribers,
LISTEN again on a new connection when it dies, and nothing left listening once stopped.

Killing the database server itself is ``test_database_outage``'s; here the hub's backend is
terminated, which looks the same to the client and takes milliseconds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from paygrid.db import engine
from paygrid.db.listener import Notifications
from paygrid.lookup_cache import Lookups
from paygrid.services import lookup_invalidation
from tests.integration.worker_harness import eventually

HEARD_SECONDS = 10.0  # milliseconds normally; a loaded machine is slow


@pytest.fixture
async def small_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of its own, so the connections the hub holds can be counted."""
    pool = await engine.create_pool(database_url, 3)
    try:
        yield pool
    finally:
        await pool.close()


def _channel() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


class Heard:
    """The payloads a subscriber was given, and how often it was told it listens again."""

    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.relistened = 0

    def notify(self, payload: str) -> None:
        self.payloads.append(payload)

    def listening(self) -> None:
        self.relistened += 1


async def _until(condition: Callable[[], bool]) -> None:
    async def holds() -> bool:
        return condition()

    await eventually(holds, deadline=HEARD_SECONDS)


def _in_use(pool: asyncpg.Pool) -> int:
    return pool.get_size() - pool.get_idle_size()


async def test_every_channel_is_heard_on_one_connection(
    small_pool: asyncpg.Pool, pool: asyncpg.Pool
) -> None:
    jobs, events, other = _channel(), _channel(), _channel()
    hub = Notifications(small_pool)
    await hub.start()
    first, second, third = Heard(), Heard(), Heard()
    try:
        await hub.subscribe(jobs, first.notify)
        await hub.subscribe(events, second.notify)
        await hub.subscribe(jobs, third.notify)  # a second subscriber of the same channel
        assert _in_use(small_pool) == 1
        await pool.execute("SELECT pg_notify($1, 'a'), pg_notify($2, 'b')", jobs, events)
        await pool.execute("SELECT pg_notify($1, 'c')", other)
        await _until(lambda: bool(first.payloads and second.payloads and third.payloads))
        assert (first.payloads, second.payloads, third.payloads) == (["a"], ["b"], ["a"])
    finally:
        await hub.stop()
    assert _in_use(small_pool) == 0


async def test_a_stopped_subscription_hears_nothing_and_the_others_still_do(
    small_pool: asyncpg.Pool, pool: asyncpg.Pool
) -> None:
    channel = _channel()
    hub = Notifications(small_pool)
    await hub.start()
    kept, dropped = Heard(), Heard()
    try:
        await hub.subscribe(channel, kept.notify)
        leaving = await hub.subscribe(channel, dropped.notify)
        await leaving.stop()
        await leaving.stop()  # twice is harmless
        assert not leaving.listening
        await pool.execute("SELECT pg_notify($1, 'x')", channel)
        await _until(lambda: bool(kept.payloads))
        await asyncio.sleep(0.1)
        assert (kept.payloads, dropped.payloads) == (["x"], [])
    finally:
        await hub.stop()


async def test_nothing_listens_on_the_connection_once_the_hub_is_stopped(
    database_url: str,
) -> None:
    # One connection in the pool: the one the hub held is the one lent out next.
    single = await asyncpg.create_pool(database_url, min_size=1, max_size=1, reset=None)
    assert single is not None
    try:
        hub = Notifications(single)
        await hub.start()
        await hub.subscribe(_channel(), Heard().notify)
        await hub.subscribe(_channel(), Heard().notify)
        await hub.stop()
        assert await single.fetch("SELECT pg_listening_channels()") == []
    finally:
        await single.close()


async def test_a_subscription_made_before_start_listens_once_started(
    small_pool: asyncpg.Pool, pool: asyncpg.Pool
) -> None:
    channel = _channel()
    hub = Notifications(small_pool)
    heard = Heard()
    subscription = await hub.subscribe(channel, heard.notify, on_listening=heard.listening)
    assert not subscription.listening
    await hub.start()
    try:
        assert subscription.listening and heard.relistened == 1
        await pool.execute("SELECT pg_notify($1, 'x')", channel)
        await _until(lambda: heard.payloads == ["x"])
    finally:
        await hub.stop()
    assert not subscription.listening


async def _hub_backend(pool: asyncpg.Pool, channel: str) -> int:
    """The backend whose last statement LISTENed on ``channel``."""
    pid = await pool.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN \"' || $1 || '\"'", channel
    )
    assert isinstance(pid, int)
    return pid


async def test_every_subscriber_listens_again_after_the_connection_dies(
    small_pool: asyncpg.Pool, pool: asyncpg.Pool
) -> None:
    jobs, lookups_channel = _channel(), _channel()
    hub = Notifications(small_pool, owner="test")
    await hub.start()
    jobs_heard, lookups_heard = Heard(), Heard()
    lookups = Lookups(ttl=3600)
    try:
        await hub.subscribe(jobs, jobs_heard.notify, on_listening=jobs_heard.listening)
        caches = await lookup_invalidation.listen(lookups, hub)
        await hub.subscribe(
            lookups_channel, lookups_heard.notify, on_listening=lookups_heard.listening
        )
        cache = lookups.cache("topic")
        cache.put("key", "value", cache.generation)
        assert caches.listening and cache.get("key") == "value"

        killed = await _hub_backend(pool, lookups_channel)
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", killed)
        async with asyncio.timeout(HEARD_SECONDS):
            # Down only until the reconnect: look at every turn of the loop. No event says
            # so, and the hub adds none for a test.
            while hub.listening:  # noqa: ASYNC110
                await asyncio.sleep(0)
        assert not caches.listening
        assert cache.get("key") is None  # a change now would go unheard

        await _until(lambda: hub.listening)
        assert (jobs_heard.relistened, lookups_heard.relistened) == (1, 1)
        assert await _hub_backend(pool, lookups_channel) != killed
        assert caches.listening and cache.get("key") is None  # started afresh
        cache.put("key", "again", cache.generation)
        assert cache.get("key") == "again"
        await pool.execute("SELECT pg_notify($1, 'j'), pg_notify($2, 'l')", jobs, lookups_channel)
        await _until(lambda: bool(jobs_heard.payloads and lookups_heard.payloads))
        assert (jobs_heard.payloads, lookups_heard.payloads) == (["j"], ["l"])
        assert _in_use(small_pool) == 1
    finally:
        await hub.stop()
