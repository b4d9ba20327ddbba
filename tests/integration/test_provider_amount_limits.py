"""Amounts a provider is known to refuse are refused before it is called, when the route
leads to it (Stripe, on localstripe): nothing is sent, nothing is written, and a route that
goes on to another account sends the payment there instead."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from paygrid.services.merchants import NewMerchant
from tests.conftest import SUCCESS_CARD, Api, card, row_counts

SECRET_KEY = "sk_test_amountlimits00"


async def _stripe_account(api: Api, localstripe_url: str) -> str:
    account = await api.post(
        "/v1/connector_accounts",
        {
            "provider": "stripe",
            "credentials": {"secret_key": SECRET_KEY},
            "api_base": localstripe_url,
        },
    )
    assert account.status_code == 200, account.text
    account_id: str = account.json()["id"]
    return account_id


async def _intents_for(localstripe_url: str, amount: int) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=localstripe_url, auth=(SECRET_KEY, "")) as stripe:
        intents = (await stripe.get("/v1/payment_intents", params={"limit": 100})).json()
    return [i for i in intents["data"] if i["amount"] == amount]


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [(100_000_000, "USD", "amount_too_large"), (12_345, "KWD", "amount_invalid")],
)
async def test_stripe_route_refuses_what_stripe_would_refuse_before_calling_it(
    api: Api,
    localstripe_url: str,
    pool: asyncpg.Pool,
    merchant: NewMerchant,
    amount: int,
    currency: str,
    code: str,
) -> None:
    await _stripe_account(api, localstripe_url)
    before = await row_counts(pool, merchant.id)
    body = {
        "amount": amount,
        "currency": currency,
        "confirm": True,
        "payment_method_data": card(SUCCESS_CARD),
        "description": f"limits-{uuid.uuid4().hex[:8]}",
    }
    response = await api.post("/v1/payments", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, "amount")
    assert "Stripe" in error["message"]
    assert await row_counts(pool, merchant.id) == before
    assert await _intents_for(localstripe_url, amount) == []


async def test_a_route_that_goes_on_sends_the_payment_to_the_next_account(
    api: Api, localstripe_url: str
) -> None:
    await _stripe_account(api, localstripe_url)
    simulator = await api.post("/v1/connector_accounts", {"provider": "simulator"})
    assert simulator.status_code == 200, simulator.text
    body = {
        "amount": 100_000_010,
        "currency": "USD",
        "confirm": True,
        "payment_method_data": card(SUCCESS_CARD),  # both accounts take raw cards in test mode
    }
    paid = await api.post("/v1/payments", body)
    assert paid.status_code == 200, paid.text
    assert (paid.json()["status"], paid.json()["connector_account"]) == (
        "succeeded",
        simulator.json()["id"],
    )
