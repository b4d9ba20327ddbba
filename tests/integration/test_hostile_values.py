"""Hostile values in every body field of every operation (issue 11 §1.8): integers far past
any column's range and strings carrying NUL or other control characters answer 400 with a
documented code, never 5xx, and write nothing. The operations come from the OpenAPI
description; each has a valid base body here, and one leaf at a time is replaced."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.app import create_app
from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import Settings
from paygrid.domain import scopes
from paygrid.services.merchants import NewMerchant, issue_key
from tests.conftest import SUCCESS_CARD, TEST_BASE_URL, Api, card, confirmed_payment, row_counts
from tests.integration.test_request_validation import error_of

SPEC = create_app(Settings(public_url=TEST_BASE_URL)).openapi()
OPERATIONS = sorted(
    path
    for path, methods in SPEC["paths"].items()
    if "post" in methods and "requestBody" in methods["post"]
)

# A valid body per operation; ``{customer}`` and the like are replaced by real ids.
BODIES: dict[str, dict[str, Any]] = {
    "/v1/payments": {
        "amount": 1000,
        "currency": "usd",
        "description": "A mug",
        "payment_method_data": card(SUCCESS_CARD),
        "metadata": {"order": "1043"},
    },
    "/v1/payments/{payment_id}/confirm": {
        "payment_method_data": card(SUCCESS_CARD),
        "return_url": "https://shop.example.com/done",
    },
    "/v1/payments/{payment_id}/capture": {"amount_to_capture": 500},
    "/v1/payments/{payment_id}/cancel": {"cancellation_reason": "duplicate"},
    "/v1/checkout_sessions": {
        "amount": 2000,
        "currency": "usd",
        "success_url": "https://shop.example.com/ok",
        "cancel_url": "https://shop.example.com/cart",
        "description": "1 x mug",
        "customer_email": "ada@example.com",
        "expires_at": "{in_an_hour}",
        "metadata": {"order": "1043"},
    },
    "/v1/refunds": {"payment": "{paid}", "amount": 100, "metadata": {"why": "broken"}},
    "/v1/customers": {
        "email": "ada@example.com",
        "name": "Ada",
        "phone": "+2348012345678",
        "metadata": {"tier": "gold"},
    },
    "/v1/customers/{customer_id}": {"name": "Ada King", "metadata": {"tier": "gold"}},
    "/v1/payment_methods": {**card(SUCCESS_CARD), "metadata": {"source": "test"}},
    "/v1/payment_methods/{pm_id}/attach": {"customer": "{customer}"},
    "/v1/setup_intents": {
        "customer": "{customer}",
        "description": "Save for renewals",
        "metadata": {"plan": "gold"},
        "mandate_data": {
            "customer_acceptance": {
                "type": "online",
                "online": {"ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0"},
            }
        },
    },
    "/v1/setup_intents/{setup_intent_id}/confirm": {
        "mandate_data": {"customer_acceptance": {"type": "offline"}}
    },
    "/v1/setup_intents/{setup_intent_id}/cancel": {"cancellation_reason": "abandoned"},
    "/v1/webhook_endpoints": {
        "url": "https://hooks.example.com/paygrid",
        "enabled_events": ["*"],
        "description": "shop",
        "metadata": {"env": "test"},
    },
    "/v1/webhook_endpoints/{endpoint_id}": {"description": "shop", "metadata": {"env": "x"}},
    "/v1/webhook_endpoints/{endpoint_id}/replay": {
        "created": {"gte": 1_700_000_000, "lte": 1_800_000_000},
        "type": "payment.succeeded",
    },
    "/v1/events/{event_id}/redeliver": {"endpoint": "{endpoint}"},
    "/v1/api_keys": {"name": "desk", "role": "support"},
    "/v1/connector_accounts": {
        "provider": "simulator",
        "name": "sim",
        "currencies": ["USD"],
        "metadata": {"region": "eu"},
    },
    "/v1/connector_accounts/{account_id}": {"name": "sim 2", "metadata": {"region": "us"}},
    "/v1/routing_rules": {
        "name": "big",
        "priority": 10,
        "conditions": {"amount": {"gte": 100, "lte": 100_000}, "currency": ["USD"]},
        "destinations": [{"connector_account": "{account}", "weight": 1}],
    },
    "/v1/routing_rules/{rule_id}": {"name": "big 2", "priority": 11},
    "/v1/test_clocks": {"frozen_time": 1_893_456_000, "name": "Annual plan"},
    "/v1/test_clocks/{clock_id}/advance": {"frozen_time": 1_896_134_400},
    "/v1/products": {"name": "Mug", "description": "A mug", "metadata": {"tier": "gold"}},
    "/v1/products/{product_id}": {"name": "Cup", "metadata": {"tier": "gold"}},
    "/v1/prices": {
        "product": "{product_id}",
        "currency": "usd",
        "unit_amount": 1500,
        "recurring": {"interval": "month", "interval_count": 3},
        "lookup_key": "gold",
        "nickname": "Gold",
        "metadata": {"plan": "gold"},
    },
    "/v1/prices/{price_id}": {"nickname": "Gold", "lookup_key": "g", "metadata": {"a": "b"}},
    "/v1/invoiceitems": {
        "customer": "{customer}",
        "amount": 500,
        "currency": "usd",
        "description": "Setup fee",
        "metadata": {"order": "1043"},
    },
    "/v1/invoices": {
        "customer": "{customer}",
        "collection_method": "send_invoice",
        "days_until_due": 30,
        "description": "March",
        "metadata": {"order": "1043"},
    },
    "/v1/invoices/{invoice_id}/pay": {"payment_method": "{pm_id}"},
    "/v1/subscriptions": {
        "customer": "{customer}",
        "items": [{"price": "{recurring_price}", "quantity": 2, "metadata": {"seat": "a"}}],
        "trial_period_days": 7,
        "metadata": {"plan": "gold"},
    },
    "/v1/subscriptions/{subscription_id}": {
        "proration_behavior": "none",
        "metadata": {"plan": "silver"},
    },
    "/v1/subscriptions/{subscription_id}/pause": {"resumes_at": "{in_a_month}"},
    "/v1/subscriptions/{subscription_id}/resume": {"billing_cycle_anchor": "unchanged"},
    "/v1/subscriptions/{subscription_id}/cancel": {"at_period_end": True},
    "/v1/admin/webhooks/pause": {"endpoint": "{endpoint}"},
    "/v1/admin/webhooks/resume": {"endpoint": "{endpoint}"},
    "/v1/billing_settings": {
        "dunning": {"retry_schedule_days": [1, 3, 5], "on_exhausted": "cancel"},
        "invoices": {"number_prefix": "SHOP", "days_until_due": 14, "footer": "Thanks"},
        "portal": {"allow_cancel": False},
        "emails": {"receipt": False},
    },
    "/v1/account": {"timezone": "Europe/Paris"},
    "/v1/billing_portal/sessions": {
        "customer": "{customer}",
        "return_url": "https://shop.example.com/account",
    },
    "/v1/payment_links": {
        "line_items": [{"price": "{price_id}", "quantity": 2}],
        "restrictions": {"completed_sessions": {"limit": 10}},
        "expires_at": "{in_a_month}",
        "after_completion": {
            "type": "redirect",
            "redirect": {"url": "https://shop.example.com/thanks"},
        },
        "metadata": {"campaign": "spring"},
    },
    "/v1/payment_links/{link_id}": {"active": False, "metadata": {"campaign": "fall"}},
    "/v1/test_helpers/payment_methods/{pm_id}/outcomes": {
        "outcomes": ["insufficient_funds", "succeeded"]
    },
    "/v1/report_runs": {
        "report_type": "payments_summary",
        "parameters": {
            "from": "2026-01-01",
            "to": "2026-02-01",
            "timezone": "Europe/Paris",
            "group_by": ["day", "currency"],
        },
    },
    "/v1/settlement_imports": {"connector_account": "{paystack_account}"},
    "/v1/reconciliation_runs": {
        "connector_account": "{paystack_account}",
        "from": 1_800_000_000,
        "to": 1_800_086_400,
        "heal": False,
    },
    "/v1/reconciliation_discrepancies/{discrepancy_id}/resolve": {"note": "refunded by phone"},
}

# Past every integer column (bigint included); amounts as large as 2**31 are legitimate.
HUGE_INTEGERS = [2**63, 2**64, -(2**63) - 1]
CONTROL_TEXTS = ["a\x00b", "a\x01b", "tab\x1b[0m", "x\x7fy", "x\u0085y"]
INTEGER_ERRORS = {
    (400, "parameter_invalid"),
    (400, "amount_invalid"),
    (400, "amount_too_large"),
    (400, "invalid_json"),
    (422, "refund_exceeds_available"),
}


def test_every_operation_with_a_body_has_a_base_body() -> None:
    assert set(BODIES) == set(OPERATIONS)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _replaced(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    if isinstance(body, dict):
        return {k: _replaced(v, path[1:], new) if k == path[0] else v for k, v in body.items()}
    return [_replaced(v, path[1:], new) if i == path[0] else v for i, v in enumerate(body)]


def _param(path: tuple[Any, ...]) -> str:
    return str(path[0]) + "".join(f"[{p}]" for p in path[1:])


@pytest.fixture
async def admin(client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool) -> Api:
    key = await issue_key(pool, merchant.id, "secret", False, scopes=sorted(scopes.ROLES["admin"]))
    return Api(client, key.secret)


@pytest.fixture
async def ids(admin: Api) -> AsyncIterator[dict[str, Any]]:
    """Real objects, so that each operation runs past its lookups. The webhook endpoint is
    deleted afterwards: its host serves nothing, and a later test's dispatcher would
    otherwise plan a delivery there for every event made here."""

    async def made(path: str, body: dict[str, Any]) -> str:
        response = await admin.post(path, body)
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    customer = await made("/v1/customers", {"name": "Target"})
    product = await made("/v1/products", {"name": "Target"})
    price = await made("/v1/prices", {"product": product, "currency": "usd", "unit_amount": 9})
    account = await made("/v1/connector_accounts", {"provider": "simulator", "name": "sim"})
    endpoint = await made(
        "/v1/webhook_endpoints", {"url": "https://hooks.example.com/x", "enabled_events": ["*"]}
    )
    authorized = await made("/v1/payments", confirmed_payment(capture_method="manual"))
    recurring = await made(
        "/v1/prices",
        {
            "product": product,
            "currency": "usd",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
        },
    )
    await made("/v1/invoiceitems", {"customer": customer, "amount": 700, "currency": "usd"})
    invoice = await made("/v1/invoices", {"customer": customer})
    events = (await admin.get("/v1/events", limit=1)).json()["data"]
    link = await made("/v1/payment_links", {"line_items": [{"price": price, "quantity": 1}]})
    paystack = {"provider": "paystack", "credentials": {"secret_key": "sk_test_hostile_9876"}}
    yield {
        "discrepancy_id": "rdisc_missing",
        "paystack_account": await made("/v1/connector_accounts", paystack),
        "link_id": link,
        "customer": customer,
        "customer_id": customer,
        "setup_intent_id": await made("/v1/setup_intents", {"customer": customer}),
        "product_id": product,
        "price_id": price,
        "account": account,
        "account_id": account,
        "endpoint": endpoint,
        "endpoint_id": endpoint,
        "payment_id": authorized,
        "paid": await made("/v1/payments", confirmed_payment()),
        "pm_id": await made("/v1/payment_methods", card(SUCCESS_CARD)),
        "rule_id": await made(
            "/v1/routing_rules",
            {"priority": 1, "conditions": {}, "destinations": [{"connector_account": account}]},
        ),
        "event_id": events[0]["id"],
        "clock_id": await made("/v1/test_clocks", {"frozen_time": 1_893_456_000}),
        "in_an_hour": int(SYSTEM_CLOCK.now().timestamp()) + 3600,
        "in_a_month": int(SYSTEM_CLOCK.now().timestamp()) + 30 * 86400,
        "recurring_price": recurring,
        "invoice_id": invoice,
        "subscription_id": await made(
            "/v1/subscriptions",
            {"customer": customer, "items": [{"price": recurring}], "trial_period_days": 7},
        ),
    }
    deleted = await admin.delete(f"/v1/webhook_endpoints/{endpoint}")
    assert deleted.status_code in (200, 404), deleted.text  # a test may have deleted it


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str) and (whole := re.fullmatch(r"\{(\w+)\}", value)):
        return ids[whole.group(1)]
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def _mutations(
    operation: str, ids: dict[str, Any], kind: type
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each body that replaces one ``kind`` leaf of the operation's base body."""
    base = _fill(BODIES[operation], ids)
    hostile: list[Any] = HUGE_INTEGERS if kind is int else CONTROL_TEXTS
    for path, value in _leaves(base):
        if isinstance(value, kind) and not isinstance(value, bool):
            for new in hostile:
                yield _param(path), _replaced(base, path, new)


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_base_bodies_are_valid(admin: Api, ids: dict[str, Any], operation: str) -> None:
    """The base bodies pass validation, so a 400 below is the hostile value's doing."""
    response = await admin.post(_fill(operation, ids), _fill(BODIES[operation], ids))
    assert response.status_code < 500, response.text
    if response.status_code == 400:
        assert response.json()["error"]["code"] not in ("parameter_invalid", "parameter_unknown")


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_huge_integers(admin: Api, ids: dict[str, Any], operation: str) -> None:
    wrong = []
    for param, body in _mutations(operation, ids, int):
        response = await admin.post(_fill(operation, ids), body)
        code = response.json().get("error", {}).get("code")
        if (response.status_code, code) not in INTEGER_ERRORS:
            wrong.append((param, response.status_code, response.text[:200]))
    assert wrong == []


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_control_characters(admin: Api, ids: dict[str, Any], operation: str) -> None:
    wrong = []
    for param, body in _mutations(operation, ids, str):
        response = await admin.post(_fill(operation, ids), body)
        error = response.json().get("error", {})
        got = (response.status_code, error.get("code"), error.get("param"))
        if got != (400, "parameter_invalid", param):
            wrong.append((param, got, error.get("message")))
    assert wrong == []


@pytest.mark.parametrize(
    ("body_path", "value"),
    [
        *((("card", "exp_year"), v) for v in (10_000, 2**31, 2**63, -1)),
        *((("card", "exp_month"), v) for v in (100, 2**31, 2**63, -1)),
    ],
)
async def test_card_fields_on_the_publishable_tokenizer(
    client: httpx.AsyncClient,
    merchant: NewMerchant,
    pool: asyncpg.Pool,
    body_path: tuple[str, ...],
    value: int,
) -> None:
    before = await row_counts(pool, merchant.id)
    publishable = Api(client, merchant.key("publishable", livemode=False))
    body = _replaced(card(SUCCESS_CARD), body_path, value)
    response = await publishable.post("/v1/payment_methods", body)
    error_of(response, 400, code="parameter_invalid", param=_param(body_path))
    assert await row_counts(pool, merchant.id) == before


async def test_control_character_in_a_metadata_key(admin: Api) -> None:
    response = await admin.post("/v1/customers", {"metadata": {"a\x01b": "x"}})
    error_of(response, 400, code="parameter_invalid", param="metadata")


async def test_line_breaks_and_tabs_are_text(admin: Api) -> None:
    response = await admin.post("/v1/customers", {"name": "Ada\tKing", "metadata": {"n": "a\r\nb"}})
    assert response.status_code == 200, response.text


def _objects(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every JSON object in a body, except metadata (whose keys are free)."""
    if isinstance(value, dict) and (not path or path[-1] != "metadata"):
        yield path
        for key, item in value.items():
            yield from _objects(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _objects(item, (*path, index))


def _with_field(body: Any, path: tuple[Any, ...], name: str) -> Any:
    if not path:
        return {**body, name: 1}
    if isinstance(body, dict):
        return {k: _with_field(v, path[1:], name) if k == path[0] else v for k, v in body.items()}
    return [_with_field(v, path[1:], name) if i == path[0] else v for i, v in enumerate(body)]


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_unknown_body_fields_at_every_depth(
    admin: Api, ids: dict[str, Any], operation: str
) -> None:
    """Issue 11 §2.4: an unknown field, top level or in a nested object, is a 400
    ``parameter_unknown`` naming it."""
    base = _fill(BODIES[operation], ids)
    wrong = []
    for path in _objects(base):
        param = _param((*path, "colour"))
        response = await admin.post(_fill(operation, ids), _with_field(base, path, "colour"))
        error = response.json().get("error", {})
        got = (response.status_code, error.get("code"), error.get("param"))
        if got != (400, "parameter_unknown", param):
            wrong.append((param, got))
    assert wrong == []


BODILESS = sorted(
    path
    for path, methods in SPEC["paths"].items()
    if "post" in methods
    and "requestBody" not in methods["post"]
    and not path.startswith("/v1/provider_webhooks")
)


@pytest.mark.parametrize("operation", BODILESS)
async def test_operations_without_parameters_refuse_fields(
    admin: Api, ids: dict[str, Any], operation: str
) -> None:
    path = re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), "xyz_missing")), operation)
    response = await admin.post(path, {"colour": "gold"})
    error_of(response, 400, code="parameter_unknown", param="colour")
