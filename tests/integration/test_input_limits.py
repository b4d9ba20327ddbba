"""Inputs the second probe found accepted or answered badly: redirect URLs that are not web
URLs, routing-rule amounts past any currency's maximum, currency codes that only fold to
ASCII, and a refund of a payment that is already fully refunded."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from paygrid.money import CURRENCIES, MAX_AMOUNT
from paygrid.services.merchants import NewMerchant
from tests.conftest import Api, auth, confirmed_payment, row_counts

BAD_RETURN_URLS = [
    "javascript:alert(document.cookie)",
    "JAVASCRIPT:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "/checkout/done",
    "//evil.example/done",
    "done.html",
    "https://user:pw@shop.example/done",
]


@pytest.mark.parametrize("url", BAD_RETURN_URLS)
async def test_create_refuses_a_return_url_that_is_not_a_web_url(
    api: Api, pool: asyncpg.Pool, merchant: NewMerchant, url: str
) -> None:
    before = await row_counts(pool, merchant.id)
    response = await api.post(
        "/v1/payments", confirmed_payment(payment_method="pm_card_visa", return_url=url)
    )
    assert response.status_code == 400, response.text
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
        "parameter_invalid",
        "return_url",
    )
    assert await row_counts(pool, merchant.id) == before


@pytest.mark.parametrize("url", BAD_RETURN_URLS)
async def test_confirm_refuses_a_return_url_that_is_not_a_web_url(api: Api, url: str) -> None:
    created = await api.post("/v1/payments", {"amount": 2000, "currency": "USD"})
    payment = created.json()
    response = await api.post(
        f"/v1/payments/{payment['id']}/confirm",
        {"payment_method": "pm_card_visa", "return_url": url},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "return_url"
    after = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert (after["status"], after["attempts"]) == ("requires_payment_method", [])


async def test_http_return_urls_are_for_test_mode_only(
    api: Api, client: httpx.AsyncClient, merchant: NewMerchant
) -> None:
    local = "http://localhost:3000/done"
    accepted = await api.post(
        "/v1/payments", {"amount": 2000, "currency": "USD", "return_url": local}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["return_url"] == local
    live = await client.post(
        "/v1/payments",
        json={"amount": 2000, "currency": "USD", "return_url": "http://shop.example/done"},
        headers=auth(merchant.key("secret", livemode=True)),
    )
    assert live.status_code == 400, live.text
    assert live.json()["error"]["param"] == "return_url"
    session = await client.post(
        "/v1/checkout_sessions",
        json={
            "amount": 2000,
            "currency": "USD",
            "success_url": "http://shop.example/thanks",
            "cancel_url": "https://shop.example/cart",
        },
        headers=auth(merchant.key("secret", livemode=True)),
    )
    assert session.status_code == 400, session.text
    assert session.json()["error"]["param"] == "success_url"


async def test_the_3ds_return_never_redirects_to_a_stored_script_url(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    created = (
        await api.post(
            "/v1/payments",
            {
                "amount": 4200,
                "currency": "USD",
                "confirm": True,
                "payment_method": "pm_card_authenticationRequired",
                "return_url": "https://shop.example/done",
            },
        )
    ).json()
    # A row saved before return URLs were checked.
    await pool.execute(
        "UPDATE payments SET return_url = 'javascript:alert(1)' WHERE id = $1", created["id"]
    )
    path = urlsplit(created["next_action"]["redirect_to_url"]["url"]).path
    decided = await client.post(
        path,
        content="decision=approve",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    back = await client.get(urlsplit(decided.headers["location"]).path)
    assert "javascript" not in back.headers.get("location", "").lower()
    assert back.status_code == 200, back.status_code


# -- routing rule amounts ----------------------------------------------------------------------


async def _simulator_account(api: Api) -> str:
    response = await api.post("/v1/connector_accounts", {"provider": "simulator"})
    assert response.status_code == 200, response.text
    account_id: str = response.json()["id"]
    return account_id


@pytest.mark.parametrize("bound", ["gte", "lte"])
async def test_routing_rule_amounts_are_bounded_by_the_largest_currency_amount(
    api: Api, bound: str
) -> None:
    assert max(c.max_amount for c in CURRENCIES.values()) == MAX_AMOUNT
    account = await _simulator_account(api)
    destinations = [{"connector_account": account}]
    for amount in (2**64, 2**63, MAX_AMOUNT + 1):
        refused = await api.post(
            "/v1/routing_rules",
            {"conditions": {"amount": {bound: amount}}, "destinations": destinations},
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == f"conditions[amount][{bound}]"
    accepted = await api.post(
        "/v1/routing_rules",
        {"conditions": {"amount": {bound: MAX_AMOUNT}}, "destinations": destinations},
    )
    assert accepted.status_code == 200, accepted.text
    updated = await api.post(
        f"/v1/routing_rules/{accepted.json()['id']}",
        {"conditions": {"amount": {bound: 2**64}}},
    )
    assert updated.status_code == 400, updated.text


# -- currency codes ----------------------------------------------------------------------------

# "u\u017fd" (long s) upper-cases to "USD"; so do the full-width letters under NFKC.
LOOKALIKES = ["u\u017fd", "u\u017fD", "\uff35\uff33\uff24", "usd\n", " usd", "us", "usdd", "u.d"]


@pytest.mark.parametrize("currency", LOOKALIKES)
async def test_currency_codes_are_three_ascii_letters_everywhere(
    api: Api, pool: asyncpg.Pool, merchant: NewMerchant, currency: str
) -> None:
    before = await row_counts(pool, merchant.id)
    bodies: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/payments", {"amount": 2000, "currency": currency}, "currency"),
        (
            "/v1/checkout_sessions",
            {
                "amount": 2000,
                "currency": currency,
                "success_url": "https://shop.example/thanks",
                "cancel_url": "https://shop.example/cart",
            },
            "currency",
        ),
        (
            "/v1/connector_accounts",
            {"provider": "simulator", "currencies": [currency]},
            "currencies",
        ),
        (
            "/v1/routing_rules",
            {
                "conditions": {"currency": [currency]},
                "destinations": [{"connector_account": "ca_missing"}],
            },
            "conditions[currency]",
        ),
    ]
    for path, body, param in bodies:
        response = await api.post(path, body)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"]["param"].startswith(param), (path, response.text)
    assert await row_counts(pool, merchant.id) == before


async def test_lower_case_ascii_currency_codes_still_work(api: Api) -> None:
    response = await api.post("/v1/payments", {"amount": 2000, "currency": "usd"})
    assert response.status_code == 200, response.text
    assert response.json()["currency"] == "USD"


# -- refunds -----------------------------------------------------------------------------------


async def test_refunding_a_fully_refunded_payment_says_so(api: Api) -> None:
    payment = (await api.post("/v1/payments", confirmed_payment(amount=3000))).json()
    full = await api.post("/v1/refunds", {"payment": payment["id"]})
    assert full.status_code == 200, full.text
    for body in ({"payment": payment["id"]}, {"payment": payment["id"], "amount": 1}):
        again = await api.post("/v1/refunds", body)
        assert again.status_code == 422, again.text
        error = again.json()["error"]
        assert error["code"] == "charge_already_refunded"
        assert "already been fully refunded" in error["message"]
        assert "(0)" not in error["message"]
