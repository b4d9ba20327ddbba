"""Subscription renewals at the providers' fakes, made as the test clock advances: at Stripe
(localstripe) a renewal is an off-session PaymentIntent on the customer's Stripe
counterpart; at Paystack (the fake validated against its spec) a ``charge_authorization``
of the saved reusable authorization."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from paygrid.dependencies import Deps
from paygrid.services.billing.subscriptions.schedule import STEP
from tests.conftest import SUCCESS_CARD, Api
from tests.fakes.paystack import FakeMerchant, PaystackFake
from tests.integration.test_saved_methods_paystack import SUCCESS_CARD as PAYSTACK_CARD
from tests.integration.test_saved_methods_paystack import _pay_on_hosted_page
from tests.integration.test_saved_methods_stripe import (
    SECRET_KEY,
    _intent_for,
    _saving,
    _stripe_customer,
)
from tests.integration.test_subscriptions import (
    T0,
    invoices_of,
    monthly_price,
    move,
    ok,
    subscribe,
)
from tests.integration.test_test_clocks import billing_worker, create_clock


async def test_stripe_renewals_are_off_session_payment_intents(
    api: Api, deps: Deps, localstripe_url: str
) -> None:
    account = ok(
        await api.post(
            "/v1/connector_accounts",
            {
                "provider": "stripe",
                "credentials": {"secret_key": SECRET_KEY},
                "api_base": localstripe_url,
            },
        )
    )
    clock = await create_clock(api, T0)
    email = f"renewals-{uuid.uuid4().hex[:12]}@example.com"  # localstripe is shared
    customer = ok(await api.post("/v1/customers", {"email": email, "test_clock": clock["id"]}))
    saving = ok(await api.post("/v1/payments", _saving(customer["id"], SUCCESS_CARD)))
    method = saving["payment_method"]
    settings = {"invoice_settings": {"default_payment_method": method}}
    ok(await api.post(f"/v1/customers/{customer['id']}", settings))
    price = await monthly_price(api, 2900)
    sub = await subscribe(api, customer["id"], price)
    assert sub["status"] == "active"

    async with billing_worker(deps, STEP):
        await move(api, clock["id"], T0 + timedelta(days=32))
    invoices = await invoices_of(api, customer["id"])
    assert [(i["billing_reason"], i["status"]) for i in invoices] == [
        ("subscription_create", "paid"),
        ("subscription_cycle", "paid"),
    ]
    payment = ok(await api.get(f"/v1/payments/{invoices[1]['payment']}"))
    assert (payment["off_session"], payment["connector_account"]) == (True, account["id"])
    async with httpx.AsyncClient(base_url=localstripe_url, auth=(SECRET_KEY, "")) as stripe:
        counterpart = await _stripe_customer(stripe, email)
        intent = await _intent_for(stripe, payment["attempts"][-1]["id"])
    assert (intent["status"], intent["amount"], intent["customer"]) == (
        "succeeded",
        2900,
        counterpart["id"],
    )


async def test_paystack_renewals_call_charge_authorization(
    api: Api,
    client: httpx.AsyncClient,
    deps: Deps,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    ok(
        await api.post(
            "/v1/connector_accounts",
            {
                "provider": "paystack",
                "credentials": {"secret_key": paystack_merchant.secret_key},
                "currencies": ["NGN"],
                "api_base": paystack_fake.base_url,
            },
        )
    )
    clock = await create_clock(api, T0)
    customer = ok(
        await api.post("/v1/customers", {"email": "ada@example.com", "test_clock": clock["id"]})
    )["id"]
    first = await _pay_on_hosted_page(
        api, client, paystack_merchant, customer, card_number=PAYSTACK_CARD
    )
    settings = {"invoice_settings": {"default_payment_method": first["payment_method"]}}
    ok(await api.post(f"/v1/customers/{customer}", settings))
    price = await monthly_price(api, 750_000, "NGN")
    assert (await subscribe(api, customer, price))["status"] == "active"

    async with billing_worker(deps, STEP):
        await move(api, clock["id"], T0 + timedelta(days=32))
    invoices = await invoices_of(api, customer)
    assert [i["status"] for i in invoices] == ["paid", "paid"]
    listed = (await paystack_merchant.api("GET", "/transaction?perPage=50")).json()["data"]
    for invoice in invoices:
        payment = ok(await api.get(f"/v1/payments/{invoice['payment']}"))
        assert payment["off_session"] is True
        reference = payment["attempts"][-1]["provider_reference"]
        charge = next(t for t in listed if t["reference"] == reference)
        assert charge["source"]["source"] == "merchantApi"  # charge_authorization
        assert (charge["status"], charge["amount"]) == ("success", 750_000)
