"""Refunds never exceed what was captured, however many run at once."""

from __future__ import annotations

import asyncio

import asyncpg

from paygrid.dependencies import Deps
from tests.conftest import Api, confirmed_payment


async def test_ten_concurrent_refunds_of_1000_against_5000_give_exactly_five(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    deps.connectors.simulator.latency_ms = 20  # overlap the provider calls
    payment = (
        await api.post(
            "/v1/payments",
            confirmed_payment(amount=5000),
        )
    ).json()
    responses = await asyncio.gather(
        *[api.post("/v1/refunds", {"payment": payment["id"], "amount": 1000}) for _ in range(10)]
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 5 + [422] * 5, codes
    assert all(
        # Refused while others were pending (over what is left), or once nothing was left.
        r.json()["error"]["code"] in {"refund_exceeds_available", "charge_already_refunded"}
        for r in responses
        if r.status_code == 422
    )
    after = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert after["amount_refunded"] == 5000
    assert (
        await pool.fetchval(
            "SELECT sum(amount) FROM refunds WHERE payment_id = $1 AND status = 'succeeded'",
            payment["id"],
        )
        == 5000
    )
    assert (
        await pool.fetchval(
            "SELECT c.amount_refunded FROM simulator.charges c JOIN payment_attempts a"
            " ON a.provider_reference = c.id WHERE a.payment_id = $1 AND a.operation = 'authorize'",
            payment["id"],
        )
        == 5000
    )
    refund_attempts = [a for a in after["attempts"] if a["operation"] == "refund"]
    assert len(refund_attempts) == 5 and all(a["status"] == "succeeded" for a in refund_attempts)


async def test_concurrent_full_refunds_refund_once(api: Api) -> None:
    payment = (
        await api.post(
            "/v1/payments",
            confirmed_payment(amount=3000, currency="KES"),
        )
    ).json()
    responses = await asyncio.gather(
        *[api.post("/v1/refunds", {"payment": payment["id"]}) for _ in range(6)]
    )
    assert sorted(r.status_code for r in responses) == [200] + [422] * 5


async def test_the_schema_refuses_over_refunding(api: Api, pool: asyncpg.Pool) -> None:
    payment = (
        await api.post(
            "/v1/payments",
            confirmed_payment(amount=3000),
        )
    ).json()
    try:
        await pool.execute(
            "UPDATE payments SET amount_refunded = 3001 WHERE id = $1", payment["id"]
        )
    except asyncpg.CheckViolationError:
        pass
    else:
        raise AssertionError("the CHECK constraint must refuse refunded > received")


async def test_refund_requires_a_succeeded_payment(api: Api) -> None:
    payment = (await api.post("/v1/payments", {"amount": 3000, "currency": "USD"})).json()
    response = await api.post("/v1/refunds", {"payment": payment["id"]})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "payment_invalid_state"
    assert "status of requires_payment_method" in response.json()["error"]["message"]


async def test_refund_provider_unreachable_releases_the_reservation(api: Api, deps: Deps) -> None:
    payment = (
        await api.post(
            "/v1/payments",
            confirmed_payment(amount=3000),
        )
    ).json()
    deps.connectors.simulator.failure_mode = "unavailable"
    body = {"payment": payment["id"], "amount": 1000}
    failed = await api.post("/v1/refunds", body, **{"Idempotency-Key": "refund-1"})
    assert failed.status_code == 502
    deps.connectors.simulator.failure_mode = "none"
    listed = (await api.get("/v1/refunds", payment=payment["id"])).json()["data"]
    assert [(r["status"], r["failure_reason"]) for r in listed] == [
        ("failed", "provider_unavailable")
    ]
    assert (await api.get(f"/v1/payments/{payment['id']}")).json()["amount_refunded"] == 0
    # retrying with the same key, as the 502 says, makes a fresh refund that succeeds
    retried = await api.post("/v1/refunds", body, **{"Idempotency-Key": "refund-1"})
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "succeeded"
    assert retried.json()["id"] != listed[0]["id"]
    assert (await api.get(f"/v1/payments/{payment['id']}")).json()["amount_refunded"] == 1000
