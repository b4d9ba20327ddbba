"""Rate limits per API key, per client IP and per customer's payment creations: 429
``rate_limit_exceeded`` with Retry-After, before anything is written.

The apps here count per minute rather than per second, so a slow machine cannot slide a
window open between requests. The shared-counter tests run against the real Redis at
``PAYGRID_TEST_REDIS_URL`` (``.ci/run`` sets it) and are skipped without it."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import limits
import pytest
from fastapi import FastAPI
from limits.aio.storage import RedisStorage
from pydantic import SecretStr

from paygrid.api.rate_limits import close_storage
from paygrid.app import create_app
from paygrid.config import Settings
from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant
from tests.conftest import (
    ERROR_FIELDS,
    SUCCESS_CARD,
    TEST_BASE_URL,
    auth,
    card,
    row_counts,
)

REDIS_URL = os.environ.get("PAYGRID_TEST_REDIS_URL", "")
PURCHASE = {
    "amount": 1500,
    "currency": "USD",
    "confirm": True,
    "payment_method_data": card(SUCCESS_CARD),
}
GENEROUS = "1000/minute"


AppFactory = Callable[..., FastAPI]


@pytest.fixture
async def limited_app(settings: Settings, deps: Deps) -> AsyncIterator[AppFactory]:
    """Builds apps with generous limits but those given; closes their storage afterwards."""
    built: list[FastAPI] = []

    def build(**update: Any) -> FastAPI:
        limits_update = {
            "rate_limit_per_key": GENEROUS,
            "rate_limit_per_ip": GENEROUS,
            "rate_limit_payments_per_customer": GENEROUS,
            **update,
        }
        built.append(create_app(settings.model_copy(update=limits_update), deps=deps))
        return built[-1]

    yield build
    for app in built:
        await close_storage(app.state.rate_limit_storage)


def client_of(app: FastAPI, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL)


def assert_rate_limited(response: httpx.Response, subject: str) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert error.keys() >= ERROR_FIELDS
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "rate_limit_exceeded"
    assert subject in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert error["retry_after"] == int(response.headers["retry-after"])


async def test_a_key_over_its_limit_gets_429_and_nothing_is_written(
    limited_app: AppFactory, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    key = merchant.key("secret", livemode=False)
    async with client_of(limited_app(rate_limit_per_key="3/minute")) as http:
        for _ in range(3):
            assert (await http.post("/v1/payments", json=PURCHASE, headers=auth(key))).is_success
        before = await row_counts(pool, merchant.id)
        over = await http.post(
            "/v1/payments", json=PURCHASE, headers=auth(key, **{"Idempotency-Key": "over-1"})
        )
        assert_rate_limited(over, "this API key")
        assert await row_counts(pool, merchant.id) == before
        # Reads count too.
        assert_rate_limited(await http.get("/v1/payments", headers=auth(key)), "this API key")


async def test_another_key_is_not_affected(
    limited_app: AppFactory, merchant: NewMerchant, other_merchant: NewMerchant
) -> None:
    first, second = merchant.key("secret", False), other_merchant.key("secret", False)
    async with client_of(limited_app(rate_limit_per_key="2/minute")) as http:
        for _ in range(2):
            assert (await http.get("/v1/payments", headers=auth(first))).status_code == 200
        assert (await http.get("/v1/payments", headers=auth(first))).status_code == 429
        assert (await http.get("/v1/payments", headers=auth(second))).status_code == 200


async def test_payment_creations_are_limited_per_customer(
    limited_app: AppFactory, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    key = merchant.key("secret", livemode=False)
    app = limited_app(rate_limit_payments_per_customer="2/minute")
    async with client_of(app) as http:
        busy, calm = [
            (await http.post("/v1/customers", json={}, headers=auth(key))).json()["id"]
            for _ in range(2)
        ]
        for _ in range(2):
            created = await http.post(
                "/v1/payments", json={**PURCHASE, "customer": busy}, headers=auth(key)
            )
            assert created.is_success, created.text
        before = await row_counts(pool, merchant.id)
        over = await http.post(
            "/v1/payments", json={**PURCHASE, "customer": busy}, headers=auth(key)
        )
        assert_rate_limited(over, f"customer {busy}")
        assert await row_counts(pool, merchant.id) == before
        # Other customers, payments without one, and other requests go on.
        for body in ({**PURCHASE, "customer": calm}, PURCHASE):
            assert (await http.post("/v1/payments", json=body, headers=auth(key))).is_success
        assert (await http.get(f"/v1/customers/{busy}", headers=auth(key))).status_code == 200


async def test_a_client_ip_over_its_limit_gets_429(
    limited_app: AppFactory, merchant: NewMerchant
) -> None:
    key = merchant.key("secret", livemode=False)
    app = limited_app(rate_limit_per_ip="2/minute")
    async with client_of(app, "203.0.113.7") as busy, client_of(app, "203.0.113.8") as calm:
        for _ in range(2):
            assert (await busy.get("/v1/payments", headers=auth(key))).status_code == 200
        assert_rate_limited(await busy.get("/v1/payments", headers=auth(key)), "this IP address")
        # Unauthenticated routes count too.
        assert (await busy.get("/payments/pay_missing/return")).status_code == 429
        assert (await calm.get("/v1/payments", headers=auth(key))).status_code == 200


async def test_bad_keys_are_limited_per_ip_before_any_key_lookup(
    limited_app: AppFactory,
) -> None:
    """A flood of invented keys is stopped by the IP limit, not answered 401 forever."""
    app = limited_app(rate_limit_per_ip="3/minute")
    async with client_of(app, "203.0.113.9") as attacker:
        codes = [
            (
                await attacker.get("/v1/payments", headers=auth(f"sk_test_{'x' * 28}{n:04d}"))
            ).status_code
            for n in range(5)
        ]
    assert codes[:3] == [401, 401, 401]
    assert codes[3:] == [429, 429]


async def test_x_forwarded_for_counts_only_behind_a_trusted_proxy(
    limited_app: AppFactory, merchant: NewMerchant
) -> None:
    key = merchant.key("secret", livemode=False)
    for trusted, second_status in ((False, 429), (True, 200)):
        app = limited_app(rate_limit_per_ip="1/minute", trusted_proxy=trusted)
        async with client_of(app, "10.0.0.2") as proxy:
            # The client may send its own X-Forwarded-For; the proxy appends the address it saw.
            for seen in ("198.51.100.1", "198.51.100.2"):
                headers = auth(key, **{"X-Forwarded-For": f"192.0.2.99, {seen}"})
                response = await proxy.get("/v1/payments", headers=headers)
            assert response.status_code == second_status


async def test_health_checks_are_exempt(limited_app: AppFactory) -> None:
    app = limited_app(rate_limit_per_ip="1/minute")
    async with client_of(app) as http:
        for _ in range(3):
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/readyz")).status_code == 200


async def test_a_storage_outage_fails_open(limited_app: AppFactory, merchant: NewMerchant) -> None:
    # Nothing listens on port 1: Redis is unreachable, and the API keeps serving.
    app = limited_app(rate_limit_per_key="1/minute", redis_url=SecretStr("redis://127.0.0.1:1/0"))
    key = merchant.key("secret", livemode=False)
    async with client_of(app) as http:
        for _ in range(2):
            assert (await http.get("/v1/payments", headers=auth(key))).status_code == 200


def test_the_defaults_are_the_documented_limits() -> None:
    fields = Settings.model_fields
    defaults = {
        name: limits.parse(fields[name].default)
        for name in ("rate_limit_per_key", "rate_limit_per_ip", "rate_limit_payments_per_customer")
    }
    per_second = limits.parse("1/second").get_expiry()
    assert {name: item.amount for name, item in defaults.items()} == {
        "rate_limit_per_key": 100,
        "rate_limit_per_ip": 200,
        "rate_limit_payments_per_customer": 10,
    }
    assert {item.get_expiry() for item in defaults.values()} == {per_second}
    assert fields["redis_url"].default is None
    assert fields["trusted_proxy"].default is False


async def test_the_429_is_documented(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    documented = spec["paths"]["/v1/payments"]["post"]["responses"]["429"]
    assert "rate_limit_exceeded" in documented["description"]


@pytest.mark.skipif(
    not REDIS_URL,
    reason="PAYGRID_TEST_REDIS_URL is unset: no Redis to share counts in (.ci/run sets it to "
    "redis://127.0.0.1:6379/0)",
)
class TestSharedInRedis:
    @pytest.fixture
    async def prefix(self) -> AsyncIterator[str]:
        """A key prefix of this test's own; only its keys are deleted afterwards."""
        prefix = f"paygrid-test-{uuid.uuid4().hex[:12]}"
        yield prefix
        storage = RedisStorage("async+" + REDIS_URL, key_prefix=prefix)
        await storage.reset()
        await close_storage(storage)

    async def test_two_processes_share_one_count(
        self, limited_app: AppFactory, merchant: NewMerchant, prefix: str
    ) -> None:
        update = {"rate_limit_per_key": "4/minute", "redis_url": SecretStr(REDIS_URL)}
        first = limited_app(redis_key_prefix=prefix, **update)
        second = limited_app(redis_key_prefix=prefix, **update)
        key = merchant.key("secret", livemode=False)
        async with client_of(first) as one, client_of(second) as two:
            for http in (one, one, two, two):
                assert (await http.get("/v1/payments", headers=auth(key))).status_code == 200
            assert_rate_limited(await one.get("/v1/payments", headers=auth(key)), "this API key")
            assert_rate_limited(await two.get("/v1/payments", headers=auth(key)), "this API key")

    async def test_another_prefix_counts_apart(
        self, limited_app: AppFactory, merchant: NewMerchant, prefix: str
    ) -> None:
        key = merchant.key("secret", livemode=False)
        update = {"rate_limit_per_key": "1/minute", "redis_url": SecretStr(REDIS_URL)}
        for suffix in ("a", "b"):
            app = limited_app(redis_key_prefix=f"{prefix}:{suffix}", **update)
            async with client_of(app) as http:
                assert (await http.get("/v1/payments", headers=auth(key))).status_code == 200
