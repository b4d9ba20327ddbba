"""paygrid's pools (``db/inline_pool.py``) give an idle connection back without asyncpg's
shield Task, and every other release, cancellations included, as asyncpg does; and their
jsonb codec (binary format, ``db/engine.py``) reads back what it wrote.

Measured for issue 12 (2 shared cores, uvloop, min of 5 runs, CPU per
``pool.fetchval('SELECT 1')`` from 8 tasks on 8 connections): asyncpg's release 74.2 µs,
inline 60.5 µs; acquire + release alone: 22.3 µs -> 7.2 µs (asyncio: 37.2 -> 8.7 µs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import asyncpg
import pytest

from paygrid.db import engine
from paygrid.db.engine import JsonText
from paygrid.db.inline_pool import InlineReleasePool, open_pool, skip_reset
from tests.conftest import DIRECT_URL
from tests.integration.worker_harness import eventually

SIZE = 3


class Shields:
    """Counts asyncpg's releases: its ``Pool.release`` shields ``PoolConnectionHolder.release``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        shield = asyncio.shield

        def counting(awaitable: Awaitable[Any]) -> asyncio.Future[Any]:
            if getattr(awaitable, "__qualname__", "") == "PoolConnectionHolder.release":
                self.calls += 1
            return shield(awaitable)

        monkeypatch.setattr(asyncio, "shield", counting)


@pytest.fixture
def shields(monkeypatch: pytest.MonkeyPatch) -> Shields:
    return Shields(monkeypatch)


@pytest.fixture
async def tasks_created() -> AsyncIterator[list[str]]:
    """The coroutines of the Tasks the event loop creates meanwhile, by name."""
    loop = asyncio.get_running_loop()
    created: list[str] = []
    factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        created.append(getattr(coro, "__qualname__", repr(coro)))
        if factory is not None:
            return factory(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        yield created
    finally:
        loop.set_task_factory(factory)


@pytest.fixture
async def small_pool(database_url: str) -> AsyncIterator[InlineReleasePool]:
    pool = await engine.create_pool(database_url, SIZE, pooler=DIRECT_URL is not None)
    try:
        yield pool
    finally:
        await asyncio.wait_for(pool.close(), 10)


async def _all_connections_work(pool: asyncpg.Pool) -> None:
    """The pool hands out every one of its connections, each of them working."""
    held = [await pool.acquire(timeout=5) for _ in range(pool.get_max_size())]
    try:
        assert [await conn.fetchval("SELECT 1") for conn in held] == [1] * len(held)
    finally:
        for conn in held:
            await pool.release(conn)
    assert pool.get_idle_size() == pool.get_size()


def test_checked_against_this_asyncpg() -> None:
    """``InlineReleasePool`` relies on asyncpg 0.32.0's internals: re-read them (its module
    docstring lists which) before changing this version."""
    assert asyncpg.__version__ == "0.32.0"


async def test_built_as_create_pool_builds_it(database_url: str) -> None:
    """Same constructor arguments, and so the same pool, as ``asyncpg.create_pool``."""
    kwargs = engine.pool_kwargs(2)
    ours = await open_pool(database_url, **kwargs)
    stock = await asyncpg.create_pool(database_url, **kwargs)
    assert type(ours) is InlineReleasePool and type(stock) is asyncpg.Pool
    try:
        for name in asyncpg.Pool.__slots__:
            if name in ("_queue", "_loop", "_holders", "_maintenance_task"):
                continue
            assert getattr(ours, name) == getattr(stock, name), name
        holders: list[Any] = [getattr(pool, "_holders")[0] for pool in (ours, stock)]  # noqa: B009
        assert holders[0]._max_inactive_time == holders[1]._max_inactive_time == 300
    finally:
        await ours.close()
        await stock.close()


async def test_idle_release_makes_no_task(
    small_pool: InlineReleasePool, database_url: str, shields: Shields, tasks_created: list[str]
) -> None:
    stranger = await engine.create_pool(database_url, 1, pooler=DIRECT_URL is not None)
    tasks_created.clear()  # this test's own
    for _ in range(20):
        assert await small_pool.fetchval("SELECT 1") == 1
    async with small_pool.acquire() as conn:
        assert await conn.fetchval("SELECT 2") == 2
    conn = await small_pool.acquire()
    await small_pool.release(conn)
    assert shields.calls == 0
    assert tasks_created == []
    assert small_pool.get_idle_size() == small_pool.get_size()
    with pytest.raises(asyncpg.InterfaceError, match="released back to the pool"):
        await conn.fetchval("SELECT 1")
    await small_pool.release(conn)  # released already: nothing happens, as with asyncpg's
    async with small_pool.acquire() as conn:
        with pytest.raises(asyncpg.InterfaceError, match="not a member of this pool"):
            await stranger.release(conn)
    await _all_connections_work(small_pool)
    await stranger.close()


async def test_release_in_an_open_transaction_rolls_back(
    database_url: str, shields: Shields
) -> None:
    pool = await engine.create_pool(database_url, 1, pooler=DIRECT_URL is not None)
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
    try:
        conn = await pool.acquire()
        await conn.execute("BEGIN")
        await conn.execute("CREATE TEMP TABLE rolled_back_probe (id int)")
        await pool.release(conn)
        assert shields.calls == 1  # asyncpg's release, which sends the ROLLBACK
        async with pool.acquire() as again:
            assert not again.is_in_transaction()
            assert await again.fetchval("SELECT to_regclass('pg_temp.rolled_back_probe')") is None
            await again.transaction().start()  # asyncpg's Transaction, never committed
            await again.execute("CREATE TEMP TABLE rolled_back_probe (id int)")
        assert shields.calls == 2
        async with pool.acquire() as again:
            assert not again.is_in_transaction()
            assert await again.fetchval("SELECT to_regclass('pg_temp.rolled_back_probe')") is None
        assert pool.get_idle_size() == pool.get_size() == 1
    finally:
        loop.set_exception_handler(handler)
        await pool.close()
    assert any("active transaction" in message for message in reported)


async def test_other_releases_are_asyncpg_s(database_url: str, shields: Shields) -> None:
    """With a timeout, at ``max_queries``, after ``expire_connections`` or with another
    ``reset``: asyncpg's release."""
    # Behind PgBouncer (``python -m tests.pgbouncer``): no named prepared statements.
    cache = {} if DIRECT_URL is None else {"statement_cache_size": 0}
    pool = await open_pool(
        database_url, min_size=1, max_size=1, max_queries=2, reset=skip_reset, **cache
    )

    async def used() -> object:
        """Which client connection a query ran on."""
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
            return conn.get_settings()

    try:
        first = await used()
        assert shields.calls == 0
        assert await used() is first
        assert shields.calls == 1  # the second query: closed and replaced
        assert await used() is not first
        conn = await pool.acquire()
        await pool.release(conn, timeout=5)
        assert shields.calls == 2
        conn = await pool.acquire(timeout=5)
        await pool.release(conn)
        assert shields.calls == 3
        conn = await pool.acquire()
        await pool.expire_connections()
        await pool.release(conn)
        assert shields.calls == 4
        await _all_connections_work(pool)
    finally:
        await pool.close()
    default_reset = await open_pool(database_url, min_size=1, max_size=1, **cache)
    try:
        calls = shields.calls
        await default_reset.fetchval("SELECT 1")  # RESET ALL & co. on release
        assert shields.calls == calls + 1
    finally:
        await default_reset.close()


async def test_cancelled_mid_query_gives_the_connection_back(
    small_pool: InlineReleasePool, shields: Shields
) -> None:
    """The release waits for the cancellation (asyncpg's, shielded) and the connection
    comes back working: the pool still hands out all of its connections."""

    async def all_held() -> bool:
        return small_pool.get_idle_size() == 0

    for _ in range(2):
        tasks = [
            asyncio.create_task(small_pool.fetchval("SELECT pg_sleep(5)")) for _ in range(SIZE)
        ]
        await eventually(all_held)
        await asyncio.sleep(0.1)  # and their queries run on the server
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(result, asyncio.CancelledError) for result in results)
        assert shields.calls == SIZE  # a cancellation in flight: asyncpg's release waits for it
        await _all_connections_work(small_pool)
        assert small_pool.get_size() == SIZE
        shields.calls = 0


async def test_cancelled_while_holding_an_idle_connection(
    small_pool: InlineReleasePool, shields: Shields
) -> None:
    """Cancelled while holding a connection between queries: given back inline, as the
    cancellation unwinds the task, and the pool has it again."""
    holding = asyncio.Event()

    async def hold() -> None:
        async with small_pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
            holding.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(hold())
    async with asyncio.timeout(5):
        await holding.wait()
    assert small_pool.get_idle_size() == small_pool.get_size() - 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert shields.calls == 0
    assert small_pool.get_idle_size() == small_pool.get_size()
    await _all_connections_work(small_pool)


async def test_closed_connections_are_given_back(
    small_pool: InlineReleasePool, database_url: str
) -> None:
    conn = await small_pool.acquire()
    conn.terminate()
    await small_pool.release(conn)
    conn = await small_pool.acquire()
    await conn.close()
    await small_pool.release(conn)
    if DIRECT_URL is None:  # behind PgBouncer the backend is PgBouncer's to keep
        conn = await small_pool.acquire()
        killer = await asyncpg.connect(database_url)
        try:
            await killer.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
        finally:
            await killer.close()

        async def gone() -> bool:
            try:
                return bool(conn.is_closed())
            except asyncpg.InterfaceError:  # given back to the pool already, by asyncpg
                return True

        await eventually(gone)
        await small_pool.release(conn)
    await _all_connections_work(small_pool)


# No list: asyncpg takes a list in a list for another dimension of a jsonb[] parameter.
JSON_VALUES: list[Any] = [
    {"object": {"id": "pay_1", "amount": 2000, "metadata": {"é": "ü 😀"}, "none": None}},
    {"list": [1, 2.5, "three", True, None, {"a": []}]},
    "a JSON string, not JSON text: {}",
    12345678901234567,
    {},
]


async def test_jsonb_round_trips(small_pool: InlineReleasePool) -> None:
    for value in [*JSON_VALUES, [1, "two", None]]:
        assert await small_pool.fetchval("SELECT $1::jsonb", value) == value
    assert await small_pool.fetchval("SELECT $1::jsonb[]", JSON_VALUES) == JSON_VALUES
    assert await small_pool.fetchval("SELECT $1::jsonb", None) is None
    rows = await small_pool.fetch(
        "SELECT d FROM unnest($1::jsonb[]) WITH ORDINALITY AS t(d, n) ORDER BY n", JSON_VALUES
    )
    assert [row["d"] for row in rows] == JSON_VALUES
    # What PostgreSQL stored is the JSON, as its own text shows.
    assert (
        await small_pool.fetchval("SELECT $1::jsonb::text", {"b": [1, "é"], "a": None})
        == '{"a": null, "b": [1, "é"]}'
    )
    assert await small_pool.fetchval("SELECT $1::jsonb::text", "x") == '"x"'


async def test_json_text_is_sent_as_it_is(small_pool: InlineReleasePool) -> None:
    serialised = JsonText('{"object":{"id":"pay_1","amount":2000,"note":"é 😀"}}')
    assert await small_pool.fetchval("SELECT $1::jsonb ->> 'object'", serialised) == (
        '{"id": "pay_1", "note": "é 😀", "amount": 2000}'
    )
    assert await small_pool.fetchval("SELECT $1::jsonb", serialised) == {
        "object": {"id": "pay_1", "amount": 2000, "note": "é 😀"}
    }
    assert await small_pool.fetchval("SELECT $1::jsonb[]", [serialised, {"a": 1}]) == [
        {"object": {"id": "pay_1", "amount": 2000, "note": "é 😀"}},
        {"a": 1},
    ]
    with pytest.raises(asyncpg.InvalidTextRepresentationError):
        await small_pool.fetchval("SELECT $1::jsonb", JsonText("{not json"))
