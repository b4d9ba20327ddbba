"""A provider that refuses the account's key: never a 500, nothing charged, the attempt
says why, and routing moves on to the next account (nothing was processed)."""

from __future__ import annotations

from datetime import timedelta

import httpx

from paygrid.dependencies import Deps
from paygrid.services import status_sync
from tests.conftest import Api
from tests.fakes.paystack import FakeMerchant, PaystackFake


async def _paystack(api: Api, base_url: str, key: str) -> str:
    response = await api.post(
        "/v1/connector_accounts",
        {"provider": "paystack", "credentials": {"secret_key": key}, "api_base": base_url},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


HOSTED = {
    "amount": 50_000,
    "currency": "ngn",
    "confirm": True,
    "payment_method_types": ["card", "bank_transfer"],
    "receipt_email": "ada@example.com",
    "return_url": "https://shop.example/done",
}


async def test_a_rejected_key_is_a_502_with_the_reason_not_a_500(
    api: Api, paystack_fake: PaystackFake
) -> None:
    await _paystack(api, paystack_fake.base_url, "sk_test_revoked_at_paystack")
    response = await api.post("/v1/payments", HOSTED)
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "provider_credentials_rejected"
    payment = (await api.get(f"/v1/payments/{error['payment_id']}")).json()
    assert payment["status"] == "requires_confirmation"
    assert [(a["status"], a["error_code"]) for a in payment["attempts"]] == [
        ("failed", "provider_credentials_rejected")
    ]


async def test_a_rejected_key_fails_over_to_the_next_account(
    api: Api, paystack_fake: PaystackFake, paystack_merchant: FakeMerchant
) -> None:
    bad = await _paystack(api, paystack_fake.base_url, "sk_test_revoked_at_paystack")
    good = await _paystack(api, paystack_fake.base_url, paystack_merchant.secret_key)
    rule = {"destinations": [{"connector_account": bad}, {"connector_account": good}]}
    assert (await api.post("/v1/routing_rules", rule)).status_code == 200
    response = await api.post("/v1/payments", HOSTED)
    assert response.status_code == 200, response.text
    payment = response.json()
    assert payment["status"] == "requires_action"
    assert payment["connector_account"] == good
    assert payment["next_action"]["redirect_to_url"]["url"]
    assert [(a["connector_account"], a["status"]) for a in payment["attempts"]] == [
        (bad, "failed"),
        (good, "requires_action"),
    ]


async def test_a_hosted_page_paid_after_cancel_is_refunded_at_once(
    api: Api,
    client: httpx.AsyncClient,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    """Paystack's page cannot be closed, so a customer may pay after the merchant canceled:
    paygrid gives the money back and the payment stays canceled."""
    account = await _paystack(api, paystack_fake.base_url, paystack_merchant.secret_key)
    payment = (await api.post("/v1/payments", HOSTED)).json()
    assert payment["status"] == "requires_action"
    canceled = await api.post(f"/v1/payments/{payment['id']}/cancel")
    assert canceled.json()["status"] == "canceled"

    await paystack_merchant.pay(
        payment["next_action"]["redirect_to_url"]["url"], card_number="4084084084084081"
    )
    [delivery] = await paystack_merchant.wait_for_webhook("charge.success")
    response = await client.post(
        f"/v1/provider_webhooks/{account}", content=delivery.body, headers=delivery.headers
    )
    assert response.status_code == 200, response.text

    after = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert after["status"] == "canceled"
    assert after["amount_received"] == 0
    operations = [(a["operation"], a["status"]) for a in after["attempts"]]
    assert operations == [("authorize", "captured"), ("refund", "pending")]
    updates = [
        e
        for e in (await api.get("/v1/events", limit=20)).json()["data"]
        if e["type"] == "payment.updated" and e["data"]["object"]["id"] == payment["id"]
    ]
    assert [a["operation"] for a in updates[0]["data"]["object"]["attempts"]] == [
        "authorize",
        "refund",
    ]
    refunds = (await paystack_merchant.state())["refunds"]
    assert len(refunds) == 1
    [refund_id] = refunds
    assert after["attempts"][1]["provider_reference"] == refund_id
    assert (await paystack_merchant.state())["transactions"][
        after["attempts"][0]["provider_reference"]
    ] in {"success", "reversed"}
    # Delivered again: nothing more is refunded.
    again = await client.post(
        f"/v1/provider_webhooks/{account}", content=delivery.body, headers=delivery.headers
    )
    assert again.json()["duplicate"] is True
    assert len((await paystack_merchant.state())["refunds"]) == 1


async def test_a_hosted_page_paid_after_the_expiry_is_refunded_too(
    api: Api,
    client: httpx.AsyncClient,
    deps: Deps,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    account = await _paystack(api, paystack_fake.base_url, paystack_merchant.secret_key)
    payment = (await api.post("/v1/payments", HOSTED)).json()
    window = timedelta(hours=deps.settings.requires_action_expiry_hours, minutes=1)
    await status_sync.run(deps, now=deps.clock.now() + window)
    expired = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert expired["status"] == "canceled"
    assert expired["attempts"][0]["error_code"] == "action_expired"

    await paystack_merchant.pay(
        payment["next_action"]["redirect_to_url"]["url"], card_number="4084084084084081"
    )
    [delivery] = await paystack_merchant.wait_for_webhook("charge.success")
    response = await client.post(
        f"/v1/provider_webhooks/{account}", content=delivery.body, headers=delivery.headers
    )
    assert response.status_code == 200, response.text
    after = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert after["status"] == "canceled"
    assert [a["operation"] for a in after["attempts"]] == ["authorize", "refund"]
    assert len((await paystack_merchant.state())["refunds"]) == 1
