"""API key authentication and key-kind permissions.

401 for a missing, malformed, unknown or revoked key; 403 for a publishable key on anything
but tokenizing a card; ``last_used_at`` recorded on use. Rejected requests write nothing.
"""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.app import create_app
from paygrid.bootstrap import build_deps
from paygrid.config import Settings
from paygrid.services.merchants import NewMerchant, create_merchant, revoke_key
from tests.conftest import ERROR_FIELDS, SUCCESS_CARD, TEST_BASE_URL, Api, auth, card, row_counts


def assert_error(response: httpx.Response, status: int, error_type: str, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == ERROR_FIELDS
    assert (error["type"], error["code"]) == (error_type, code)
    assert error["message"]
    assert error["param"] is None
    assert error["request_id"] == response.headers["x-request-id"]


def key_id(merchant: NewMerchant, kind: str, livemode: bool) -> str:
    return next(k.id for k in merchant.keys if k.kind == kind and k.livemode == livemode)


async def last_used(pool: asyncpg.Pool, merchant: NewMerchant) -> dict[tuple[str, bool], Any]:
    rows = await pool.fetch(
        "SELECT kind, livemode, last_used_at FROM api_keys WHERE merchant_id = $1", merchant.id
    )
    return {(r["kind"], r["livemode"]): r["last_used_at"] for r in rows}


def _random(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


def _tampered(key: str) -> str:
    """Same lookup prefix as a real key, different secret."""
    return key[:-1] + ("A" if key[-1] != "A" else "B")


# (id, Authorization header built from the merchant's real secret test key, expected code)
BAD_HEADERS: list[tuple[str, Callable[[str], str | None], str]] = [
    ("missing", lambda key: None, "api_key_missing"),
    ("empty", lambda key: "", "api_key_missing"),
    ("basic-scheme", lambda key: "Basic dXNlcjpwYXNzd29yZA==", "api_key_invalid"),
    ("token-scheme-real-key", lambda key: f"Token {key}", "api_key_invalid"),
    ("key-without-scheme", lambda key: key, "api_key_invalid"),
    ("bearer-no-token", lambda key: "Bearer", "api_key_invalid"),
    ("bearer-blank-token", lambda key: "Bearer    ", "api_key_invalid"),
    ("garbage", lambda key: "Bearer not-a-key", "api_key_invalid"),
    ("prefix-only", lambda key: "Bearer sk_test_", "api_key_invalid"),
    ("too-short", lambda key: "Bearer sk_test_abc", "api_key_invalid"),
    ("unknown-well-formed", lambda key: f"Bearer sk_test_{_random(32)}", "api_key_invalid"),
    ("unknown-live", lambda key: f"Bearer sk_live_{_random(32)}", "api_key_invalid"),
    ("known-prefix-wrong-secret", lambda key: f"Bearer {_tampered(key)}", "api_key_invalid"),
    ("real-key-plus-suffix", lambda key: f"Bearer {key}x", "api_key_invalid"),
    ("real-key-truncated", lambda key: f"Bearer {key[:-1]}", "api_key_invalid"),
]


@pytest.mark.parametrize(("header", "code"), [pytest.param(h, c, id=i) for i, h, c in BAD_HEADERS])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/v1/customers", {"name": "Eve"}, id="write"),
        pytest.param("GET", "/v1/payments", None, id="read"),
    ],
)
async def test_bad_credentials_are_401_and_write_nothing(
    client: httpx.AsyncClient,
    merchant: NewMerchant,
    pool: asyncpg.Pool,
    header: Callable[[str], str | None],
    code: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    value = header(merchant.key("secret", livemode=False))
    headers = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    if value is not None:
        headers["Authorization"] = value
    before = await row_counts(pool, merchant.id)
    response = await client.request(method, path, json=body, headers=headers)
    assert_error(response, 401, "authentication_error", code)
    assert await row_counts(pool, merchant.id) == before
    assert all(v is None for v in (await last_used(pool, merchant)).values())


async def test_unknown_v1_route_still_requires_a_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/no_such_thing")
    assert_error(response, 401, "authentication_error", "api_key_missing")


async def test_scheme_is_case_insensitive(client: httpx.AsyncClient, merchant: NewMerchant) -> None:
    key = merchant.key("secret", livemode=False)
    response = await client.get("/v1/customers", headers={"Authorization": f"bearer {key}"})
    assert response.status_code == 200, response.text


async def test_revoked_key_is_rejected_immediately(
    client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    api = Api(client, merchant.key("secret", livemode=False))
    created = await api.post("/v1/customers", {"name": "Before revocation"})
    assert created.status_code == 200, created.text
    revoked = await revoke_key(pool, key_id(merchant, "secret", livemode=False))
    assert revoked.revoked_at is not None
    before = await row_counts(pool, merchant.id)
    for response in (
        await api.get("/v1/customers"),
        await api.get(f"/v1/customers/{created.json()['id']}"),
        await api.post("/v1/customers", {"name": "After revocation"}),
        await api.delete(f"/v1/customers/{created.json()['id']}"),
    ):
        assert_error(response, 401, "authentication_error", "api_key_revoked")
    assert await row_counts(pool, merchant.id) == before
    # Only that key: the merchant's other keys keep working.
    live = Api(client, merchant.key("secret", livemode=True))
    assert (await live.get("/v1/customers")).status_code == 200
    publishable = Api(client, merchant.key("publishable", livemode=False))
    assert (await publishable.post("/v1/payment_methods", card(SUCCESS_CARD))).status_code == 200


async def test_revoked_publishable_key_cannot_tokenize(
    client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    await revoke_key(pool, key_id(merchant, "publishable", livemode=False))
    before = await row_counts(pool, merchant.id)
    response = await Api(client, merchant.key("publishable", livemode=False)).post(
        "/v1/payment_methods", card(SUCCESS_CARD)
    )
    assert_error(response, 401, "authentication_error", "api_key_revoked")
    assert await row_counts(pool, merchant.id) == before
    assert (await last_used(pool, merchant))[("publishable", False)] is None


async def test_revoking_twice_keeps_the_first_revocation_time(
    merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    first = await revoke_key(pool, key_id(merchant, "secret", livemode=True))
    second = await revoke_key(pool, key_id(merchant, "secret", livemode=True))
    assert first.revoked_at == second.revoked_at


async def test_last_used_at_is_recorded_per_key(
    client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    assert set((await last_used(pool, merchant)).values()) == {None}
    response = await Api(client, merchant.key("secret", livemode=False)).get("/v1/payments")
    assert response.status_code == 200
    used = await last_used(pool, merchant)
    assert used[("secret", False)] is not None
    assert [used[k] for k in (("secret", True), ("publishable", False), ("publishable", True))] == [
        None,
        None,
        None,
    ]
    created_at = await pool.fetchval(
        "SELECT created_at FROM api_keys WHERE id = $1", key_id(merchant, "secret", False)
    )
    assert used[("secret", False)] >= created_at
    tokenized = await Api(client, merchant.key("publishable", livemode=False)).post(
        "/v1/payment_methods", card(SUCCESS_CARD)
    )
    assert tokenized.status_code == 200, tokenized.text
    assert (await last_used(pool, merchant))[("publishable", False)] is not None


# -- publishable keys ----------------------------------------------------------------------------


@dataclass
class Shop:
    merchant: NewMerchant
    secret: Api
    publishable: Api
    ids: dict[str, str]


@pytest.fixture(scope="module")
async def shop(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[Shop]:
    app = create_app(settings, deps=build_deps(pool, settings))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
        merchant = await create_merchant(pool, f"Publishable {uuid.uuid4().hex[:6]}")
        secret = Api(http, merchant.key("secret", livemode=False))
        customer = (await secret.post("/v1/customers", {"name": "Ada"})).json()
        pm = (await secret.post("/v1/payment_methods", card(SUCCESS_CARD))).json()
        paid = (
            await secret.post(
                "/v1/payments",
                {"amount": 5000, "currency": "usd", "confirm": True, "payment_method": pm["id"]},
            )
        ).json()
        refund = (await secret.post("/v1/refunds", {"payment": paid["id"], "amount": 100})).json()
        authorized = (
            await secret.post(
                "/v1/payments",
                {
                    "amount": 3000,
                    "currency": "usd",
                    "confirm": True,
                    "capture_method": "manual",
                    "payment_method": "pm_card_visa",
                },
            )
        ).json()
        draft = (await secret.post("/v1/payments", {"amount": 1000, "currency": "usd"})).json()
        checkout_session = (
            await secret.post(
                "/v1/checkout_sessions",
                {
                    "amount": 1000,
                    "currency": "usd",
                    "success_url": "https://shop.example/ok",
                    "cancel_url": "https://shop.example/cart",
                },
            )
        ).json()
        assert (paid["status"], authorized["status"]) == ("succeeded", "requires_capture")
        event = (await secret.get("/v1/events", limit=1)).json()["data"][0]
        endpoint = (
            await secret.post(
                "/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/x", "enabled_events": ["*"]}
            )
        ).json()
        account = (await secret.post("/v1/connector_accounts", {"provider": "simulator"})).json()
        rule = (
            await secret.post(
                "/v1/routing_rules", {"destinations": [{"connector_account": account["id"]}]}
            )
        ).json()
        product = (await secret.post("/v1/products", {"name": "Mug"})).json()
        price = (
            await secret.post(
                "/v1/prices", {"product": product["id"], "currency": "usd", "unit_amount": 900}
            )
        ).json()
        saving = (await secret.post("/v1/payment_methods", card(SUCCESS_CARD))).json()
        setup = (
            await secret.post(
                "/v1/setup_intents",
                {"customer": customer["id"], "payment_method": saving["id"], "confirm": True},
            )
        ).json()
        pending_setup = (
            await secret.post("/v1/setup_intents", {"customer": customer["id"]})
        ).json()
        ids = {
            "missing": "id_that_does_not_exist",
            "setup": pending_setup["id"],
            "mandate": setup["mandate"],
            "product": product["id"],
            "price": price["id"],
            "key": merchant.keys[0].id,
            "account": account["id"],
            "rule": rule["id"],
            "customer": customer["id"],
            "pm": pm["id"],
            "payment": paid["id"],
            "refund": refund["id"],
            "authorized": authorized["id"],
            "draft": draft["id"],
            "checkout_session": checkout_session["id"],
            "event": event["id"],
            "endpoint": endpoint["id"],
        }
        yield Shop(merchant, secret, Api(http, merchant.key("publishable", livemode=False)), ids)


# Every /v1 route but POST /v1/payment_methods: (method, path, body, the object it would touch).
FORBIDDEN = [
    ("POST", "/v1/payments", {"amount": 1000, "currency": "usd"}, None),
    ("GET", "/v1/payments", None, None),
    ("GET", "/v1/payments/{payment}", None, "/v1/payments/{payment}"),
    (
        "POST",
        "/v1/payments/{draft}/confirm",
        {"payment_method": "pm_card_visa"},
        "/v1/payments/{draft}",
    ),
    ("POST", "/v1/payments/{authorized}/capture", {}, "/v1/payments/{authorized}"),
    ("POST", "/v1/payments/{authorized}/cancel", {}, "/v1/payments/{authorized}"),
    (
        "POST",
        "/v1/checkout_sessions",
        {
            "amount": 1000,
            "currency": "usd",
            "success_url": "https://shop.example/ok",
            "cancel_url": "https://shop.example/cart",
        },
        None,
    ),
    ("GET", "/v1/checkout_sessions", None, None),
    (
        "GET",
        "/v1/checkout_sessions/{checkout_session}",
        None,
        "/v1/checkout_sessions/{checkout_session}",
    ),
    (
        "POST",
        "/v1/checkout_sessions/{checkout_session}/expire",
        {},
        "/v1/checkout_sessions/{checkout_session}",
    ),
    ("POST", "/v1/refunds", {"payment": "{payment}", "amount": 100}, "/v1/payments/{payment}"),
    ("GET", "/v1/refunds", None, None),
    ("GET", "/v1/refunds/{refund}", None, "/v1/refunds/{refund}"),
    ("POST", "/v1/customers", {"name": "Eve"}, None),
    ("GET", "/v1/customers", None, None),
    ("GET", "/v1/customers/{customer}", None, "/v1/customers/{customer}"),
    ("POST", "/v1/customers/{customer}", {"name": "Eve"}, "/v1/customers/{customer}"),
    ("DELETE", "/v1/customers/{customer}", None, "/v1/customers/{customer}"),
    ("GET", "/v1/payment_methods", None, None),
    ("GET", "/v1/payment_methods/{pm}", None, "/v1/payment_methods/{pm}"),
    (
        "POST",
        "/v1/payment_methods/{pm}/attach",
        {"customer": "{customer}"},
        "/v1/payment_methods/{pm}",
    ),
    ("POST", "/v1/payment_methods/{pm}/detach", {}, "/v1/payment_methods/{pm}"),
    ("GET", "/v1/events", None, None),
    ("GET", "/v1/events/{event}", None, "/v1/events/{event}"),
    (
        "POST",
        "/v1/webhook_endpoints",
        {"url": "http://127.0.0.1:9/y", "enabled_events": ["*"]},
        None,
    ),
    ("GET", "/v1/webhook_endpoints", None, None),
    ("GET", "/v1/webhook_endpoints/{endpoint}", None, "/v1/webhook_endpoints/{endpoint}"),
    (
        "POST",
        "/v1/webhook_endpoints/{endpoint}",
        {"description": "x"},
        "/v1/webhook_endpoints/{endpoint}",
    ),
    ("DELETE", "/v1/webhook_endpoints/{endpoint}", None, "/v1/webhook_endpoints/{endpoint}"),
    (
        "POST",
        "/v1/webhook_endpoints/{endpoint}/rotate_secret",
        {},
        "/v1/webhook_endpoints/{endpoint}",
    ),
    ("GET", "/v1/webhook_endpoints/{endpoint}/deliveries", None, None),
    ("POST", "/v1/webhook_endpoints/{endpoint}/test", {}, None),
    ("POST", "/v1/webhook_endpoints/{endpoint}/replay", {}, None),
    ("GET", "/v1/events/{event}/deliveries", None, None),
    ("POST", "/v1/events/{event}/redeliver", {}, None),
    ("GET", "/v1/admin/queues", None, None),
    ("POST", "/v1/admin/webhooks/pause", {}, None),
    ("POST", "/v1/admin/webhooks/resume", {}, None),
    ("POST", "/v1/admin/webhooks/retry_failed", {}, None),
    ("POST", "/v1/connector_accounts", {"provider": "simulator"}, None),
    ("GET", "/v1/connector_accounts", None, None),
    ("GET", "/v1/connector_accounts/{account}", None, None),
    ("POST", "/v1/connector_accounts/{account}", {}, None),
    ("POST", "/v1/connector_accounts/{account}/disable", {}, None),
    ("POST", "/v1/connector_accounts/{account}/enable", {}, None),
    ("POST", "/v1/routing_rules", {"destinations": [{"connector_account": "{account}"}]}, None),
    ("GET", "/v1/routing_rules", None, None),
    ("GET", "/v1/routing_rules/{rule}", None, None),
    ("POST", "/v1/routing_rules/{rule}", {}, None),
    ("DELETE", "/v1/routing_rules/{rule}", None, None),
    ("POST", "/v1/api_keys", {"role": "viewer"}, None),
    ("GET", "/v1/api_keys", None, None),
    ("GET", "/v1/api_keys/{key}", None, None),
    ("POST", "/v1/api_keys/{key}/roll", {}, None),
    ("POST", "/v1/api_keys/{key}/revoke", {}, None),
    ("GET", "/v1/audit_log", None, None),
    ("POST", "/v1/products", {"name": "Eve"}, None),
    ("GET", "/v1/products", None, None),
    ("GET", "/v1/products/{product}", None, "/v1/products/{product}"),
    ("POST", "/v1/products/{product}", {"active": False}, "/v1/products/{product}"),
    ("DELETE", "/v1/products/{product}", None, "/v1/products/{product}"),
    ("POST", "/v1/prices", {"product": "{product}", "currency": "usd", "unit_amount": 1}, None),
    ("GET", "/v1/prices", None, None),
    ("GET", "/v1/prices/{price}", None, "/v1/prices/{price}"),
    ("POST", "/v1/prices/{price}", {"active": False}, "/v1/prices/{price}"),
]
FORBIDDEN += [
    ("POST", "/v1/setup_intents", {"customer": "{customer}"}, None),
    ("GET", "/v1/setup_intents", None, None),
    ("GET", "/v1/setup_intents/{setup}", None, "/v1/setup_intents/{setup}"),
    ("POST", "/v1/setup_intents/{setup}/confirm", {}, "/v1/setup_intents/{setup}"),
    ("POST", "/v1/setup_intents/{setup}/cancel", {}, "/v1/setup_intents/{setup}"),
    ("GET", "/v1/mandates/{mandate}", None, "/v1/mandates/{mandate}"),
]
# Billing: the key is refused by its kind before any id is looked up, so ids need not exist.
FORBIDDEN += [
    (
        "POST",
        "/v1/invoiceitems",
        {"customer": "{customer}", "amount": 100, "currency": "usd"},
        None,
    ),
    ("GET", "/v1/invoiceitems", None, None),
    ("GET", "/v1/invoiceitems/{missing}", None, None),
    ("DELETE", "/v1/invoiceitems/{missing}", None, None),
    ("POST", "/v1/invoices", {"customer": "{customer}"}, None),
    ("GET", "/v1/invoices", None, None),
    ("GET", "/v1/invoices/upcoming", None, None),
    ("GET", "/v1/invoices/{missing}", None, None),
    ("POST", "/v1/invoices/{missing}/finalize", {}, None),
    ("POST", "/v1/invoices/{missing}/pay", {}, None),
    ("POST", "/v1/invoices/{missing}/void", {}, None),
    ("POST", "/v1/invoices/{missing}/mark_uncollectible", {}, None),
    ("POST", "/v1/subscriptions", {"customer": "{customer}", "items": []}, None),
    ("GET", "/v1/subscriptions", None, None),
    ("GET", "/v1/subscriptions/{missing}", None, None),
    ("POST", "/v1/subscriptions/{missing}", {}, None),
    ("DELETE", "/v1/subscriptions/{missing}", None, None),
    ("POST", "/v1/subscriptions/{missing}/pause", {}, None),
    ("POST", "/v1/subscriptions/{missing}/resume", {}, None),
    ("POST", "/v1/subscriptions/{missing}/cancel", {}, None),
    ("POST", "/v1/test_clocks", {"frozen_time": 1893456000, "name": "Eve"}, None),
    ("GET", "/v1/test_clocks", None, None),
    ("GET", "/v1/test_clocks/{missing}", None, None),
    ("DELETE", "/v1/test_clocks/{missing}", None, None),
    ("POST", "/v1/test_clocks/{missing}/advance", {"frozen_time": 1893456000, "x": "y"}, None),
]
# Collection, settlements and reports.
COLLECTION: list[tuple[str, str, Any, str | None]] = [
    ("GET", "/v1/billing_settings", None, None),
    ("POST", "/v1/billing_settings", {"portal": {"allow_cancel": False}}, None),
    ("GET", "/v1/account", None, None),
    ("POST", "/v1/account", {"timezone": "Africa/Lagos"}, None),
    (
        "POST",
        "/v1/billing_portal/sessions",
        {"customer": "{customer}", "return_url": "https://shop.example.com/account"},
        None,
    ),
    (
        "POST",
        "/v1/test_helpers/payment_methods/{missing}/outcomes",
        {"outcomes": ["succeeded"]},
        None,
    ),
    ("POST", "/v1/payment_links", {"line_items": [{"price": "{missing}", "quantity": 1}]}, None),
    ("GET", "/v1/payment_links", None, None),
    ("GET", "/v1/payment_links/{missing}", None, None),
    ("POST", "/v1/payment_links/{missing}", {"active": False}, None),
    ("GET", "/v1/payment_links/{missing}/line_items", None, None),
    ("GET", "/v1/reports/payments_summary", None, None),
    ("POST", "/v1/report_runs", {"report_type": "payments_summary", "parameters": {}}, None),
    ("GET", "/v1/report_runs", None, None),
    ("GET", "/v1/report_runs/{missing}", None, None),
    ("GET", "/v1/report_runs/{missing}/file", None, None),
    ("GET", "/v1/settlements", None, None),
    ("POST", "/v1/settlement_imports", {"connector_account": "{missing}"}, None),
    ("GET", "/v1/settlements/{missing}", None, None),
    ("GET", "/v1/settlements/{missing}/transactions", None, None),
    (
        "POST",
        "/v1/reconciliation_runs",
        {"connector_account": "{missing}", "from": 1_800_000_000, "to": 1_800_086_400},
        None,
    ),
    ("GET", "/v1/reconciliation_runs", None, None),
    ("GET", "/v1/reconciliation_runs/{missing}", None, None),
    ("GET", "/v1/reconciliation_discrepancies", None, None),
    ("POST", "/v1/reconciliation_discrepancies/{missing}/resolve", {"note": "refunded"}, None),
]
FORBIDDEN += COLLECTION
ALLOWED = {("POST", "/v1/payment_methods")}
# Authenticated by the provider's signature instead of an API key.
SIGNED = {("POST", "/v1/provider_webhooks/{connector_account_id}")}


def _fill(template: Any, ids: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: _fill(v, ids) for k, v in template.items()}
    return template


def _template(path: str) -> str:
    """/v1/payments/{draft}/confirm -> /v1/payments/{}/confirm, comparable with OpenAPI."""
    return "/".join("{}" if p.startswith("{") else p for p in path.split("/"))


def test_forbidden_table_covers_every_v1_route(settings: Settings) -> None:
    """A new /v1 route must be added to FORBIDDEN (or ALLOWED) above."""
    app = create_app(settings)
    routes = {
        (method.upper(), _template(path))
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    }
    listed = {(m, _template(p)) for m, p, _, _ in FORBIDDEN} | {
        (m, _template(p)) for m, p in ALLOWED | SIGNED
    }
    assert routes == listed


@pytest.mark.parametrize(
    ("method", "path", "body", "view"),
    [pytest.param(*case, id=f"{case[0]} {case[1]}") for case in FORBIDDEN],
)
async def test_publishable_key_is_forbidden_everywhere_else(
    shop: Shop,
    pool: asyncpg.Pool,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    view: str | None,
) -> None:
    before_view = (await shop.secret.get(_fill(view, shop.ids))).json() if view else None
    before = await row_counts(pool, shop.merchant.id)
    headers = auth(shop.publishable.key)
    if method == "POST":
        headers["Idempotency-Key"] = f"pk-{uuid.uuid4().hex}"
    response = await shop.publishable.http.request(
        method, _fill(path, shop.ids), json=_fill(body, shop.ids), headers=headers
    )
    assert_error(response, 403, "permission_error", "secret_key_required")
    assert await row_counts(pool, shop.merchant.id) == before
    if view:
        assert (await shop.secret.get(_fill(view, shop.ids))).json() == before_view


async def test_publishable_key_may_tokenize_a_card(
    client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    publishable = Api(client, merchant.key("publishable", livemode=False))
    response = await publishable.post("/v1/payment_methods", card(SUCCESS_CARD))
    assert response.status_code == 200, response.text
    pm = response.json()
    assert pm["id"].startswith("pm_")
    assert pm["object"] == "payment_method"
    assert pm["livemode"] is False
    assert pm["card"]["last4"] == "4242"
    assert "number" not in pm["card"]
    stored = await pool.fetchrow(
        "SELECT merchant_id, livemode FROM payment_methods WHERE id = $1", pm["id"]
    )
    assert stored is not None
    assert (stored["merchant_id"], stored["livemode"]) == (merchant.id, False)
    # The secret key can then use the token the browser created.
    secret = Api(client, merchant.key("secret", livemode=False))
    paid = await secret.post(
        "/v1/payments",
        {"amount": 1000, "currency": "usd", "confirm": True, "payment_method": pm["id"]},
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "succeeded"


@pytest.mark.parametrize("same_body", [True, False], ids=["replay", "different-body"])
async def test_publishable_key_cannot_use_a_secret_keys_idempotency_key(
    client: httpx.AsyncClient, merchant: NewMerchant, same_body: bool
) -> None:
    key = f"order-{uuid.uuid4().hex[:8]}"
    secret = Api(client, merchant.key("secret", livemode=False))
    created = await secret.post(
        "/v1/customers", {"name": "Ada", "email": "ada@example.com"}, **{"Idempotency-Key": key}
    )
    assert created.status_code == 200, created.text
    body = {"name": "Ada", "email": "ada@example.com"} if same_body else {"name": "Eve"}
    publishable = Api(client, merchant.key("publishable", livemode=False))
    response = await publishable.post("/v1/customers", body, **{"Idempotency-Key": key})
    assert_error(response, 403, "permission_error", "secret_key_required")
