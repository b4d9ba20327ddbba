"""Saved methods and off-session charges at Stripe (localstripe): a method saved with
``setup_future_usage`` is attached to the customer's Stripe counterpart, off-session charges
are PaymentIntents confirmed with ``off_session=true`` on that customer, a card that needs
authentication leaves the payment ``requires_action`` with ``authentication_required``, and
setup intents become Stripe SetupIntents."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import SUCCESS_CARD, Api, card

SECRET_KEY = "sk_test_savedmethods00"
ALWAYS_CARD = "4000002760003184"


async def _stripe_setup(api: Api, localstripe_url: str) -> tuple[str, str, str]:
    account = await api.post(
        "/v1/connector_accounts",
        {
            "provider": "stripe",
            "credentials": {"secret_key": SECRET_KEY},
            "api_base": localstripe_url,
        },
    )
    assert account.status_code == 200, account.text
    email = f"saved-{uuid.uuid4().hex[:12]}@example.com"  # localstripe is shared
    customer = (await api.post("/v1/customers", {"email": email})).json()["id"]
    return account.json()["id"], customer, email


def _saving(customer: str, number: str) -> dict[str, Any]:
    return {
        "amount": 1500,
        "currency": "usd",
        "confirm": True,
        "customer": customer,
        "payment_method_data": card(number),
        "setup_future_usage": "off_session",
    }


def _off_session(customer: str, method: str, amount: int) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": "usd",
        "confirm": True,
        "off_session": True,
        "customer": customer,
        "payment_method": method,
    }


async def _stripe_customer(stripe: httpx.AsyncClient, email: str) -> dict[str, Any]:
    found = (await stripe.get("/v1/customers", params={"email": email})).json()["data"]
    ours = [c for c in found if c.get("email") == email]
    assert len(ours) == 1
    return dict(ours[0])


async def _intent_for(stripe: httpx.AsyncClient, attempt_id: str) -> dict[str, Any]:
    after: dict[str, str] = {}
    while True:
        page = (await stripe.get("/v1/payment_intents", params={"limit": 100, **after})).json()
        for intent in page["data"]:
            if intent["metadata"].get("paygrid_attempt_id") == attempt_id:
                return dict(intent)
        assert page["has_more"], f"no PaymentIntent for {attempt_id}"
        after = {"starting_after": page["data"][-1]["id"]}


async def test_saved_at_stripe_then_charged_off_session_as_the_customer(
    api: Api, localstripe_url: str
) -> None:
    account_id, customer, email = await _stripe_setup(api, localstripe_url)
    first = await api.post("/v1/payments", _saving(customer, SUCCESS_CARD))
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["connector_account"]) == ("succeeded", account_id)
    method = first.json()["payment_method"]
    saved = (await api.get(f"/v1/payment_methods/{method}")).json()
    assert saved["customer"] == customer and saved["mandate"] is not None

    charged = await api.post("/v1/payments", _off_session(customer, method, 777))
    assert charged.status_code == 200, charged.text
    payment = charged.json()
    assert (payment["status"], payment["off_session"]) == ("succeeded", True)
    async with httpx.AsyncClient(base_url=localstripe_url, auth=(SECRET_KEY, "")) as stripe:
        counterpart = await _stripe_customer(stripe, email)
        methods = (
            await stripe.get(
                "/v1/payment_methods", params={"customer": counterpart["id"], "type": "card"}
            )
        ).json()["data"]
        assert [m["card"]["last4"] for m in methods] == ["4242"]
        intent = await _intent_for(stripe, payment["attempts"][-1]["id"])
        assert (intent["status"], intent["amount"]) == ("succeeded", 777)
        assert intent["customer"] == counterpart["id"]

    # A Stripe SetupIntent for the saved card succeeds too, with a new mandate.
    setup = await api.post(
        "/v1/setup_intents", {"customer": customer, "payment_method": method, "confirm": True}
    )
    assert setup.status_code == 200, setup.text
    assert (setup.json()["status"], setup.json()["connector_account"]) == (
        "succeeded",
        account_id,
    )
    assert setup.json()["mandate"] not in (None, saved["mandate"])


async def test_an_off_session_charge_needing_authentication_waits_at_stripe(
    api: Api, client: httpx.AsyncClient, localstripe_url: str
) -> None:
    _, customer, _ = await _stripe_setup(api, localstripe_url)
    first = (await api.post("/v1/payments", _saving(customer, ALWAYS_CARD))).json()
    assert first["status"] == "requires_action"
    async with httpx.AsyncClient(base_url=localstripe_url, auth=(SECRET_KEY, "")) as stripe:
        intent = await _intent_for(stripe, first["attempts"][-1]["id"])
        authenticated = await stripe.post(
            f"/v1/payment_intents/{intent['id']}/_authenticate",
            data={"client_secret": intent["client_secret"], "success": "true"},
        )
        assert authenticated.status_code == 200, authenticated.text
    await client.get(f"/payments/{first['id']}/return")  # the customer is back
    assert (await api.get(f"/v1/payments/{first['id']}")).json()["status"] == "succeeded"
    method = first["payment_method"]
    assert (await api.get(f"/v1/payment_methods/{method}")).json()["customer"] == customer

    refused = await api.post("/v1/payments", _off_session(customer, method, 900))
    assert refused.status_code == 402, refused.text
    assert refused.json()["error"]["code"] == "authentication_required"
    payment = (await api.get(f"/v1/payments/{refused.json()['error']['payment_id']}")).json()
    assert payment["status"] == "requires_action"
    assert payment["last_payment_error"]["code"] == "authentication_required"
