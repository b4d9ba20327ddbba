"""An idempotent replay never skips authentication, permissions or secrecy (issue 18 §1), and
its result is stored before it is sent (§5).

The matrix is generated from the app's route table, so a new mutating route is covered
without editing this file (it fails until the route has a sample body that succeeds)."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from fastapi.routing import iter_route_contexts

from paygrid.api.idempotency import UNSAVED_STATUSES
from paygrid.app import create_app
from paygrid.config import Settings
from paygrid.dependencies import Deps
from paygrid.domain import scopes
from paygrid.services.merchants import NewMerchant, issue_key
from tests.conftest import SUCCESS_CARD, Api, card, confirmed_payment
from tests.integration import raw_asgi

PUBLIC_HOOK = "https://93.184.215.14/hooks"
MUTATING = ("POST", "DELETE")
RESTRICTED: dict[str, frozenset[str]] = {
    "viewer": scopes.ROLES["viewer"],
    "support": scopes.ROLES["support"],
    "operator": scopes.ROLES["operator"],
    "custom": frozenset({"payments:read", "customers:write", "webhooks:write"}),
}


def mutating_routes(settings: Settings) -> list[tuple[str, str]]:
    """Every (method, path template) under /v1 that changes something, from the router."""
    app = create_app(settings)
    found = {
        (method, route.path)
        for route in iter_route_contexts(app.router.routes)
        if route.path
        and route.path.startswith("/v1/")
        and not route.path.startswith("/v1/provider_webhooks/")
        for method in route.methods or ()
        if method in MUTATING
    }
    return sorted(found)


async def _key(pool: asyncpg.Pool, merchant: NewMerchant, granted: frozenset[str]) -> str:
    return (await issue_key(pool, merchant.id, "secret", False, scopes=sorted(granted))).secret


async def _sample_bodies(admin: Api) -> dict[tuple[str, str], dict[str, Any]]:
    """Bodies with which the admin's first request succeeds (a saved, replayable result)."""
    paid = await admin.post("/v1/payments", confirmed_payment(amount=5000))
    account = await admin.post("/v1/connector_accounts", {"provider": "simulator"})
    assert paid.status_code == account.status_code == 200, (paid.text, account.text)
    product = await admin.post("/v1/products", {"name": "Mug"})
    assert product.status_code == 200, product.text
    paystack = await admin.post(
        "/v1/connector_accounts",
        {"provider": "paystack", "credentials": {"secret_key": "sk_test_replay_2468"}},
    )
    assert paystack.status_code == 200, paystack.text
    customer = (await admin.post("/v1/customers", {"name": "Ada"})).json()["id"]
    monthly = await admin.post(
        "/v1/prices",
        {
            "product": product.json()["id"],
            "currency": "usd",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
        },
    )
    assert monthly.status_code == 200, monthly.text
    await admin.post("/v1/invoiceitems", {"customer": customer, "amount": 100, "currency": "usd"})
    return {
        ("POST", "/v1/payments"): confirmed_payment(),
        ("POST", "/v1/checkout_sessions"): {
            "amount": 2000,
            "currency": "usd",
            "success_url": "https://shop.example/thanks",
            "cancel_url": "https://shop.example/cart",
        },
        ("POST", "/v1/refunds"): {"payment": paid.json()["id"], "amount": 100},
        ("POST", "/v1/customers"): {"name": "Ada"},
        ("POST", "/v1/payment_methods"): card(SUCCESS_CARD),
        ("POST", "/v1/payment_methods/{pm_id}/attach"): {"customer": "cus_missing"},
        ("POST", "/v1/webhook_endpoints"): {"url": PUBLIC_HOOK, "enabled_events": ["*"]},
        ("POST", "/v1/api_keys"): {"role": "viewer"},
        ("POST", "/v1/products"): {"name": "Mug"},
        ("POST", "/v1/prices"): {
            "product": product.json()["id"],
            "currency": "usd",
            "unit_amount": 900,
        },
        ("POST", "/v1/connector_accounts"): {"provider": "simulator"},
        ("POST", "/v1/invoiceitems"): {"customer": customer, "amount": 100, "currency": "usd"},
        ("POST", "/v1/invoices"): {"customer": customer},
        ("POST", "/v1/subscriptions"): {
            "customer": customer,
            "items": [{"price": monthly.json()["id"]}],
            "trial_period_days": 7,
        },
        ("POST", "/v1/test_clocks"): {"frozen_time": 1_893_456_000},
        # A clock that does not exist: a saved 404.
        ("POST", "/v1/test_clocks/{clock_id}/advance"): {"frozen_time": 1_896_134_400},
        ("POST", "/v1/routing_rules"): {
            "destinations": [{"connector_account": account.json()["id"]}]
        },
        ("POST", "/v1/billing_settings"): {"portal": {"allow_cancel": False}},
        ("POST", "/v1/account"): {"timezone": "Europe/Paris"},
        ("POST", "/v1/billing_portal/sessions"): {
            "customer": customer,
            "return_url": "https://shop.example/account",
        },
        ("POST", "/v1/payment_links"): {
            "line_items": [{"price": monthly.json()["id"], "quantity": 1}]
        },
        ("POST", "/v1/report_runs"): {"report_type": "payments_summary", "parameters": {}},
        ("POST", "/v1/settlement_imports"): {"connector_account": paystack.json()["id"]},
        ("POST", "/v1/reconciliation_runs"): {
            "connector_account": paystack.json()["id"],
            "from": 1_800_000_000,
            "to": 1_800_086_400,
        },
        # A discrepancy that does not exist: a saved 404.
        ("POST", "/v1/reconciliation_discrepancies/{discrepancy_id}/resolve"): {"note": "ok"},
        # A method that does not exist: a saved 404.
        ("POST", "/v1/test_helpers/payment_methods/{pm_id}/outcomes"): {"outcomes": ["succeeded"]},
    }


def _concrete(path: str) -> str:
    """Path parameters become ids that do not exist: the admin's answer is a saved 404."""
    return re.sub(r"\{[^}]+\}", "x_missing", path)


def _answer(response: httpx.Response) -> tuple[int, str | None]:
    body = response.json() if response.content else {}
    return response.status_code, (body.get("error") or {}).get("code")


async def _send(
    http: httpx.AsyncClient, key: str, method: str, path: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await http.request(
        method,
        path,
        content=orjson.dumps(body),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **headers},
    )


@pytest.mark.parametrize("role", [*RESTRICTED, "publishable"])
async def test_a_replayed_admin_key_answers_like_no_key(
    client: httpx.AsyncClient,
    merchant: NewMerchant,
    pool: asyncpg.Pool,
    settings: Settings,
    role: str,
) -> None:
    admin = Api(client, await _key(pool, merchant, scopes.ROLES["admin"]))
    if role == "publishable":
        restricted = merchant.key("publishable", livemode=False)
    else:
        restricted = await _key(pool, merchant, RESTRICTED[role])
    samples = await _sample_bodies(admin)
    routes = mutating_routes(settings)
    assert len(routes) >= 30, routes
    mismatches: list[str] = []
    for method, template in routes:
        path, body = _concrete(template), samples.get((method, template), {})
        idem = {"Idempotency-Key": f"admin-{uuid.uuid4().hex}"}
        first = await _send(client, admin.key, method, path, body, **idem)
        assert first.status_code < 500 and first.status_code not in UNSAVED_STATUSES, (
            f"{method} {template}: give it a sample body the admin's request succeeds with",
            first.text,
        )
        replayed = await _send(client, restricted, method, path, body, **idem)
        plain = await _send(client, restricted, method, path, body)
        assert replayed.headers.get("idempotent-replayed") is None, (method, template)
        if role == "publishable" or method == "DELETE" or plain.status_code in (401, 403):
            expected = _answer(plain)
        else:  # allowed to try, but the stored answer belongs to a key with more rights
            expected = (422, "idempotency_key_other_api_key")
        if _answer(replayed) != expected:
            mismatches.append(f"{method} {template}: {_answer(replayed)} != {expected}")
    assert not mismatches, "\n".join(mismatches)


# -- who gets a replay --------------------------------------------------------------------------


async def test_the_same_key_and_a_key_with_all_its_scopes_get_the_replay(
    client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    operator = Api(client, await _key(pool, merchant, scopes.ROLES["operator"]))
    admin = Api(client, await _key(pool, merchant, scopes.ROLES["admin"]))
    idem = {"Idempotency-Key": f"op-{uuid.uuid4().hex}"}
    first = await operator.post("/v1/payments", confirmed_payment(), **idem)
    again = await operator.post("/v1/payments", confirmed_payment(), **idem)
    by_admin = await admin.post("/v1/payments", confirmed_payment(), **idem)
    assert first.status_code == again.status_code == by_admin.status_code == 200
    assert again.headers["idempotent-replayed"] == by_admin.headers["idempotent-replayed"] == "true"
    assert again.json() == by_admin.json() == first.json()


async def test_a_rolled_key_gets_the_replay_of_its_predecessor(
    client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    admin = Api(client, await _key(pool, merchant, scopes.ROLES["admin"]))
    made = (await admin.post("/v1/api_keys", {"role": "operator"})).json()
    operator = Api(client, made["secret"])
    idem = {"Idempotency-Key": f"roll-{uuid.uuid4().hex}"}
    first = await operator.post("/v1/payments", confirmed_payment(), **idem)
    rolled = (await admin.post(f"/v1/api_keys/{made['id']}/roll")).json()
    retry = await Api(client, rolled["secret"]).post("/v1/payments", confirmed_payment(), **idem)
    assert retry.status_code == 200, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] == first.json()["id"]


async def test_a_key_with_fewer_rights_gets_nothing_from_a_replay(
    client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    admin = Api(client, await _key(pool, merchant, scopes.ROLES["admin"]))
    operator = Api(client, await _key(pool, merchant, scopes.ROLES["operator"]))
    idem = {"Idempotency-Key": f"adm-{uuid.uuid4().hex}"}
    first = await admin.post("/v1/payments", confirmed_payment(), **idem)
    assert first.status_code == 200, first.text
    replay = await operator.post("/v1/payments", confirmed_payment(), **idem)
    assert replay.status_code == 422, replay.text
    error = replay.json()["error"]
    assert (error["type"], error["code"]) == ("idempotency_error", "idempotency_key_other_api_key")
    assert first.json()["id"] not in replay.text


# -- secrets are never at rest in plaintext -----------------------------------------------------


async def _row_text(pool: asyncpg.Pool, merchant_id: str, key: str) -> bytes:
    """Every column of the stored key, as bytes, to search for a secret."""
    row = await pool.fetchrow(
        "SELECT * FROM idempotency_keys WHERE merchant_id = $1 AND key = $2", merchant_id, key
    )
    assert row is not None
    return b"\n".join(
        value if isinstance(value, bytes) else str(value).encode() for value in row.values()
    )


async def test_secrets_in_stored_responses_are_sealed_and_replayed(
    client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    admin = Api(client, await _key(pool, merchant, scopes.ROLES["admin"]))
    endpoint = (
        await admin.post("/v1/webhook_endpoints", {"url": PUBLIC_HOOK, "enabled_events": ["*"]})
    ).json()
    key = (await admin.post("/v1/api_keys", {"role": "viewer"})).json()
    cases: list[tuple[str, dict[str, Any]]] = [
        ("/v1/api_keys", {"role": "support"}),
        (f"/v1/api_keys/{key['id']}/roll", {}),
        ("/v1/webhook_endpoints", {"url": PUBLIC_HOOK, "enabled_events": ["*"]}),
        (f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret", {}),
    ]
    for path, body in cases:
        idem = f"secret-{uuid.uuid4().hex}"
        first = await admin.post(path, body, **{"Idempotency-Key": idem})
        secret = first.json()["secret"]
        assert first.status_code == 200 and secret, (path, first.text)
        replay = await admin.post(path, body, **{"Idempotency-Key": idem})
        assert replay.headers["idempotent-replayed"] == "true", path
        assert replay.json() == first.json(), path
        stored = await _row_text(pool, merchant.id, idem)
        assert secret.encode() not in stored, path
        assert secret.encode().hex().encode() not in stored, path


async def test_responses_without_secrets_stay_readable_for_erasure(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    idem = f"plain-{uuid.uuid4().hex}"
    made = await api.post(
        "/v1/customers", {"email": "ada@example.com"}, **{"Idempotency-Key": idem}
    )
    assert made.status_code == 200, made.text
    stored = await pool.fetchval(
        "SELECT response_body FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
        merchant.id,
        idem,
    )
    assert b"ada@example.com" in bytes(stored)


# -- store, then send ---------------------------------------------------------------------------


async def test_a_retry_sent_the_instant_the_answer_arrives_is_a_replay(
    api: Api, deps: Deps, settings: Settings
) -> None:
    """Each retry is sent from inside the first request's last ``send``: the moment a client
    has the answer. The first result must already be stored then."""
    app = create_app(settings, deps=deps)
    replays: list[raw_asgi.RawResponse] = []

    def headers(idem: str) -> list[tuple[bytes, bytes]]:
        return [
            (b"authorization", f"Bearer {api.key}".encode()),
            (b"content-type", b"application/json"),
            (b"idempotency-key", idem.encode()),
        ]

    async def pair(number: int) -> tuple[raw_asgi.RawResponse, str]:
        idem = f"instant-{number}-{uuid.uuid4().hex}"
        body = orjson.dumps(confirmed_payment())

        async def retry_now(_: raw_asgi.RawResponse) -> None:
            replays.append(await raw_asgi.call(app, "POST", "/v1/payments", headers(idem), body))

        first = await raw_asgi.call(
            app, "POST", "/v1/payments", headers(idem), body, on_body_sent=retry_now
        )
        return first, idem

    firsts = await asyncio.gather(*(pair(n) for n in range(24)))
    assert len(replays) == len(firsts)
    statuses = sorted(r.status for r in replays)
    assert statuses == [200] * len(firsts), [r.body[:120] for r in replays if r.status != 200]
    ids = {orjson.loads(first.body)["id"] for first, _ in firsts}
    assert {orjson.loads(r.body)["id"] for r in replays} == ids
    assert all(r.headers.get("idempotent-replayed") == "true" for r in replays)
