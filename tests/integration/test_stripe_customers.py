"""Saved cards at Stripe (localstripe): a card tokenized at a Stripe account is attached to
the customer's Stripe counterpart, created once, and later payments with it are charged as
that customer's."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import SUCCESS_CARD, Api, card

SECRET_KEY = "sk_test_customers0000"


async def test_attach_creates_the_stripe_customer_once_and_charges_as_it(
    api: Api, localstripe_url: str
) -> None:
    account = await api.post(
        "/v1/connector_accounts",
        {
            "provider": "stripe",
            "credentials": {"secret_key": SECRET_KEY},
            "api_base": localstripe_url,
        },
    )
    assert account.status_code == 200, account.text
    account_id = account.json()["id"]
    email = f"ada-{uuid.uuid4().hex[:12]}@example.com"  # localstripe is shared by the session
    customer = (await api.post("/v1/customers", {"email": email})).json()

    first = await api.post(
        "/v1/payments",
        {
            "amount": 1500,
            "currency": "usd",
            "confirm": True,
            "payment_method_data": card(SUCCESS_CARD),
        },
    )
    assert first.status_code == 200, first.text
    paid = first.json()
    assert (paid["status"], paid["connector_account"]) == ("succeeded", account_id)
    pm = paid["payment_method"]

    attached = await api.post(f"/v1/payment_methods/{pm}/attach", {"customer": customer["id"]})
    assert attached.status_code == 200, attached.text
    again = await api.post(f"/v1/payment_methods/{pm}/attach", {"customer": customer["id"]})
    assert again.status_code == 200, again.text

    async with httpx.AsyncClient(base_url=localstripe_url, auth=(SECRET_KEY, "")) as stripe:
        customers = (await stripe.get("/v1/customers", params={"email": email})).json()
        ours = [c for c in customers["data"] if c.get("email") == email]
        assert len(ours) == 1, "the Stripe customer is created once"
        methods = (
            await stripe.get(
                "/v1/payment_methods", params={"customer": ours[0]["id"], "type": "card"}
            )
        ).json()
        assert len(methods["data"]) == 1
        assert methods["data"][0]["card"]["last4"] == "4242"

    second = await api.post(
        "/v1/payments",
        {
            "amount": 700,
            "currency": "usd",
            "confirm": True,
            "customer": customer["id"],
            "payment_method": pm,
        },
    )
    assert second.status_code == 200, second.text
    assert (second.json()["status"], second.json()["connector_account"]) == (
        "succeeded",
        account_id,
    )
    async with httpx.AsyncClient(base_url=localstripe_url, auth=(SECRET_KEY, "")) as stripe:
        intents = (await stripe.get("/v1/payment_intents", params={"limit": 100})).json()
        charged = [i for i in intents["data"] if i["amount"] == 700 and i["status"] == "succeeded"]
        assert charged and charged[-1]["customer"] == ours[0]["id"]


async def test_a_stripe_js_token_is_charged_at_its_account(api: Api, localstripe_url: str) -> None:
    """Live merchants collect cards with Stripe.js and send the PaymentMethod id; paygrid
    asks Stripe which card it is and charges it at that account only."""
    account = await api.post(
        "/v1/connector_accounts",
        {
            "provider": "stripe",
            "credentials": {"secret_key": SECRET_KEY},
            "api_base": localstripe_url,
        },
    )
    account_id = account.json()["id"]
    async with httpx.AsyncClient(base_url=localstripe_url, auth=(SECRET_KEY, "")) as stripe:
        made = await stripe.post(
            "/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": "5555555555554444",
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
            },
        )
        assert made.status_code == 200, made.text
        token = made.json()["id"]

    def body(account: str, token: str) -> dict[str, object]:
        return {
            "amount": 1200,
            "currency": "usd",
            "confirm": True,
            "payment_method_data": {
                "type": "provider_token",
                "provider_token": {"connector_account": account, "token": token},
            },
        }

    paid = await api.post("/v1/payments", body(account_id, token))
    assert paid.status_code == 200, paid.text
    assert (paid.json()["status"], paid.json()["connector_account"]) == ("succeeded", account_id)
    method = (await api.get(f"/v1/payment_methods/{paid.json()['payment_method']}")).json()
    assert method["card"]["last4"] == "4444"

    unknown = await api.post("/v1/payments", body(account_id, "pm_does_not_exist"))
    assert unknown.status_code == 400, unknown.text
    assert unknown.json()["error"]["param"] == "payment_method_data[provider_token][token]"
    elsewhere = await api.post("/v1/payments", body("ca_not_mine", token))
    assert elsewhere.status_code == 400
    assert elsewhere.json()["error"]["code"] == "resource_missing"
    mixed = await api.post(
        "/v1/payments",
        {
            **body(account_id, token),
            "payment_method_data": {
                "type": "provider_token",
                "card": {
                    "number": "4242424242424242",
                    "exp_month": 1,
                    "exp_year": 2034,
                    "cvc": "1",
                },
            },
        },
    )
    assert mixed.status_code == 400
