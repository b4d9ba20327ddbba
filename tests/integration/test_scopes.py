"""Scoped keys and roles: each /v1 request needs its resource's read or write scope; keys
are made from roles over the API; a missing scope is 403 insufficient_permissions naming it
and nothing is written."""

from __future__ import annotations

import asyncpg
import httpx

from paygrid.app import create_app
from paygrid.config import Settings
from paygrid.domain import scopes
from paygrid.services.merchants import NewMerchant, issue_key
from tests.conftest import Api, confirmed_payment, row_counts


async def _key(pool: asyncpg.Pool, merchant: NewMerchant, granted: frozenset[str]) -> str:
    return (await issue_key(pool, merchant.id, "secret", False, scopes=sorted(granted))).secret


def _refused(response: httpx.Response, scope: str) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("permission_error", "insufficient_permissions")
    assert error["missing_scope"] == scope
    assert scope in error["message"]


async def test_roles_grant_what_the_issue_says(
    api: Api, client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    paid = (await api.post("/v1/payments", confirmed_payment(amount=5000))).json()
    viewer = Api(client, await _key(pool, merchant, scopes.ROLES["viewer"]))
    support = Api(client, await _key(pool, merchant, scopes.ROLES["support"]))
    operator = Api(client, await _key(pool, merchant, scopes.ROLES["operator"]))

    before = await row_counts(pool, merchant.id)
    assert (await viewer.get(f"/v1/payments/{paid['id']}")).status_code == 200
    assert (await viewer.get("/v1/customers")).status_code == 200
    _refused(
        await viewer.post("/v1/refunds", {"payment": paid["id"], "amount": 100}), "refunds:write"
    )
    _refused(await viewer.post("/v1/payments", confirmed_payment()), "payments:write")
    _refused(await operator.get("/v1/customers"), "customers:read")
    _refused(await operator.get("/v1/webhook_endpoints"), "webhooks:read")
    _refused(await support.post("/v1/customers", {"name": "Ada"}), "customers:write")
    for key in (viewer, support, operator):
        _refused(await key.post("/v1/api_keys", {"role": "viewer"}), "admin:write")
    _refused(await operator.get("/v1/connector_accounts"), "connector_accounts:read")
    assert await row_counts(pool, merchant.id) == before

    refund = await support.post("/v1/refunds", {"payment": paid["id"], "amount": 100})
    assert refund.status_code == 200, refund.text
    captured = await operator.post("/v1/payments", confirmed_payment(amount=700))
    assert captured.status_code == 200, captured.text
    refunded = await operator.post("/v1/refunds", {"payment": captured.json()["id"]})
    assert refunded.status_code == 200, refunded.text


async def test_a_standard_key_does_everything_but_administration(
    api: Api, client: httpx.AsyncClient
) -> None:
    assert (await api.get("/v1/connector_accounts")).status_code == 200
    _refused(await api.get("/v1/api_keys"), "admin:read")
    _refused(await api.get("/v1/admin/queues"), "admin:read")


async def test_admin_makes_rolls_and_revokes_keys(
    client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    admin = Api(client, await _key(pool, merchant, scopes.ROLES["admin"]))
    made = await admin.post("/v1/api_keys", {"name": "desk", "role": "support"})
    assert made.status_code == 200, made.text
    key = made.json()
    assert key["role"] == "support"
    assert key["secret"].startswith("sk_test_")
    assert key["last4"] == "…" + key["secret"][-4:]
    assert set(key["scopes"]) == scopes.ROLES["support"]
    listed = (await admin.get("/v1/api_keys", limit=100)).json()["data"]
    assert {k["id"] for k in listed} >= {key["id"]}
    assert all(k["secret"] is None for k in listed)
    desk = Api(client, key["secret"])
    assert (await desk.get("/v1/payments")).status_code == 200

    rolled = (await admin.post(f"/v1/api_keys/{key['id']}/roll")).json()
    assert rolled["id"] != key["id"] and rolled["role"] == "support"
    assert (await desk.get("/v1/payments")).status_code == 401
    fresh = Api(client, rolled["secret"])
    assert (await fresh.get("/v1/payments")).status_code == 200

    revoked = await admin.post(f"/v1/api_keys/{rolled['id']}/revoke")
    assert revoked.json()["revoked"] is not None
    assert (await fresh.get("/v1/payments")).status_code == 401

    custom = await admin.post("/v1/api_keys", {"scopes": ["payments:read"]})
    assert custom.json()["scopes"] == ["payments:read"] and custom.json()["role"] is None
    invalid: list[dict[str, object]] = [
        {"scopes": ["payments:delete"]},
        {"role": "viewer", "scopes": ["payments:read"]},
        {"scopes": []},
    ]
    for bad in invalid:
        response = await admin.post("/v1/api_keys", bad)
        assert response.status_code == 400, (bad, response.text)


async def test_keys_of_another_merchant_are_invisible(
    client: httpx.AsyncClient,
    merchant: NewMerchant,
    other_merchant: NewMerchant,
    pool: asyncpg.Pool,
) -> None:
    admin = Api(client, await _key(pool, merchant, scopes.ROLES["admin"]))
    theirs = other_merchant.keys[0].id
    assert (await admin.get(f"/v1/api_keys/{theirs}")).status_code == 404
    assert (await admin.post(f"/v1/api_keys/{theirs}/revoke")).status_code == 404


def test_every_v1_route_needs_a_scope(settings: Settings) -> None:
    """A new /v1 resource must be given a scope (provider webhooks are signed, not keyed)."""
    app = create_app(settings)
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith("/v1/") or path.startswith("/v1/provider_webhooks/"):
            continue
        for method in operations:
            needed = scopes.required_scope(method, path)
            assert needed in scopes.ALL_SCOPES, (method, path)
            assert needed.endswith(":read") == (method.upper() == "GET")
