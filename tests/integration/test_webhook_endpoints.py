"""``/v1/webhook_endpoints``: CRUD, the secret shown once and encrypted at rest, the SSRF
guard, rotation, and isolation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import asyncpg
import httpx
import pytest

from paygrid.app import create_app
from paygrid.bootstrap import build_deps
from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import Settings
from paygrid.services.merchants import NewMerchant
from tests.conftest import TEST_BASE_URL, Api, auth
from tests.unit.test_url_safety import DNS, HOSTILE, FakeResolver

LOCAL = "http://127.0.0.1:9/hooks"


async def _create(api: Api, **fields: object) -> dict[str, object]:
    response = await api.post(
        "/v1/webhook_endpoints", {"url": LOCAL, "enabled_events": ["*"], **fields}
    )
    assert response.status_code == 200, response.text
    created: dict[str, object] = response.json()
    return created


async def test_create_shows_the_secret_once_and_stores_it_encrypted(
    api: Api, pool: asyncpg.Pool
) -> None:
    created = await _create(
        api, description="orders", enabled_events=["refund.succeeded", "payment.succeeded"]
    )
    secret = created["secret"]
    assert isinstance(secret, str) and secret.startswith("whsec_")
    assert created["enabled_events"] == ["payment.succeeded", "refund.succeeded"]
    assert created["status"] == "enabled" and created["paused"] is False
    fetched = (await api.get(f"/v1/webhook_endpoints/{created['id']}")).json()
    assert fetched["secret"] is None
    listed = (await api.get("/v1/webhook_endpoints")).json()
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert all(e["secret"] is None for e in listed["data"])
    stored = await pool.fetchval(
        "SELECT secret_ciphertext FROM webhook_endpoints WHERE id = $1", created["id"]
    )
    assert secret.encode() not in bytes(stored)
    assert secret.removeprefix("whsec_").encode() not in bytes(stored)


async def test_update_and_delete(api: Api) -> None:
    created = await _create(api, description="old")
    path = f"/v1/webhook_endpoints/{created['id']}"
    updated = (
        await api.post(path, {"enabled_events": ["payment.succeeded"], "description": None})
    ).json()
    assert updated["enabled_events"] == ["payment.succeeded"] and updated["description"] is None
    disabled = (await api.post(path, {"status": "disabled"})).json()
    assert (disabled["status"], disabled["disabled_reason"]) == ("disabled", "disabled_by_merchant")
    enabled = (await api.post(path, {"status": "enabled"})).json()
    assert (enabled["status"], enabled["disabled_reason"]) == ("enabled", None)
    unchanged = (await api.post(path, {"url": None})).json()
    assert unchanged["url"] == LOCAL
    deleted = await api.delete(path)
    assert deleted.json() == {"id": created["id"], "object": "webhook_endpoint", "deleted": True}
    assert (await api.get(path)).status_code == 404
    assert (await api.post(path, {"description": "x"})).status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"url": LOCAL, "enabled_events": ["payment.exploded"]}, "enabled_events"),
        ({"url": LOCAL, "enabled_events": []}, "enabled_events"),
        ({"url": LOCAL}, "enabled_events"),
        ({"url": "ftp://example.com/x", "enabled_events": ["*"]}, "url"),
        ({"url": "not a url", "enabled_events": ["*"]}, "url"),
        ({"url": "https://user:pw@example.com/x", "enabled_events": ["*"]}, "url"),
    ],
)
async def test_bad_input_is_rejected(
    api: Api, body: dict[str, object], param: str, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    response = await api.post("/v1/webhook_endpoints", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM webhook_endpoints WHERE merchant_id = $1", merchant.id
        )
        == 0
    )


@pytest.fixture
async def guarded(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the default (empty) allow-list and fixed DNS answers."""
    unlimited = "1000000/second"
    settings = Settings(
        public_url=TEST_BASE_URL, rate_limit_per_key=unlimited, rate_limit_per_ip=unlimited
    )
    deps = replace(build_deps(pool, settings, bookkeeping_pool=bookkeeping_pool), resolver=DNS)
    app = create_app(settings, deps=deps)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=TEST_BASE_URL
    ) as http:
        yield http


@pytest.mark.parametrize("livemode", [False, True])
async def test_create_and_update_refuse_every_hostile_url(
    guarded: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool, livemode: bool
) -> None:
    api = Api(guarded, merchant.key("secret", livemode=livemode))
    safe = "https://hooks.example.com/paygrid"
    endpoint = await api.post("/v1/webhook_endpoints", {"url": safe, "enabled_events": ["*"]})
    assert endpoint.status_code == 200, endpoint.text
    path = f"/v1/webhook_endpoints/{endpoint.json()['id']}"
    for url in HOSTILE:
        url = url.replace("http://", "https://", 1) if livemode else url
        created = await api.post("/v1/webhook_endpoints", {"url": url, "enabled_events": ["*"]})
        updated = await api.post(path, {"url": url})
        for response in (created, updated):
            assert response.status_code == 400, (url, response.text)
            error = response.json()["error"]
            assert (error["code"], error["param"]) == ("url_not_allowed", "url"), url
    assert (await api.get(path)).json()["url"] == safe
    stored = await pool.fetchval(
        "SELECT count(*) FROM webhook_endpoints WHERE merchant_id = $1", merchant.id
    )
    assert stored == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hooks",  # live mode needs https
        "https://127.0.0.2/hooks",
        "https://localhost/hooks",
        "https://10.1.2.3/hooks",
        "https://192.168.0.10/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hooks",
    ],
)
async def test_live_mode_refuses_unsafe_destinations(
    client: httpx.AsyncClient, merchant: NewMerchant, url: str
) -> None:
    response = await client.post(
        "/v1/webhook_endpoints",
        json={"url": url, "enabled_events": ["*"]},
        headers=auth(merchant.key("secret", livemode=True)),
    )
    assert response.status_code == 400, response.text
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
        "url_not_allowed",
        "url",
    )


async def test_live_allowlist_overrides_the_guard(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    settings = Settings(public_url=TEST_BASE_URL, webhook_allowed_hosts="hooks.internal.test")
    deps = build_deps(pool, settings, bookkeeping_pool=bookkeeping_pool)
    resolver = FakeResolver({"hooks.internal.test": ["10.20.30.40"]})
    app = create_app(settings, deps=replace(deps, resolver=resolver))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=TEST_BASE_URL
    ) as http:
        response = await http.post(
            "/v1/webhook_endpoints",
            json={"url": "https://hooks.internal.test/x", "enabled_events": ["*"]},
            headers=auth(merchant.key("secret", livemode=True)),
        )
    assert response.status_code == 200, response.text
    assert response.json()["livemode"] is True


async def test_rotation_keeps_the_old_secret_for_a_day(api: Api, pool: asyncpg.Pool) -> None:
    created = await _create(api)
    rotated = (await api.post(f"/v1/webhook_endpoints/{created['id']}/rotate_secret")).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    expires = await pool.fetchval(
        "SELECT previous_secret_expires_at FROM webhook_endpoints WHERE id = $1", created["id"]
    )
    assert timedelta(hours=23) < expires - SYSTEM_CLOCK.now() <= timedelta(hours=24)


async def test_isolation_and_key_kind(
    api: Api, client: httpx.AsyncClient, other_merchant: NewMerchant, merchant: NewMerchant
) -> None:
    created = await _create(api)
    path = f"/v1/webhook_endpoints/{created['id']}"
    for key in (other_merchant.key("secret", False), merchant.key("secret", True)):
        assert (await client.get(path, headers=auth(key))).status_code == 404
        assert (await client.post(f"{path}/rotate_secret", headers=auth(key))).status_code == 404
        assert (await client.delete(path, headers=auth(key))).status_code == 404
        listed = (await client.get("/v1/webhook_endpoints", headers=auth(key))).json()
        assert created["id"] not in [e["id"] for e in listed["data"]]
    publishable = await client.get(
        "/v1/webhook_endpoints", headers=auth(merchant.key("publishable", False))
    )
    assert publishable.status_code == 403


async def test_delivery_routes_are_isolated(
    api: Api, client: httpx.AsyncClient, merchant: NewMerchant, other_merchant: NewMerchant
) -> None:
    created = await _create(api)
    await api.post("/v1/customers", {"name": "Ada"})  # writes an event
    event_id = (await api.get("/v1/events", limit=1)).json()["data"][0]["id"]
    intruders = (other_merchant.key("secret", False), merchant.key("secret", True))
    for key in intruders:
        headers = auth(key)
        assert (
            await client.post(f"/v1/webhook_endpoints/{created['id']}/test", headers=headers)
        ).status_code == 404
        assert (
            await client.post(
                f"/v1/webhook_endpoints/{created['id']}/replay", json={}, headers=headers
            )
        ).status_code == 404
        assert (
            await client.get(f"/v1/webhook_endpoints/{created['id']}/deliveries", headers=headers)
        ).status_code == 404
        assert (
            await client.get(f"/v1/events/{event_id}/deliveries", headers=headers)
        ).status_code == 404
        assert (
            await client.post(f"/v1/events/{event_id}/redeliver", json={}, headers=headers)
        ).status_code == 404
    own = await api.post(f"/v1/events/{event_id}/redeliver", {"endpoint": "we_missing"})
    assert own.status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"status": "succeeded"}, "status"),
        ({"created": {"gte": "yesterday"}}, "created[gte]"),
        ({"since": 1}, "since"),
    ],
)
async def test_replay_rejects_bad_input(api: Api, body: dict[str, object], param: str) -> None:
    created = await _create(api)
    response = await api.post(f"/v1/webhook_endpoints/{created['id']}/replay", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_pause_of_an_unknown_endpoint_is_404(
    api: Api, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    from paygrid.services.merchants import issue_key

    admin = Api(
        api.http, (await issue_key(pool, merchant.id, "secret", False, scopes=["admin"])).secret
    )
    response = await admin.post("/v1/admin/webhooks/pause", {"endpoint": "we_missing"})
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "endpoint"


async def test_admin_routes_cannot_touch_another_merchants_endpoints(
    api: Api, pool: asyncpg.Pool, other_merchant: NewMerchant
) -> None:
    from paygrid.services.merchants import issue_key

    created = await _create(api)
    intruder_key = await issue_key(pool, other_merchant.id, "secret", False, scopes=["admin"])
    intruder = Api(api.http, intruder_key.secret)
    for path in ("/v1/admin/webhooks/pause", "/v1/admin/webhooks/resume"):
        response = await intruder.post(path, {"endpoint": created["id"]})
        assert response.status_code == 404, response.text
    everything = await intruder.post("/v1/admin/webhooks/pause", {})
    assert everything.json()["endpoints"] == 0  # the intruder has no endpoints of its own
    mine = (await api.get(f"/v1/webhook_endpoints/{created['id']}")).json()
    assert mine["paused"] is False
