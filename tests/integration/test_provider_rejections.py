"""A provider that refuses the account's key: never a 500, nothing charged, the attempt
says why, and routing moves on to the next account (nothing was processed)."""

from __future__ import annotations

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
