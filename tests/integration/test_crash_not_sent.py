"""A real server process is SIGKILLed after it recorded a payment's attempt but before the
request reached the provider. Status sync finds that the provider has no charge for the
attempt and, after the grace period, closes it ``not_sent``: the payment returns to
``requires_payment_method`` with an event instead of staying ``processing`` forever."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import httpx
import pytest

from paygrid.dependencies import Deps
from paygrid.services import status_sync
from paygrid.services.merchants import NewMerchant
from tests.conftest import SUCCESS_CARD, auth, card
from tests.integration.test_crash_recovery import _server

pytestmark = pytest.mark.slow
PURCHASE = {
    "amount": 4300,
    "currency": "USD",
    "confirm": True,
    "payment_method_data": card(SUCCESS_CARD),
}


async def _pending_attempt(pool: asyncpg.Pool, merchant_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT a.* FROM payment_attempts a JOIN payments p ON p.id = a.payment_id"
        " WHERE p.merchant_id = $1 AND a.status = 'pending'",
        merchant_id,
    )


async def test_sigkill_before_the_provider_call_then_status_sync_marks_not_sent(
    database_url: str, pool: asyncpg.Pool, merchant: NewMerchant, deps: Deps
) -> None:
    headers = auth(merchant.key("secret", False), **{"Idempotency-Key": "crash-not-sent-1"})
    # The request takes 30 s to reach the simulator: the window in which we kill the server.
    with _server(
        database_url,
        PAYGRID_SIMULATOR_REQUEST_LATENCY_MS="30000",
        PAYGRID_IDEMPOTENCY_LOCK_SECONDS="1",
    ) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            pending = asyncio.create_task(http.post("/v1/payments", json=PURCHASE, headers=headers))
            for _ in range(200):
                if await _pending_attempt(pool, merchant.id) is not None:
                    break
                await asyncio.sleep(0.05)
            attempt = await _pending_attempt(pool, merchant.id)
            assert attempt is not None
        # leaving the block SIGKILLs the server mid-request
        with pytest.raises(httpx.TransportError):
            await pending
    payment_id = attempt["payment_id"]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM simulator.charges WHERE idempotency_key = $1", attempt["id"]
        )
        == 0
    )
    assert await pool.fetchval("SELECT status FROM payments WHERE id = $1", payment_id) == (
        "processing"
    )

    # Within the grace period nothing is decided; after it, the attempt is not_sent.
    await status_sync.run(deps)
    assert await pool.fetchval("SELECT status FROM payments WHERE id = $1", payment_id) == (
        "processing"
    )
    later = deps.clock.now() + timedelta(seconds=deps.settings.not_sent_grace_seconds + 60)
    await status_sync.run(deps, now=later)
    await status_sync.run(deps, now=later + timedelta(seconds=1))

    row = await pool.fetchrow("SELECT * FROM payment_attempts WHERE id = $1", attempt["id"])
    assert row is not None and row["status"] == "not_sent"
    payment = await pool.fetchrow("SELECT * FROM payments WHERE id = $1", payment_id)
    assert payment is not None
    assert payment["status"] == "requires_payment_method"
    assert payment["last_payment_error"]["code"] == "attempt_not_sent"
    events = [
        r["type"]
        for r in await pool.fetch(
            "SELECT type FROM events WHERE object_id = $1 ORDER BY id", payment_id
        )
    ]
    assert events[-1] == "payment.payment_failed"

    # The merchant's retry with the same key answers the payment as it now is (no 500),
    # and the customer was never charged.
    with _server(database_url, PAYGRID_IDEMPOTENCY_LOCK_SECONDS="1") as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            await asyncio.sleep(1.2)  # the dead request's lock expires
            retried = await http.post("/v1/payments", json=PURCHASE, headers=headers)
            assert retried.status_code == 200, retried.text
            assert retried.json()["id"] == payment_id
            assert retried.json()["status"] == "requires_payment_method"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM simulator.charges WHERE idempotency_key = $1", attempt["id"]
        )
        == 0
    )
