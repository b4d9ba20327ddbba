"""Renewals per second: ``--subscriptions`` subscriptions due at the same instant, one
worker (issue 13 §5).

Creates a fresh database on a PostgreSQL server (``--server``, default
``postgresql://postgres@127.0.0.1:5432/postgres``), migrates it, and builds the real app
and ``Deps`` in-process. Over the API it creates a monthly price, a test clock, a customer
on it with a saved card as its default method, and one subscription; the others are copies
of that one in SQL (same customer, items and period), so all renew at the same moment.
Then one job worker (the standard registry, on the ``billing`` queue) runs, the clock is
advanced one period and the invoices' finalize delay (``invoice.upcoming`` a week before,
the renewal at the period's end, finalize and charge after the delay), and the time from
the advance to the clock's ``ready`` is measured:
every subscription renewed (invoice made, finalized, numbered, charged off-session at the
simulator, paid). Prints renewals per second and checks that each subscription has exactly
one renewal invoice, paid. The database is dropped at the end.

Usage: ``.venv/bin/python bench/renewals.py [--subscriptions 10000]``
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from paygrid.app import create_app
from paygrid.bootstrap import build_deps, standard_registry
from paygrid.config import Settings
from paygrid.db import engine
from paygrid.db.listener import Notifications
from paygrid.services import lookup_invalidation
from paygrid.services.billing import clock_advance
from paygrid.services.merchants import create_merchant
from paygrid.worker.runner import Worker, WorkerConfig

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
T0 = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp())
PERIOD_END = int(datetime(2030, 2, 1, tzinfo=UTC).timestamp())
UNLIMITED = "1000000/second"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
CLONE = """
WITH source AS (SELECT * FROM subscriptions WHERE id = $1),
made AS (
    INSERT INTO subscriptions
    SELECT 'sub_' || substr(s.id, 5, 16) || lpad(n::text, 10, '0'), s.merchant_id, s.livemode,
           s.customer_id, s.status, s.currency, s.interval, s.interval_count,
           s.billing_cycle_anchor, s.current_period_start, s.current_period_end,
           s.trial_start, s.trial_end, s.trial_will_end_sent, s.upcoming_sent_for,
           s.cancel_at_period_end,
           s.canceled_at, s.ended_at, s.paused_at, s.resumes_at, s.collection_method,
           s.days_until_due, s.default_payment_method_id, NULL, s.metadata, s.created_at,
           s.updated_at
    FROM source s, generate_series(1, $2) AS n RETURNING id)
INSERT INTO subscription_items (id, subscription_id, price_id, quantity, metadata, created_at)
SELECT 'si_' || substr(made.id, 5), made.id, i.price_id, i.quantity, i.metadata, i.created_at
FROM made, subscription_items i WHERE i.subscription_id = $1
"""


async def admin(server: str, sql: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


async def setup(http: httpx.AsyncClient) -> tuple[str, str]:
    """The clock and the one subscription made over the API."""
    product = ok(await http.post("/v1/products", json={"name": "Bench plan"}))
    price = ok(
        await http.post(
            "/v1/prices",
            json={
                "product": product["id"],
                "currency": "USD",
                "unit_amount": 1500,
                "recurring": {"interval": "month"},
            },
        )
    )
    clock = ok(await http.post("/v1/test_clocks", json={"frozen_time": T0}))
    customer = ok(await http.post("/v1/customers", json={"test_clock": clock["id"]}))
    method = ok(
        await http.post(
            "/v1/payment_methods", json={"type": "card", "customer": customer["id"], "card": CARD}
        )
    )
    settings = {"invoice_settings": {"default_payment_method": method["id"]}}
    ok(await http.post(f"/v1/customers/{customer['id']}", json=settings))
    body = {"customer": customer["id"], "items": [{"price": price["id"]}]}
    subscription = ok(await http.post("/v1/subscriptions", json=body))
    return clock["id"], subscription["id"]


async def run(server: str, count: int) -> None:
    name = f"paygrid_renewals_{uuid.uuid4().hex[:10]}"
    await admin(server, f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(engine.upgrade, url)
        await measure(url, count)
    finally:
        await admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def measure(url: str, count: int) -> None:
    settings = Settings(
        log_level="WARNING",
        rate_limit_per_key=UNLIMITED,
        rate_limit_per_ip=UNLIMITED,
        rate_limit_payments_per_customer=UNLIMITED,
    )
    pool = await engine.create_pool(url, settings.db_pool_size)
    deps = build_deps(pool, settings)
    merchant = await create_merchant(pool, "Renewals bench")
    key = merchant.key("secret", livemode=False)
    transport = httpx.ASGITransport(app=create_app(settings, deps=deps))
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1:8000", headers=headers, timeout=600.0
    ) as http:
        clock, first = await setup(http)
        await pool.execute(CLONE, first, count - 1)
        # As ``paygrid serve`` runs its worker: on the process's one LISTEN connection, which
        # the lookup caches (routing inputs, API keys) answer through.
        notifications = Notifications(pool, owner="bench")
        await notifications.start()
        listener = await lookup_invalidation.listen(deps.lookups, notifications)
        worker = Worker(
            deps,
            standard_registry(),
            WorkerConfig(queues=(clock_advance.QUEUE,), poll_seconds=0.05, lease_seconds=60.0),
            notifications=notifications,
        )
        await worker.start()
        # To the end of the period, and past the renewal invoices' finalize delay (they are
        # finalized and charged then).
        target = PERIOD_END + settings.invoice_finalize_delay_seconds
        try:
            started = time.perf_counter()
            ok(await http.post(f"/v1/test_clocks/{clock}/advance", json={"frozen_time": target}))
            # Polls the API: there is no event to wait on.
            while ok(await http.get(f"/v1/test_clocks/{clock}"))["status"] == "advancing":  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            elapsed = time.perf_counter() - started
        finally:
            await worker.stop()
            await listener.stop()
            await notifications.stop()
        await report(pool, count, elapsed)
    await deps.connectors.aclose()
    await pool.close()


async def report(pool: asyncpg.Pool, count: int, elapsed: float) -> None:
    renewals = await pool.fetchval(
        "SELECT count(*) FROM invoices WHERE billing_reason = 'subscription_cycle'"
        " AND status = 'paid'"
    )
    distinct = await pool.fetchval(
        "SELECT count(DISTINCT subscription_id) FROM invoices"
        " WHERE billing_reason = 'subscription_cycle'"
    )
    numbers = await pool.fetchrow(
        "SELECT count(DISTINCT number) AS distinct, count(*) AS all FROM invoices"
        " WHERE number IS NOT NULL"
    )
    payments = await pool.fetchval("SELECT count(*) FROM payments WHERE status = 'succeeded'")
    assert numbers is not None
    print(f"subscriptions:        {count}")
    print(f"paid renewals:        {renewals} (of {distinct} subscriptions)")
    print(f"invoice numbers:      {numbers['distinct']} distinct of {numbers['all']} invoices")
    print(f"succeeded payments:   {payments} (the first invoice's, then one per renewal)")
    print(f"advance to ready:     {elapsed:.2f} s")
    print(f"renewals per second:  {renewals / elapsed:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=SERVER)
    parser.add_argument("--subscriptions", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(run(args.server, args.subscriptions))


if __name__ == "__main__":
    main()
