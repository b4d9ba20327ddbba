"""A capture or void the provider refuses: its attempt is recorded ``failed`` with the
provider's code (never left pending), the client gets 409, and the payment stays in a state
from which the documented next steps work."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from tests.conftest import SUCCESS_CARD, Api, card
from tests.integration.payment_builders import THREE_DS_CARD


async def _three_ds(api: Api) -> dict[str, Any]:
    response = await api.post(
        "/v1/payments",
        {
            "amount": 4200,
            "currency": "USD",
            "confirm": True,
            "payment_method_data": card(THREE_DS_CARD),
            "return_url": "https://shop.test/return",
        },
    )
    assert response.status_code == 200, response.text
    payment: dict[str, Any] = response.json()
    assert payment["status"] == "requires_action"
    return payment


async def _decide_at_provider(
    client: httpx.AsyncClient, payment: dict[str, Any], decision: str
) -> httpx.Response:
    """The customer answers on the provider's page; the browser has not come back yet."""
    path = urlsplit(payment["next_action"]["redirect_to_url"]["url"]).path
    return await client.post(
        path,
        content=f"decision={decision}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


async def _attempts(pool: asyncpg.Pool, payment_id: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT operation, status, error_code FROM payment_attempts WHERE payment_id = $1"
            " ORDER BY id",
            payment_id,
        )
    )


async def test_cancel_after_the_customer_denied_3ds_records_the_refusal(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    payment = await _three_ds(api)
    assert (await _decide_at_provider(client, payment, "deny")).status_code == 303

    cancel = await api.post(f"/v1/payments/{payment['id']}/cancel")

    assert cancel.status_code == 409, cancel.text
    error = cancel.json()["error"]
    assert error["code"] == "payment_invalid_state"
    voids = [a for a in await _attempts(pool, payment["id"]) if a["operation"] == "void"]
    assert [(a["status"], a["error_code"]) for a in voids] == [("failed", "charge_not_voidable")]
    # The provider's truth (the customer denied) is applied: a new card can be confirmed.
    after = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert after["status"] == "requires_payment_method"
    assert "requires_payment_method" in error["message"]
    confirmed = await api.post(
        f"/v1/payments/{payment['id']}/confirm", {"payment_method_data": card(SUCCESS_CARD)}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "succeeded"
    statuses = [a["status"] for a in await _attempts(pool, payment["id"])]
    assert "pending" not in statuses


async def test_approve_racing_cancel_leaves_no_phantom_pending_void(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    for _ in range(20):
        payment = await _three_ds(api)
        decided, cancel = await asyncio.gather(
            _decide_at_provider(client, payment, "approve"),
            api.post(f"/v1/payments/{payment['id']}/cancel"),
        )
        assert decided.status_code == 303
        assert cancel.status_code in (200, 409), cancel.text
        await client.get(f"/payments/{payment['id']}/return")  # the customer comes back
        after = (await api.get(f"/v1/payments/{payment['id']}")).json()
        attempts = await _attempts(pool, payment["id"])
        assert all(a["status"] != "pending" for a in attempts), attempts
        charge = await pool.fetchval(
            "SELECT c.status FROM simulator.charges c JOIN payment_attempts a"
            " ON a.provider_reference = c.id WHERE a.payment_id = $1"
            " AND a.operation = 'authorize'",
            payment["id"],
        )
        expected = {"succeeded": "captured", "canceled": "voided"}
        assert after["status"] in expected, after
        assert charge == expected[after["status"]]
        if cancel.status_code == 409:
            assert after["status"] == "succeeded"
            voids = [a for a in attempts if a["operation"] == "void"]
            assert [a["status"] for a in voids] in ([], ["failed"])
