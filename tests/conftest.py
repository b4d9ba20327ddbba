"""Shared fixtures: a real PostgreSQL database migrated once per session, the app over an
in-process ASGI transport, and a fresh merchant per test (tenant isolation keeps tests
independent without truncating tables)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import hypothesis
import pytest

from paygrid.app import create_app
from paygrid.bootstrap import build_deps
from paygrid.config import Settings
from paygrid.db import engine
from paygrid.db import events as events_db
from paygrid.db.embedded import EmbeddedPostgres, socket_url
from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant, create_merchant
from paygrid.webhooks.delivery import close_sessions

pytest_plugins = ["tests.fakes.plugin"]

# Property tests run in the same process as the whole suite: a garbage collection over its
# heap or a loaded CI machine can hold one example past Hypothesis's 200 ms deadline, which
# fails the test as flaky. What they test is never timing, so no deadline, for every one.
hypothesis.settings.register_profile("paygrid", deadline=None)
hypothesis.settings.load_profile("paygrid")

ROOT = Path(__file__).resolve().parent.parent
TEST_BASE_URL = "http://testserver"
# Webhook receivers in the tests listen on loopback, which the SSRF guard admits only for
# allow-listed hosts.
LOCAL_WEBHOOK_HOSTS = "127.0.0.1"
# Set by ``python -m tests.pgbouncer``: PAYGRID_TEST_DATABASE_URL is then a PgBouncer in
# transaction mode, and this its server, for what needs a session (CREATE DATABASE,
# migrations); the pools go through PgBouncer, configured as PAYGRID_DATABASE_POOLER says.
DIRECT_URL = os.environ.get("PAYGRID_TEST_DATABASE_DIRECT_URL")


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """An admin URL: PAYGRID_TEST_DATABASE_URL, or an embedded pgserver under .paygrid/."""
    configured = os.environ.get("PAYGRID_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    embedded = EmbeddedPostgres(ROOT / ".paygrid" / "test")
    url = embedded.start("postgres")
    yield url
    embedded.release()


def run_admin_sql(server_url: str, sql: str) -> None:
    """Run one statement (CREATE/DROP DATABASE) on the server, outside any event loop."""

    async def admin() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin())


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """An empty database that is dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    run_admin_sql(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(server_url, name)
    finally:
        run_admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this session, migrated from empty to head."""
    with scratch_database(DIRECT_URL or server_url, "paygrid_test") as url:
        engine.upgrade(url)
        yield url if DIRECT_URL is None else _with_database(server_url, urlsplit(url).path[1:])


def _with_database(url: str, name: str) -> str:
    if "?host=" in url and url.startswith("postgresql://postgres@/"):
        return socket_url(url.split("?host=", 1)[1], name)
    head, _, tail = url.rpartition("/")
    query = ""
    if "?" in tail:
        query = "?" + tail.split("?", 1)[1]
    return f"{head}/{name}{query}"


POOL_CLOSE_SECONDS = 30.0


async def close_or_fail(pool: asyncpg.Pool, name: str) -> None:
    """Close a session pool. A connection still held at the end of the session (a task some
    test left running) would make ``close`` wait forever and hang the run: name the tasks
    still pending, terminate the pool and fail instead."""
    try:
        await asyncio.wait_for(pool.close(), POOL_CLOSE_SECONDS)
    except TimeoutError:
        pending = [
            task.get_coro() for task in asyncio.all_tasks() if task is not asyncio.current_task()
        ]
        pool.terminate()
        pytest.fail(f"the {name} pool still had a connection in use; pending tasks: {pending}")


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await engine.create_pool(database_url, 60, pooler=DIRECT_URL is not None)
    yield created
    await close_or_fail(created, "main")


@pytest.fixture(scope="session")
async def bookkeeping_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The asynchronous-commit pool, configured as the app configures it."""
    created = await engine.create_pool(
        database_url, 20, durable=False, pooler=DIRECT_URL is not None
    )
    yield created
    await close_or_fail(created, "bookkeeping")


@pytest.fixture(scope="session", autouse=True)
async def close_webhook_sessions() -> AsyncIterator[None]:
    """Webhook delivery keeps one HTTP session per event loop; close the session loop's."""
    yield
    await close_sessions()


@pytest.fixture(scope="session")
def settings() -> Settings:
    # The suite bursts from one key, one customer and one IP; test_rate_limits covers the limits.
    unlimited = "1000000/second"
    return Settings(
        public_url=TEST_BASE_URL,
        log_level="INFO",
        rate_limit_per_key=unlimited,
        rate_limit_per_ip=unlimited,
        rate_limit_payments_per_customer=unlimited,
        webhook_allowed_hosts=LOCAL_WEBHOOK_HOSTS,
        # Renewal invoices finalized at once; test_subscription_gaps sets the real delay.
        invoice_finalize_delay_seconds=0,
    )


@pytest.fixture
async def deps(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, settings: Settings
) -> AsyncIterator[Deps]:
    """Fresh dependencies per test, so a test may reconfigure its simulator. The provider
    connections a test opened are closed after it."""
    built = build_deps(pool, settings, bookkeeping_pool=bookkeeping_pool)
    yield built
    await built.connectors.aclose()


@pytest.fixture
async def client(deps: Deps, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, deps=deps)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
        yield http


@pytest.fixture
async def merchant(pool: asyncpg.Pool) -> NewMerchant:
    return await create_merchant(pool, f"Test merchant {uuid.uuid4().hex[:6]}")


@pytest.fixture
async def other_merchant(pool: asyncpg.Pool) -> NewMerchant:
    return await create_merchant(pool, f"Other merchant {uuid.uuid4().hex[:6]}")


def auth(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


class Api:
    """A small client bound to one API key."""

    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http = http
        self.key = key

    async def post(
        self, path: str, body: dict[str, Any] | None = None, **headers: str
    ) -> httpx.Response:
        return await self.http.post(path, json=body or {}, headers=auth(self.key, **headers))

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=auth(self.key))

    async def delete(self, path: str) -> httpx.Response:
        return await self.http.delete(path, headers=auth(self.key))


@pytest.fixture
def api(client: httpx.AsyncClient, merchant: NewMerchant) -> Api:
    """The test merchant's secret test key."""
    return Api(client, merchant.key("secret", livemode=False))


TABLES = (
    "payments",
    "customers",
    "payment_methods",
    "refunds",
    "events",
    "idempotency_keys",
    "connector_accounts",
    "routing_rules",
)
ERROR_FIELDS = {"type", "code", "message", "param", "request_id", "doc_url"}


async def row_counts(pool: asyncpg.Pool, merchant_id: str) -> dict[str, int]:
    """Rows a merchant owns in each table: tests use it to prove nothing was written."""
    return {
        table: await pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE merchant_id = $1",  # noqa: S608 - constant names
            merchant_id,
        )
        for table in TABLES
    }


CARD = {"exp_month": 12, "exp_year": 2034, "cvc": "123"}


def card(number: str, **overrides: Any) -> dict[str, Any]:
    return {"type": "card", "card": {"number": number, **CARD, **overrides}}


SUCCESS_CARD = "4242424242424242"


def confirmed_payment(
    payment_method: str = "pm_card_visa", amount: int = 1000, currency: str = "USD", **fields: Any
) -> dict[str, Any]:
    """The body of a create-and-confirm payment request."""
    return {
        "amount": amount,
        "currency": currency,
        "confirm": True,
        "payment_method": payment_method,
        **fields,
    }


async def write_rolled_back_event(pool: asyncpg.Pool, merchant_id: str) -> str:
    """Write an event in a transaction that then rolls back; returns the id it would have had."""
    written: list[str] = []
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            written.append(
                await events_db.insert_event(
                    conn,
                    merchant_id=merchant_id,
                    livemode=False,
                    event_type="payment.succeeded",
                    object_id="pay_rolled_back",
                    snapshot={"id": "pay_rolled_back"},
                )
            )
            raise RuntimeError("the change failed")
    return written[0]
