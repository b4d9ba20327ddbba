"""End-to-end payment flows through the HTTP API on real PostgreSQL and the simulator."""

from __future__ import annotations

import asyncpg

from tests.conftest import SUCCESS_CARD, Api, card, confirmed_payment


async def test_purchase_succeeds_and_is_recorded(api: Api, pool: asyncpg.Pool) -> None:
    response = await api.post(
        "/v1/payments",
        {
            "amount": 2000,
            "currency": "usd",
            "confirm": True,
            "payment_method_data": card(SUCCESS_CARD),
        },
    )
    assert response.status_code == 200, response.text
    payment = response.json()
    assert payment["status"] == "succeeded"
    assert payment["currency"] == "USD"
    assert payment["amount_received"] == 2000
    assert payment["amount_capturable"] == 0
    assert payment["livemode"] is False
    assert payment["id"].startswith("pay_")
    assert [a["status"] for a in payment["attempts"]] == ["captured"]
    assert payment["attempts"][0]["connector"] == "simulator"
    assert payment["attempts"][0]["latency_ms"] is not None
    fetched = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert fetched == payment
    events = await pool.fetch(
        "SELECT type FROM events WHERE object_id = $1 ORDER BY id", payment["id"]
    )
    assert [e["type"] for e in events] == ["payment.created", "payment.succeeded"]


async def test_authorize_then_partial_capture_releases_the_rest(api: Api) -> None:
    created = (
        await api.post(
            "/v1/payments",
            {
                "amount": 5000,
                "currency": "EUR",
                "confirm": True,
                "capture_method": "manual",
                "payment_method": "pm_card_visa",
            },
        )
    ).json()
    assert created["status"] == "requires_capture"
    assert created["amount_capturable"] == 5000
    captured = await api.post(f"/v1/payments/{created['id']}/capture", {"amount_to_capture": 3000})
    assert captured.status_code == 200, captured.text
    body = captured.json()
    assert body["status"] == "succeeded"
    assert body["amount_received"] == 3000
    assert body["amount_capturable"] == 0
    assert [a["operation"] for a in body["attempts"]] == ["authorize", "capture"]


async def test_capture_more_than_capturable_is_rejected(api: Api) -> None:
    created = (
        await api.post(
            "/v1/payments",
            {
                "amount": 5000,
                "currency": "EUR",
                "confirm": True,
                "capture_method": "manual",
                "payment_method": "pm_card_visa",
            },
        )
    ).json()
    response = await api.post(f"/v1/payments/{created['id']}/capture", {"amount_to_capture": 5001})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "amount_to_capture"
    assert (await api.get(f"/v1/payments/{created['id']}")).json()["status"] == "requires_capture"


async def test_void_an_authorization(api: Api) -> None:
    created = (
        await api.post(
            "/v1/payments",
            {
                "amount": 1500,
                "currency": "GBP",
                "confirm": True,
                "capture_method": "manual",
                "payment_method": "pm_card_visa",
            },
        )
    ).json()
    canceled = await api.post(
        f"/v1/payments/{created['id']}/cancel", {"cancellation_reason": "requested_by_customer"}
    )
    assert canceled.status_code == 200, canceled.text
    body = canceled.json()
    assert body["status"] == "canceled"
    assert body["cancellation_reason"] == "requested_by_customer"
    assert body["canceled_at"] is not None
    assert body["amount_capturable"] == 0
    assert [(a["operation"], a["status"]) for a in body["attempts"]] == [
        ("authorize", "authorized"),
        ("void", "succeeded"),
    ]


async def test_two_step_create_then_confirm(api: Api) -> None:
    created = (await api.post("/v1/payments", {"amount": 999, "currency": "USD"})).json()
    assert created["status"] == "requires_payment_method"
    confirmed = await api.post(
        f"/v1/payments/{created['id']}/confirm", {"payment_method": "pm_card_visa"}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "succeeded"


async def test_full_and_partial_refunds(api: Api, pool: asyncpg.Pool) -> None:
    payment = (
        await api.post(
            "/v1/payments",
            confirmed_payment(amount=5000, currency="NGN"),
        )
    ).json()
    partial = await api.post(
        "/v1/refunds", {"payment": payment["id"], "amount": 1200, "reason": "requested_by_customer"}
    )
    assert partial.status_code == 200, partial.text
    assert partial.json()["status"] == "succeeded"
    assert partial.json()["amount"] == 1200
    rest = await api.post("/v1/refunds", {"payment": payment["id"]})
    assert rest.json()["amount"] == 3800
    after = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert after["amount_refunded"] == 5000
    over = await api.post("/v1/refunds", {"payment": payment["id"], "amount": 1})
    assert over.status_code == 422
    assert over.json()["error"]["code"] == "charge_already_refunded"
    listed = (await api.get("/v1/refunds", payment=payment["id"])).json()
    assert [r["amount"] for r in listed["data"]] == [3800, 1200]
    sim = await pool.fetchval(
        "SELECT c.amount_refunded FROM simulator.charges c JOIN payment_attempts a"
        " ON a.provider_reference = c.id WHERE a.payment_id = $1 AND a.operation = 'authorize'",
        payment["id"],
    )
    assert sim == 5000
