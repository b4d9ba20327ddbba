"""A provider is one package plus one entry in the registry's list: Thirdpay, which lives
only in ``tests/fakes/thirdpay``, is added to a registry and is then validated, stored,
routed to and sent webhooks over the API from its own facts, with no other change."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.app import create_app
from paygrid.connectors.registry import BUILTIN_PROVIDERS, ConnectorRegistry, ProviderCatalog
from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant
from tests.conftest import ERROR_FIELDS, SUCCESS_CARD, TEST_BASE_URL, Api, card, row_counts
from tests.fakes import thirdpay

SECRET = "tp_test_thirdpaySecret0001"


@pytest.fixture
async def third_api(deps: Deps, merchant: NewMerchant) -> AsyncIterator[Api]:
    """The app over a registry whose list is the built-in providers and Thirdpay."""
    registry = ConnectorRegistry(
        deps.connectors.simulator,
        deps.keys,
        providers=ProviderCatalog((*BUILTIN_PROVIDERS, thirdpay.FACTS)),
    )
    wired = dataclasses.replace(deps, connectors=registry)
    transport = httpx.ASGITransport(app=create_app(deps.settings, deps=wired))
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
        yield Api(http, merchant.key("secret", livemode=False))
    await registry.aclose()


def _error(response: httpx.Response, code: str, param: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= ERROR_FIELDS
    assert (error["code"], error["param"]) == (code, param)
    return error


async def _create(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/v1/connector_accounts", body)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_an_account_is_checked_against_the_providers_own_facts(
    third_api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    before = await row_counts(pool, merchant.id)
    stripe_key = {"provider": "thirdpay", "credentials": {"secret_key": "sk_test_abcdefgh"}}
    refused = _error(
        await third_api.post("/v1/connector_accounts", stripe_key),
        "credentials_invalid",
        "credentials.secret_key",
    )
    assert "tp_test_" in refused["message"]
    usd = {"provider": "thirdpay", "credentials": {"secret_key": SECRET}, "currencies": ["USD"]}
    refused = _error(
        await third_api.post("/v1/connector_accounts", usd), "currency_not_supported", "currencies"
    )
    assert "it takes EUR, GBP" in refused["message"]
    assert await row_counts(pool, merchant.id) == before

    created = await _create(
        third_api, {"provider": "thirdpay", "credentials": {"secret_key": SECRET}}
    )
    assert created["provider"] == "thirdpay"
    assert created["currencies"] == ["EUR", "GBP"]
    assert created["capabilities"] == ["refund", "card_tokenization", "webhooks"]
    listed = await third_api.get("/v1/connector_accounts", provider="thirdpay")
    assert [a["id"] for a in listed.json()["data"]] == [created["id"]]


async def test_routing_uses_the_providers_default_order_and_connector(
    third_api: Api, deps: Deps
) -> None:
    # An older simulator account for both currencies: the simulator ranks before Thirdpay,
    # but Thirdpay declares that it comes first for EUR.
    simulator = await _create(third_api, {"provider": "simulator", "currencies": ["EUR", "GBP"]})
    third = await _create(
        third_api, {"provider": "thirdpay", "credentials": {"secret_key": SECRET}}
    )

    body = {"amount": 2_500, "confirm": True, "payment_method_data": card(SUCCESS_CARD)}
    response = await third_api.post("/v1/payments", {**body, "currency": "EUR"})
    assert response.status_code == 200, response.text
    paid = response.json()
    assert paid["status"] == "succeeded"
    assert paid["connector_account"] == third["id"]
    assert [(a["connector"], a["status"]) for a in paid["attempts"]] == [("thirdpay", "captured")]

    response = await third_api.post("/v1/payments", {**body, "currency": "GBP"})
    assert response.status_code == 200, response.text
    assert response.json()["connector_account"] == simulator["id"]


async def test_its_signature_header_is_kept_with_an_inbound_event(
    third_api: Api, pool: asyncpg.Pool
) -> None:
    third = await _create(
        third_api, {"provider": "thirdpay", "credentials": {"secret_key": SECRET}}
    )
    raw = json.dumps({"id": "tp_evt_1", "type": "account.updated"}).encode()
    signature = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    response = await third_api.http.post(
        f"/v1/provider_webhooks/{third['id']}",
        content=raw,
        headers={
            "x-thirdpay-signature": signature,
            "x-other": "dropped",
            "content-type": "application/json",
        },
    )
    assert response.status_code == 200, response.text
    stored = await pool.fetchval(
        "SELECT headers FROM provider_webhook_events WHERE connector_account_id = $1", third["id"]
    )
    assert stored == {"x-thirdpay-signature": signature}


async def test_without_it_in_the_list_the_provider_is_unknown(api: Api) -> None:
    response = await api.post(
        "/v1/connector_accounts", {"provider": "thirdpay", "credentials": {"secret_key": SECRET}}
    )
    error = _error(response, "parameter_invalid", "provider")
    assert error["message"] == (
        "Invalid provider: Input should be 'stripe', 'paystack' or 'simulator'."
    )
