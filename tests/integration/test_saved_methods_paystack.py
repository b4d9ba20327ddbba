"""Saved methods and off-session charges at Paystack (the fake, validated against Paystack's
spec by tests/connectors/test_paystack_fake.py): a reusable card authorization paid on the
hosted page with ``setup_future_usage`` is saved with its mandate and later charged with
``charge_authorization``; a non-reusable authorization saves nothing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Api
from tests.fakes.paystack import FakeMerchant, PaystackFake

SUCCESS_CARD = "4084084084084081"


async def _paystack_customer(api: Api, fake: PaystackFake, merchant: FakeMerchant) -> str:
    account = await api.post(
        "/v1/connector_accounts",
        {
            "provider": "paystack",
            "credentials": {"secret_key": merchant.secret_key},
            "currencies": ["NGN"],
            "api_base": fake.base_url,
        },
    )
    assert account.status_code == 200, account.text
    customer = await api.post("/v1/customers", {"email": "ada@example.com"})
    return str(customer.json()["id"])


async def _pay_on_hosted_page(
    api: Api, client: httpx.AsyncClient, merchant: FakeMerchant, customer: str, **paying: Any
) -> dict[str, Any]:
    started = await api.post(
        "/v1/payments",
        {
            "amount": 500_000,
            "currency": "NGN",
            "confirm": True,
            "customer": customer,
            "setup_future_usage": "off_session",
            "payment_method_types": [paying.get("channel", "card")],
            "return_url": "https://shop.test/done",
        },
    )
    assert started.status_code == 200, started.text
    payment = started.json()
    assert payment["status"] == "requires_action"
    paid = await merchant.pay(payment["next_action"]["redirect_to_url"]["url"], **paying)
    assert paid.status_code == 302, paid.text
    await client.get(paid.headers["location"])  # back at paygrid's return route
    done: dict[str, Any] = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert done["status"] == "succeeded"
    return done


async def test_a_reusable_authorization_is_saved_and_charged_with_charge_authorization(
    api: Api,
    client: httpx.AsyncClient,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    customer = await _paystack_customer(api, paystack_fake, paystack_merchant)
    first = await _pay_on_hosted_page(
        api, client, paystack_merchant, customer, card_number=SUCCESS_CARD
    )
    method = first["payment_method"]
    saved = (await api.get(f"/v1/payment_methods/{method}")).json()
    assert saved["customer"] == customer and saved["mandate"] is not None
    mandate = (await api.get(f"/v1/mandates/{saved['mandate']}")).json()
    assert (mandate["payment_method"], mandate["customer"]) == (method, customer)
    events = (await api.get("/v1/events", type="payment_method.attached")).json()["data"]
    assert [e["data"]["object"]["id"] for e in events] == [method]

    charged = await api.post(
        "/v1/payments",
        {
            "amount": 250_000,
            "currency": "NGN",
            "confirm": True,
            "off_session": True,
            "customer": customer,
            "payment_method": method,
        },
    )
    assert charged.status_code == 200, charged.text
    payment = charged.json()
    assert (payment["status"], payment["off_session"]) == ("succeeded", True)
    reference = payment["attempts"][-1]["provider_reference"]
    listed = (await paystack_merchant.api("GET", "/transaction?perPage=50")).json()["data"]
    data = next(t for t in listed if t["reference"] == reference)
    assert data["source"]["source"] == "merchantApi"  # charge_authorization, not a checkout
    assert (data["status"], data["amount"], data["authorization"]["reusable"]) == (
        "success",
        250_000,
        True,
    )

    # Paystack cannot verify a card without charging it.
    setup = await api.post(
        "/v1/setup_intents", {"customer": customer, "payment_method": method, "confirm": True}
    )
    assert setup.status_code == 400
    assert setup.json()["error"]["code"] == "capability_not_supported"


async def test_a_non_reusable_authorization_saves_nothing(
    api: Api,
    client: httpx.AsyncClient,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    customer = await _paystack_customer(api, paystack_fake, paystack_merchant)
    paid = await _pay_on_hosted_page(api, client, paystack_merchant, customer, channel="bank")
    verified = await paystack_merchant.api(
        "GET", f"/transaction/verify/{paid['attempts'][-1]['provider_reference']}"
    )
    assert verified.json()["data"]["authorization"]["reusable"] is False
    assert paid["payment_method"] is None
    assert (await api.get("/v1/payment_methods", customer=customer)).json()["data"] == []
