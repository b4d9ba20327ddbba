"""Status sync recovers attempts whose process died: a capture, void or refund call left
pending is asked about again (same idempotency key) and the payment moves to the provider's
truth with an event and an audit entry; an authorize attempt the provider never received is
closed ``not_sent`` after the grace period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg

from paygrid.dependencies import Deps
from paygrid.ids import new_id
from paygrid.services import status_sync
from tests.conftest import Api
from tests.integration.payment_builders import payment_in


def _reference(payment: dict[str, Any]) -> str:
    return str(
        next(a["provider_reference"] for a in payment["attempts"] if a["operation"] == "authorize")
    )


async def _stale_attempt(
    pool: asyncpg.Pool,
    payment: dict[str, Any],
    operation: str,
    amount: int,
    refund_id: str | None = None,
) -> str:
    """An attempt recorded an hour ago by a process that died before recording the answer."""
    attempt_id = new_id("att")
    await pool.execute(
        "INSERT INTO payment_attempts (id, payment_id, operation, connector, status, amount,"
        " refund_id, created_at)"
        " VALUES ($1, $2, $3, 'simulator', 'pending', $4, $5, now() - interval '1 hour')",
        attempt_id,
        payment["id"],
        operation,
        amount,
        refund_id,
    )
    return attempt_id


async def _events(pool: asyncpg.Pool, object_id: str) -> list[str]:
    rows = await pool.fetch("SELECT type FROM events WHERE object_id = $1 ORDER BY id", object_id)
    return [r["type"] for r in rows]


async def _audited_statuses(pool: asyncpg.Pool, object_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT after->>'status' AS status FROM audit_log WHERE object_id = $1 ORDER BY id",
        object_id,
    )
    return [r["status"] for r in rows]


async def test_a_pending_capture_the_provider_made_is_recovered(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    payment = await payment_in(api, deps, "requires_capture")
    attempt_id = await _stale_attempt(pool, payment, "capture", 5000)
    made = await deps.connectors.simulator.capture(_reference(payment), 5000, attempt_id)
    assert made.succeeded  # the provider captured; paygrid never heard

    await status_sync.run(deps)

    after = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert after["status"] == "succeeded"
    assert after["amount_received"] == 5000
    capture = next(a for a in after["attempts"] if a["id"] == attempt_id)
    assert capture["status"] == "succeeded"
    assert (await _events(pool, payment["id"]))[-1] == "payment.succeeded"
    assert (await _audited_statuses(pool, payment["id"]))[-1] == "succeeded"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM simulator.operations WHERE idempotency_key = $1", attempt_id
        )
        == 1
    )


async def test_a_pending_void_the_provider_made_is_recovered(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    payment = await payment_in(api, deps, "requires_capture")
    attempt_id = await _stale_attempt(pool, payment, "void", 0)
    assert (await deps.connectors.simulator.void(_reference(payment), attempt_id)).succeeded

    await status_sync.run(deps)

    after = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert after["status"] == "canceled"
    assert after["amount_capturable"] == 0
    assert (await _events(pool, payment["id"]))[-1] == "payment.canceled"
    assert (await _audited_statuses(pool, payment["id"]))[-1] == "canceled"


async def test_a_pending_refund_the_provider_made_is_recovered(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    payment = await payment_in(api, deps, "succeeded")
    refund_id = new_id("re")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE payments SET amount_refunded = 2000 WHERE id = $1", payment["id"]
        )
        await conn.execute(
            "INSERT INTO refunds (id, merchant_id, livemode, payment_id, amount, currency,"
            " status) SELECT $1, merchant_id, livemode, id, 2000, currency, 'pending'"
            " FROM payments WHERE id = $2",
            refund_id,
            payment["id"],
        )
    await _stale_attempt(pool, payment, "refund", 2000, refund_id)
    assert (await deps.connectors.simulator.refund(_reference(payment), 2000, refund_id)).succeeded

    await status_sync.run(deps)

    refund = (await api.get(f"/v1/refunds/{refund_id}")).json()
    assert refund["status"] == "succeeded"
    assert (await _events(pool, refund_id))[-1] == "refund.succeeded"
    after = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert after["amount_refunded"] == 2000
    charge_refunded = await pool.fetchval(
        "SELECT amount_refunded FROM simulator.charges WHERE id = $1", _reference(payment)
    )
    assert charge_refunded == 2000  # refunded once, not twice


async def _processing_without_charge(api: Api, pool: asyncpg.Pool, minutes_ago: int) -> str:
    """A confirmed payment whose process died after recording its attempt, before the call."""
    created = await api.post(
        "/v1/payments", {"amount": 3100, "currency": "USD", "payment_method": "pm_card_visa"}
    )
    payment_id = str(created.json()["id"])
    await pool.execute("UPDATE payments SET status = 'processing' WHERE id = $1", payment_id)
    await pool.execute(
        "INSERT INTO payment_attempts (id, payment_id, operation, connector, status, amount,"
        " payment_method_id, created_at) SELECT $1, id, 'authorize', 'simulator', 'pending',"
        " amount, payment_method_id, now() - make_interval(mins => $2) FROM payments"
        " WHERE id = $3",
        new_id("att"),
        minutes_ago,
        payment_id,
    )
    return payment_id


async def test_an_attempt_the_provider_never_received_is_not_sent_after_the_grace(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    assert deps.settings.not_sent_grace_seconds == 600
    recent = await _processing_without_charge(api, pool, 5)
    old = await _processing_without_charge(api, pool, 11)

    await status_sync.run(deps)
    await status_sync.run(deps, now=deps.clock.now() + timedelta(seconds=1))

    # Within the grace period the request may still be on its way: nothing changes.
    assert (await api.get(f"/v1/payments/{recent}")).json()["status"] == "processing"
    after = (await api.get(f"/v1/payments/{old}")).json()
    assert after["status"] == "requires_payment_method"
    assert [(a["status"], a["error_code"]) for a in after["attempts"]] == [
        ("not_sent", "attempt_not_sent")
    ]
    assert after["last_payment_error"]["code"] == "attempt_not_sent"
    assert (await _events(pool, old))[-1] == "payment.payment_failed"
    # The documented next step works: confirm again with a payment method.
    confirmed = await api.post(f"/v1/payments/{old}/confirm", {"payment_method": "pm_card_visa"})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "succeeded"
