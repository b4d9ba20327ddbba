"""The read replica, proven on a real one: a primary and its streaming standby made with
``pg_basebackup -R`` (tests/integration/streaming_replica.py), the app on the primary with
the standby as its read pool (what ``PAYGRID_READ_DATABASE_URL`` builds).

Which server answered is told by the standby itself: the read pool has one connection, and
``pg_stat_activity`` on the standby shows its last statement, a list's ``SELECT`` when the
list was read there, the catch-up probe when the read went to the primary. A standby whose
replay is paused has not got a write just made: the list still shows it, so the primary
answered.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from paygrid.api.read_only import is_read_only
from paygrid.app import create_app
from paygrid.bootstrap import build_deps
from paygrid.config import Settings
from paygrid.db import engine
from paygrid.domain import scopes
from paygrid.services.merchants import create_merchant, issue_key
from tests.conftest import TEST_BASE_URL, Api, run_admin_sql
from tests.integration.streaming_replica import ReplicatedCluster, replicated_cluster

pytestmark = pytest.mark.slow

DATABASE = "paygrid"
CAUGHT_UP_WITHIN = 10.0  # seconds for the standby to replay what the primary wrote


@pytest.fixture(scope="module")
def cluster() -> Iterator[ReplicatedCluster]:
    with replicated_cluster() as made:
        run_admin_sql(made.primary.url("postgres"), f"CREATE DATABASE {DATABASE}")
        engine.upgrade(made.primary.url(DATABASE))
        yield made


@pytest.fixture
async def replica_admin(cluster: ReplicatedCluster) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(cluster.replica.url(DATABASE))
    yield conn
    if not conn.is_closed():
        await conn.close()


@pytest.fixture
async def apis(cluster: ReplicatedCluster, settings: Settings) -> AsyncIterator[tuple[Api, Api]]:
    """Two apps, as two API processes behind a load balancer: each its own ``Deps`` (its own
    view of the replica), on the same primary and the same one read connection."""
    url = cluster.primary.url(DATABASE)
    pool = await engine.create_pool(url, 4)
    bookkeeping = await engine.create_pool(url, 2, durable=False)
    read_pool = await engine.create_read_pool(cluster.replica.url(DATABASE), 1)
    both = [
        build_deps(pool, settings, bookkeeping_pool=bookkeeping, read_pool=read_pool)
        for _ in range(2)
    ]
    merchant = await create_merchant(pool, f"Replica merchant {uuid.uuid4().hex[:6]}")
    # An admin's key: it may call every read-only route (the audit log's too).
    key = await issue_key(pool, merchant.id, "secret", False, scopes=sorted(scopes.ROLES["admin"]))
    first, second = (httpx.ASGITransport(app=create_app(settings, deps=deps)) for deps in both)
    try:
        async with (
            httpx.AsyncClient(transport=first, base_url=TEST_BASE_URL) as one,
            httpx.AsyncClient(transport=second, base_url=TEST_BASE_URL) as other,
        ):
            yield Api(one, key.secret), Api(other, key.secret)
    finally:
        for deps in both:
            await deps.connectors.aclose()
        for opened in (read_pool, bookkeeping, pool):
            await opened.close()


@pytest.fixture
def api(apis: tuple[Api, Api]) -> Api:
    return apis[0]


async def replica_statement(replica_admin: asyncpg.Connection) -> str:
    """The last statement the read pool ran on the standby ('' if none). An earlier test can
    leave the pool with several connections: the newest statement of any of them."""
    found: str | None = await replica_admin.fetchval(
        "SELECT query FROM pg_stat_activity WHERE application_name LIKE 'paygrid-read[%'"
        " ORDER BY query_start DESC NULLS LAST LIMIT 1"
    )
    return found or ""


async def customer_ids(api: Api) -> set[str]:
    listed = await api.get("/v1/customers", limit=100)
    assert listed.status_code == 200, listed.text
    return {c["id"] for c in listed.json()["data"]}


async def until_listed_by_replica(api: Api, replica_admin: asyncpg.Connection) -> set[str]:
    """List customers until the standby serves the list (it replays within moments)."""
    for _ in range(int(CAUGHT_UP_WITHIN / 0.1)):
        ids = await customer_ids(api)
        if "FROM customers" in await replica_statement(replica_admin):
            return ids
        await asyncio.sleep(0.1)
    raise AssertionError("the replica never served the list")


async def new_customer(api: Api) -> str:
    created = await api.post("/v1/customers", {"email": f"{uuid.uuid4().hex[:8]}@example.com"})
    assert created.status_code == 200, created.text
    customer_id: str = created.json()["id"]
    return customer_id


async def test_reads_go_to_a_caught_up_replica_and_never_miss_the_clients_write(
    apis: tuple[Api, Api], replica_admin: asyncpg.Connection
) -> None:
    api, other_process = apis
    # A write, then at once a read: whichever server answers, the write is in it.
    first = await new_customer(api)
    assert first in await customer_ids(api)
    # Once the standby has replayed it, the list is read there.
    assert first in await until_listed_by_replica(api, replica_admin)

    # A standby that is behind is not used: with replay paused it lacks the next write...
    await replica_admin.execute("SELECT pg_wal_replay_pause()")
    try:
        second = await new_customer(api)
        assert (
            await replica_admin.fetchval("SELECT count(*) FROM customers WHERE id = $1", second)
            == 0
        )
        # ...yet the read right after the write shows it: the primary answered, and the
        # standby only saw the catch-up probe.
        assert {first, second} <= await customer_ids(api)
        assert "paygrid_replica_position" in await replica_statement(replica_admin)
        # The same through the other process, which knows nothing of the write.
        assert {first, second} <= await customer_ids(other_process)
        assert "paygrid_replica_position" in await replica_statement(replica_admin)
        summary = await api.get("/v1/reports/payments_summary")
        assert summary.status_code == 200, summary.text
        assert "paygrid_replica_position" in await replica_statement(replica_admin)
    finally:
        await replica_admin.execute("SELECT pg_wal_replay_resume()")
    # Caught up again: the standby serves, with the write.
    assert {first, second} <= await until_listed_by_replica(api, replica_admin)


async def test_every_read_only_endpoint_is_served_by_the_replica(
    api: Api, replica_admin: asyncpg.Connection
) -> None:
    """Every ``@read_only`` route answers from the standby, whose sessions are read-only:
    a marked route that wrote would fail here."""
    await new_customer(api)
    await until_listed_by_replica(api, replica_admin)
    app = create_app(Settings(public_url=TEST_BASE_URL))
    routes = [
        context.original_route
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        and is_read_only(context.original_route.endpoint)
    ]
    assert len(routes) >= 15, [r.path for r in routes]
    for route in routes:
        # Routes below an object: an id that does not exist answers 404, read on the replica.
        path = route.path.replace("{endpoint_id}", "we_missing").replace(
            "{settlement_id}", "stl_missing"
        )
        expected = 404 if "{" in route.path else 200
        for _ in range(50):  # the primary's own housekeeping WAL may put the standby behind
            answered = await api.get(path)
            assert answered.status_code == expected, (route.path, answered.text)
            statement = await replica_statement(replica_admin)
            if "paygrid_replica_position" not in statement:
                break
            await asyncio.sleep(0.05)
        assert "paygrid_replica_position" not in statement, (route.path, statement)


async def test_a_stopped_replica_leaves_reads_on_the_primary_and_readiness_degraded(
    api: Api, replica_admin: asyncpg.Connection, cluster: ReplicatedCluster
) -> None:
    first = await new_customer(api)
    await until_listed_by_replica(api, replica_admin)
    await replica_admin.close()
    cluster.replica.stop("fast")
    try:
        second = await new_customer(api)
        # The pool's connection to the standby died with it: the read falls back, no 500.
        assert {first, second} <= await customer_ids(api)
        summary = await api.get("/v1/reports/payments_summary")
        assert summary.status_code == 200, summary.text
        ready = await api.http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        assert ready.json()["read_replica"] == "degraded"
        assert {first, second} <= await customer_ids(api)
        # A process starting now starts: its read pool connects only when first used.
        await (await engine.create_read_pool(cluster.replica.url(DATABASE), 1)).close()
    finally:
        cluster.replica.start()
    # Back: readiness sees it at once, and reads go there again.
    ready = await api.http.get("/readyz")
    assert ready.json()["read_replica"] == "ok", ready.text
    replica_admin = await asyncpg.connect(cluster.replica.url(DATABASE))
    try:
        assert {first, second} <= await until_listed_by_replica(api, replica_admin)
    finally:
        await replica_admin.close()
