"""Business times come from the injected clock, not the database's ``now()``: idempotency
key lifetimes and locks, checkout session expiry and completion, deletions and detachments,
webhook delivery schedules, attempt completion and refund bookkeeping, provider-event
retention. Every test moves a FakeClock (often far from the database's time, so a statement
still stamped with ``now()`` would fail it) and never rewrites a row's timestamps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest

from paygrid.api.idempotency import request_fingerprint
from paygrid.bootstrap import build_deps
from paygrid.clock import FakeClock
from paygrid.config import Settings
from paygrid.db import jobs as jobs_db
from paygrid.db import provider_events as inbox_db
from paygrid.dependencies import Deps
from paygrid.domain.provider_events import ProviderEventStatus
from paygrid.ids import new_id
from paygrid.services import idempotency_keys
from paygrid.services.checkout_sessions import DEFAULT_LIFETIME
from paygrid.services.dashboard_users import create_user
from paygrid.services.merchants import NewMerchant, issue_key
from paygrid.webhooks.delivery import QUEUE as WEBHOOKS_QUEUE
from tests.conftest import SUCCESS_CARD, Api, card
from tests.integration.test_checkout import new_session, pay_with
from tests.integration.test_dashboard import PASSWORD, sign_in
from tests.integration.test_payment_method_ownership import customer, saved_card

# Years away from the database's time: a business time taken from ``now()`` shows at once.
EPOCH = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
PURCHASE = {
    "amount": 2500,
    "currency": "USD",
    "confirm": True,
    "payment_method_data": card(SUCCESS_CARD),
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(EPOCH)


@pytest.fixture
async def deps(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> AsyncIterator[Deps]:
    """The suite's dependencies on a clock the tests move (the API, and so ``client`` and
    ``api``, share it)."""
    built = build_deps(pool, settings, bookkeeping_pool=bookkeeping_pool, clock=clock)
    yield built
    await built.connectors.aclose()


# -- idempotency keys --------------------------------------------------------------------------


async def test_an_idempotency_key_lives_its_ttl_on_the_clock(api: Api, clock: FakeClock) -> None:
    key = {"Idempotency-Key": "clocked"}
    first = await api.post("/v1/payments", PURCHASE, **key)
    assert first.status_code == 200, first.text
    clock.advance(timedelta(hours=23, minutes=59))
    replay = await api.post("/v1/payments", PURCHASE, **key)
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json()["id"] == first.json()["id"]
    clock.advance(timedelta(minutes=2))  # 24 h and a minute after the first request
    again = await api.post("/v1/payments", PURCHASE, **key)
    assert again.status_code == 200, again.text
    assert "idempotent-replayed" not in again.headers  # expired: a new request
    assert again.json()["id"] != first.json()["id"]


async def test_a_dead_requests_lock_expires_on_the_clock(
    api: Api, deps: Deps, merchant: NewMerchant, clock: FakeClock
) -> None:
    """A request claimed the key at the clock's time and died: the key is in use until the
    lock has lasted ``idempotency_lock_seconds`` on the clock, then a retry runs."""
    body = orjson.dumps({"amount": 1000, "currency": "USD"})
    dead = idempotency_keys.ClaimRequest(
        merchant_id=merchant.id,
        livemode=False,
        key="died",
        method="POST",
        path="/v1/payments",
        request_hash=request_fingerprint("POST", "/v1/payments", body),
        api_key_id="key_that_died",
        api_key_scopes=frozenset(),
    )
    assert await idempotency_keys.claim(deps.bookkeeping_pool, dead, ttl_hours=24, now=clock.now())
    retry = {"Idempotency-Key": "died"}
    lock = deps.settings.idempotency_lock_seconds
    clock.advance(lock - 1)
    in_use = await api.post("/v1/payments", orjson.loads(body), **retry)
    assert in_use.status_code == 409, in_use.text
    clock.advance(2)
    resumed = await api.post("/v1/payments", orjson.loads(body), **retry)
    assert resumed.status_code == 200, resumed.text
    replay = await api.post("/v1/payments", orjson.loads(body), **retry)
    assert replay.headers.get("idempotent-replayed") == "true"


# -- checkout sessions -----------------------------------------------------------------------


async def test_a_checkout_session_expires_when_the_clock_passes_its_time(
    api: Api, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    session = await new_session(api)
    assert session["expires_at"] == int((clock.now() + DEFAULT_LIFETIME).timestamp())
    clock.advance(DEFAULT_LIFETIME - timedelta(seconds=1))
    assert (await client.get(f"/checkout/{session['id']}")).status_code == 200
    clock.advance(timedelta(seconds=2))
    assert (await client.get(f"/checkout/{session['id']}")).status_code == 410
    assert (await api.get(f"/v1/checkout_sessions/{session['id']}")).json()["status"] == "expired"


async def test_a_checkout_session_completes_at_the_clocks_time(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    session = await new_session(api)
    clock.advance(timedelta(minutes=5))
    paid = await pay_with(client, session["id"], SUCCESS_CARD)
    assert paid.status_code in (200, 303), paid.text
    completed_at = await pool.fetchval(
        "SELECT completed_at FROM checkout_sessions WHERE id = $1", session["id"]
    )
    assert completed_at == clock.now()


# -- customers and payment methods ----------------------------------------------------------


async def test_deleting_a_customer_stamps_the_clocks_time(
    api: Api, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    ada = await customer(api, "Ada")
    pm = await saved_card(api, ada)
    other = await saved_card(api, await customer(api, "Grace"))
    clock.advance(timedelta(days=3))
    assert (await api.delete(f"/v1/customers/{ada}")).status_code == 200
    assert await pool.fetchval("SELECT deleted_at FROM customers WHERE id = $1", ada) == clock.now()
    detached = "SELECT detached_at FROM payment_methods WHERE id = $1"
    assert await pool.fetchval(detached, pm) == clock.now()
    clock.advance(timedelta(hours=1))
    assert (await api.post(f"/v1/payment_methods/{other}/detach", {})).status_code == 200
    assert await pool.fetchval(detached, other) == clock.now()


# -- webhook delivery schedules ---------------------------------------------------------------


async def test_webhook_deliveries_are_due_on_the_clock(
    api: Api, pool: asyncpg.Pool, merchant: NewMerchant, clock: FakeClock
) -> None:
    """A test ping's first attempt is due at the clock's time, so a worker on that clock
    claims it; a paused endpoint's held deliveries come due at the clock's time on resume."""
    endpoint = await api.post(
        "/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/hooks", "enabled_events": ["*"]}
    )
    assert endpoint.status_code == 200, endpoint.text
    endpoint_id = endpoint.json()["id"]
    try:
        ping = await api.post(f"/v1/webhook_endpoints/{endpoint_id}/test", {})
        assert ping.status_code == 200, ping.text
        job_of = (
            "SELECT j.id, j.run_at FROM jobs j WHERE j.payload->>'delivery_id' = $1"
            " AND j.status = 'queued'"
        )
        job = await pool.fetchrow(job_of, ping.json()["delivery"])
        assert job is not None and job["run_at"] == clock.now()
        assert (
            await pool.fetchval(
                "SELECT created_at FROM webhook_deliveries WHERE id = $1", ping.json()["delivery"]
            )
        ) == clock.now()
        # Years before the database's time: a job due at its now() would not be claimed.
        worker = new_id("wrk")
        claimed = await jobs_db.claim(pool, worker, [WEBHOOKS_QUEUE], 50, 30, clock.now())
        assert job["id"] in {c.id for c in claimed}
        await jobs_db.release(pool, worker, [c.id for c in claimed], clock.now())
        issued = await issue_key(pool, merchant.id, "secret", False, scopes=["admin"])
        admin = Api(api.http, issued.secret)
        paused = await admin.post("/v1/admin/webhooks/pause", {"endpoint": endpoint_id})
        assert paused.status_code == 200, paused.text
        clock.advance(timedelta(minutes=10))
        resumed = await admin.post("/v1/admin/webhooks/resume", {"endpoint": endpoint_id})
        assert resumed.status_code == 200, resumed.text
        assert (await pool.fetchval("SELECT run_at FROM jobs WHERE id = $1", job["id"])) == (
            clock.now()
        )
    finally:
        await api.delete(f"/v1/webhook_endpoints/{endpoint_id}")


# -- attempts and refunds ---------------------------------------------------------------------


async def test_captures_and_refunds_are_stamped_with_the_clocks_time(
    api: Api, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    created = await api.post("/v1/payments", {**PURCHASE, "capture_method": "manual"})
    assert created.status_code == 200, created.text
    payment_id = created.json()["id"]
    clock.advance(timedelta(hours=2))
    captured = await api.post(f"/v1/payments/{payment_id}/capture", {})
    assert captured.status_code == 200, captured.text
    completed = await pool.fetchval(
        "SELECT completed_at FROM payment_attempts WHERE payment_id = $1 AND operation = 'capture'",
        payment_id,
    )
    assert completed == clock.now()
    clock.advance(timedelta(days=1))
    refund = await api.post("/v1/refunds", {"payment": payment_id, "amount": 500})
    assert refund.status_code == 200, refund.text
    assert refund.json()["created"] == int(clock.now().timestamp())
    refunded = await pool.fetchrow(
        "SELECT p.updated_at, a.completed_at FROM payments p JOIN payment_attempts a"
        " ON a.payment_id = p.id AND a.operation = 'refund' WHERE p.id = $1",
        payment_id,
    )
    assert refunded is not None
    assert refunded["updated_at"] == clock.now() and refunded["completed_at"] == clock.now()


# -- provider events ----------------------------------------------------------------------------


async def test_a_processed_provider_event_is_kept_its_retention_on_the_clock(
    api: Api, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    account = await api.post("/v1/connector_accounts", {"provider": "simulator"})
    assert account.status_code == 200, account.text
    stored = await inbox_db.insert_event(
        pool,
        event_id=new_id("pwe"),
        connector_account_id=account.json()["id"],
        provider_event_id="evt_clock",
        event_type="charge.succeeded",
        body=b"{}",
        headers={},
    )
    assert stored is not None
    await inbox_db.mark(pool, stored.id, ProviderEventStatus.APPLIED, now=clock.now())
    days = 30
    assert await inbox_db.purge_processed(pool, days, clock.now() + timedelta(days=days)) == 0
    assert (
        await inbox_db.purge_processed(pool, days, clock.now() + timedelta(days=days, seconds=1))
        == 1
    )


# -- dashboard sessions ---------------------------------------------------------------------


async def test_a_dashboard_session_ends_when_the_clock_passes_its_lifetime(
    client: httpx.AsyncClient,
    deps: Deps,
    pool: asyncpg.Pool,
    merchant: NewMerchant,
    clock: FakeClock,
) -> None:
    user = await create_user(
        pool,
        merchant_id=merchant.id,
        email=f"clocked-{new_id('x')}@example.com",
        role="viewer",
        password=PASSWORD,
    )
    assert (await sign_in(client, user.email, PASSWORD)).status_code == 303
    lifetime = timedelta(hours=deps.settings.dashboard_session_hours)
    clock.advance(lifetime - timedelta(seconds=1))
    assert (await client.get("/dashboard/payments")).status_code == 200
    clock.advance(timedelta(seconds=1))
    expired = await client.get("/dashboard/payments")
    assert expired.status_code == 303
    assert expired.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Fpayments"
