"""A card number typed into free text is refused, never stored (issue 11 §1.11): every
free-text field of every resource on the API, the checkout page's email and the dashboard's
key name answer 400 ``card_number_in_text`` naming the field, and nothing is written."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.domain import scopes
from paygrid.domain.card_numbers import luhn_valid
from paygrid.services.merchants import NewMerchant, issue_key
from tests.conftest import SUCCESS_CARD, Api, card, confirmed_payment, row_counts
from tests.integration.test_checkout import new_session, open_page, submit, tokenize
from tests.integration.test_dashboard import Login, login, new_client, post_form  # noqa: F401
from tests.integration.test_request_validation import error_of


def _fresh_card_number() -> str:
    """A Luhn-valid Visa number no other test uses, so a search for it finds only ours."""
    body = "4" + "".join(random.choice("0123456789") for _ in range(14))
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


NUMBER = _fresh_card_number()
GROUPED = " ".join(NUMBER[i : i + 4] for i in range(0, 16, 4))
DASHED = "-".join(NUMBER[i : i + 4] for i in range(0, 16, 4))


@pytest.fixture
async def admin(client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool) -> Api:
    key = await issue_key(pool, merchant.id, "secret", False, scopes=sorted(scopes.ROLES["admin"]))
    return Api(client, key.secret)


async def _tables(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    )
    return [r["table_name"] for r in rows]


async def _rows_holding(pool: asyncpg.Pool, digits: str) -> dict[str, int]:
    """Rows of any table whose text (every column, JSON included) holds ``digits``, with
    or without the separators it was typed with."""
    found = {}
    for table in await _tables(pool):
        count = await pool.fetchval(
            f"SELECT count(*) FROM {table} t "  # noqa: S608 - names from the catalog
            "WHERE regexp_replace(t::text, '[ -]', '', 'g') LIKE '%' || $1 || '%'",
            digits,
        )
        if count:
            found[table] = count
    return found


@pytest.fixture
async def nothing_written(pool: asyncpg.Pool, merchant: NewMerchant) -> AsyncIterator[None]:
    before = await row_counts(pool, merchant.id)
    yield
    assert await row_counts(pool, merchant.id) == before
    assert await _rows_holding(pool, NUMBER) == {}


@pytest.fixture
async def ids(admin: Api) -> AsyncIterator[dict[str, str]]:
    """Objects to update. The webhook endpoint is deleted afterwards: its host serves
    nothing, and a later test's dispatcher would plan deliveries there."""
    customer = (await admin.post("/v1/customers", {"name": "Ada"})).json()["id"]
    paid = (await admin.post("/v1/payments", confirmed_payment())).json()["id"]
    account = await admin.post("/v1/connector_accounts", {"provider": "simulator"})
    endpoint = await admin.post(
        "/v1/webhook_endpoints", {"url": "https://hooks.example.com/x", "enabled_events": ["*"]}
    )
    yield {
        "customer": customer,
        "paid": paid,
        "account": account.json()["id"],
        "endpoint": endpoint.json()["id"],
    }
    deleted = await admin.delete(f"/v1/webhook_endpoints/{endpoint.json()['id']}")
    assert deleted.status_code in (200, 404), deleted.text  # a test may have deleted it


def _session(**fields: Any) -> dict[str, Any]:
    return {
        "amount": 500,
        "currency": "usd",
        "success_url": "https://shop.example.com/ok",
        "cancel_url": "https://shop.example.com/cart",
        **fields,
    }


CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("payment description", "/v1/payments", {"amount": 100, "currency": "usd",
        "description": f"card {GROUPED}"}, "description"),
    ("payment metadata value", "/v1/payments", {"amount": 100, "currency": "usd",
        "metadata": {"note": DASHED}}, "metadata[note]"),
    ("payment metadata key", "/v1/payments", {"amount": 100, "currency": "usd",
        "metadata": {NUMBER: "x"}}, "metadata"),
    ("payment receipt email", "/v1/payments", {"amount": 100, "currency": "usd",
        "receipt_email": f"{NUMBER}@example.com"}, "receipt_email"),
    ("customer name", "/v1/customers", {"name": f"Ada {GROUPED}"}, "name"),
    ("customer email", "/v1/customers", {"email": f"{NUMBER}@example.com"}, "email"),
    ("customer phone", "/v1/customers", {"phone": DASHED}, "phone"),
    ("customer metadata", "/v1/customers", {"metadata": {"card": NUMBER}}, "metadata[card]"),
    ("customer update", "/v1/customers/{customer}", {"name": GROUPED}, "name"),
    ("checkout description", "/v1/checkout_sessions", _session(description=GROUPED),
        "description"),
    ("checkout email", "/v1/checkout_sessions", _session(customer_email=f"{NUMBER}@ex.com"),
        "customer_email"),
    ("checkout metadata", "/v1/checkout_sessions", _session(metadata={"n": NUMBER}),
        "metadata[n]"),
    ("refund metadata", "/v1/refunds", {"payment": "{paid}", "metadata": {"n": GROUPED}},
        "metadata[n]"),
    ("payment method metadata", "/v1/payment_methods",
        {**card(SUCCESS_CARD), "metadata": {"backup": GROUPED}}, "metadata[backup]"),
    ("webhook endpoint description", "/v1/webhook_endpoints",
        {"url": "https://hooks.example.com/y", "enabled_events": ["*"], "description": NUMBER},
        "description"),
    ("webhook endpoint update", "/v1/webhook_endpoints/{endpoint}",
        {"metadata": {"n": NUMBER}}, "metadata[n]"),
    ("api key name", "/v1/api_keys", {"name": GROUPED, "role": "viewer"}, "name"),
    ("connector account name", "/v1/connector_accounts",
        {"provider": "simulator", "name": GROUPED}, "name"),
    ("connector account update", "/v1/connector_accounts/{account}",
        {"metadata": {"n": DASHED}}, "metadata[n]"),
    ("routing rule name", "/v1/routing_rules", {"name": GROUPED, "priority": 1,
        "conditions": {}, "destinations": [{"connector_account": "{account}"}]}, "name"),
]  # fmt: skip


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids) if value.startswith("{") or "/{" in value else value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


@pytest.mark.parametrize(
    ("path", "body", "param"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_api_refuses_card_numbers_in_text(
    admin: Api, ids: dict[str, str], nothing_written: None, path: str, body: Any, param: str
) -> None:
    response = await admin.post(
        _fill(path, ids), _fill(body, ids), **{"Idempotency-Key": NUMBER[:8]}
    )
    error = error_of(response, 400, code="card_number_in_text", param=param)
    assert NUMBER not in response.text and GROUPED not in response.text
    assert "card number" in error["message"]


async def test_near_misses_are_stored(admin: Api) -> None:
    body = {
        "name": "Ada 4242",
        "phone": "+44 20 7946 0958",
        "metadata": {"order": "2024-000123-4567", "bad_luhn": "4242424242424241"},
    }
    response = await admin.post("/v1/customers", body)
    assert response.status_code == 200, response.text
    assert response.json()["metadata"] == body["metadata"]


async def test_checkout_page_refuses_a_card_number_as_email(
    admin: Api, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    session = await new_session(admin)
    token, key = await open_page(client, session["id"])
    method = await tokenize(client, key, SUCCESS_CARD)
    response = await submit(client, session["id"], token, payment_method=method, email=GROUPED)
    assert response.status_code == 400, response.text
    assert "card number" in response.text
    after = (await admin.get(f"/v1/checkout_sessions/{session['id']}")).json()
    assert after["status"] == "open" and after["payment"] is None
    assert await _rows_holding(pool, NUMBER) == {}


async def test_dashboard_refuses_a_card_number_as_key_name(
    login: Login,  # noqa: F811 - the fixture imported above
    pool: asyncpg.Pool,
    merchant: NewMerchant,
) -> None:
    http, _ = await login("admin")
    before = await pool.fetchval(
        "SELECT count(*) FROM api_keys WHERE merchant_id = $1", merchant.id
    )
    page = "/dashboard/developers/api_keys"
    response = await post_form(http, page, page, {"role": "viewer", "name": GROUPED})
    assert response.status_code == 400, response.text
    assert "card number" in response.text
    after = await pool.fetchval("SELECT count(*) FROM api_keys WHERE merchant_id = $1", merchant.id)
    assert after == before
    assert await _rows_holding(pool, NUMBER) == {}
