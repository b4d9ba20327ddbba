"""HTTP hardening: security headers on every response, CORS only on publishable-key routes,
a JSON depth limit, constant-time key checks, and no internals in error responses."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from paygrid.app import create_app
from paygrid.config import Settings
from paygrid.dependencies import Deps
from paygrid.domain.errors import AuthenticationFailed
from paygrid.services import merchants as merchant_service
from paygrid.services.merchants import Authenticator, NewMerchant
from tests.conftest import ERROR_FIELDS, TEST_BASE_URL, Api, auth, row_counts

ORIGIN = "https://shop.example"
CARD_BODY = {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                      "exp_year": 2034, "cvc": "123"}}  # fmt: skip


def _client(app: FastAPI, base_url: str = TEST_BASE_URL) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=base_url)


@pytest.fixture
async def boom_client(deps: Deps, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with one more route, which fails with an unexpected exception."""
    app = create_app(settings, deps=deps)

    async def boom() -> dict[str, str]:
        raise RuntimeError("connection to db-internal.corp:5432 lost; password=hunter2")

    app.add_api_route("/boom", boom)
    async with _client(app) as http:
        yield http


def _assert_hardened(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "strict-transport-security" not in response.headers  # plain HTTP here


async def test_api_responses_carry_security_headers_and_are_not_cached(api: Api) -> None:
    for response in (
        await api.get("/v1/payments"),  # 200
        await api.get("/v1/payments/pay_missing"),  # 404
        await api.http.get("/v1/payments"),  # 401 without a key
    ):
        _assert_hardened(response)
        assert response.headers["content-security-policy"] == (
            "default-src 'none'; frame-ancestors 'none'"
        )
        assert response.headers["cache-control"] == "no-store"


async def test_html_pages_get_a_page_policy(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    _assert_hardened(docs)
    assert "script-src" in docs.headers["content-security-policy"]
    unknown = await client.get("/nowhere")
    _assert_hardened(unknown)
    assert "cache-control" not in unknown.headers  # only /v1 is forced to no-store


async def test_hsts_only_over_https_or_behind_a_tls_proxy(deps: Deps, settings: Settings) -> None:
    async with _client(create_app(settings, deps=deps), "https://testserver") as https:
        secure = await https.get("/nowhere")
    assert secure.headers["strict-transport-security"].startswith("max-age=")
    proxied = settings.model_copy(update={"behind_tls_proxy": True})
    async with _client(create_app(proxied, deps=deps)) as http:
        behind_proxy = await http.get("/nowhere")
    assert "strict-transport-security" in behind_proxy.headers


async def test_unexpected_errors_return_the_generic_body_with_headers(
    boom_client: httpx.AsyncClient,
) -> None:
    response = await boom_client.get("/boom")
    assert response.status_code == 500
    error = response.json()["error"]
    assert set(error) == ERROR_FIELDS
    assert error["type"] == "api_error" and error["request_id"].startswith("req_")
    for leak in ("Traceback", "RuntimeError", "hunter2", "db-internal", "boom"):
        assert leak not in response.text
    _assert_hardened(response)


async def test_validation_errors_do_not_echo_internals(api: Api) -> None:
    response = await api.post(
        "/v1/payments", {"amount": {"$gt": 1}, "currency": "USD", "secret_field": "x" * 50}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == ERROR_FIELDS
    for leak in ("pydantic", "errors.pydantic.dev", "Traceback", "input_value", "$gt", "loc"):
        assert leak not in response.text


# -- CORS ------------------------------------------------------------------------------------


def _preflight(method: str = "POST", origin: str = ORIGIN) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_preflight_for_tokenizing_needs_no_key(client: httpx.AsyncClient) -> None:
    response = await client.options("/v1/payment_methods", headers=_preflight())
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in response.headers
    _assert_hardened(response)


async def test_tokenizing_from_a_browser_is_allowed(
    client: httpx.AsyncClient, merchant: NewMerchant
) -> None:
    headers = auth(merchant.key("publishable", livemode=False), Origin=ORIGIN)
    response = await client.post("/v1/payment_methods", json=CARD_BODY, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in response.headers["access-control-expose-headers"]


async def test_other_routes_never_answer_cross_origin(
    client: httpx.AsyncClient, merchant: NewMerchant
) -> None:
    for path, method in (
        ("/v1/payments", "POST"),
        ("/v1/payment_methods", "GET"),  # listing needs a secret key
        ("/v1/customers", "POST"),
    ):
        preflight = await client.options(path, headers=_preflight(method))
        assert preflight.status_code == 403, path
        assert preflight.json()["error"]["code"] == "cors_not_allowed"
        assert "access-control-allow-origin" not in preflight.headers
    listed = await client.get(
        "/v1/payments", headers=auth(merchant.key("secret", livemode=False), Origin=ORIGIN)
    )
    assert listed.status_code == 200
    assert "access-control-allow-origin" not in listed.headers


async def test_configured_origins_are_echoed_others_refused(deps: Deps, settings: Settings) -> None:
    only_shop = settings.model_copy(update={"cors_origins": f"{ORIGIN}, https://other.example"})
    async with _client(create_app(only_shop, deps=deps)) as http:
        allowed = await http.options("/v1/payment_methods", headers=_preflight())
        refused = await http.options(
            "/v1/payment_methods", headers=_preflight(origin="https://evil.example")
        )
        checkout = await http.options("/checkout/cs_123", headers=_preflight("GET"))
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert allowed.headers["vary"] == "Origin"
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    assert checkout.status_code == 204  # future checkout routes are browser routes too


# -- body limits -----------------------------------------------------------------------------


def _nested(depth: int) -> bytes:
    return b'{"metadata": ' * (depth - 1) + b"{}" + b"}" * (depth - 1)


async def test_too_deeply_nested_json_is_rejected_and_writes_nothing(
    api: Api, merchant: NewMerchant, pool: Any
) -> None:
    before = await row_counts(pool, merchant.id)
    response = await api.http.post(
        "/v1/customers",
        content=_nested(33),
        headers=auth(api.key, **{"Content-Type": "application/json"}),
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "json_too_deep"
    assert await row_counts(pool, merchant.id) == before
    at_limit = await api.http.post(
        "/v1/customers",
        content=_nested(32),
        headers=auth(api.key, **{"Content-Type": "application/json"}),
    )
    assert at_limit.json()["error"]["code"] != "json_too_deep"  # the schema decides now


async def test_brackets_inside_strings_do_not_count(api: Api) -> None:
    response = await api.post("/v1/customers", {"name": "[" * 100 + "{" * 100})
    assert response.status_code == 200, response.text


# -- keys ------------------------------------------------------------------------------------


async def test_a_key_with_a_known_prefix_is_still_compared_in_constant_time(
    deps: Deps, merchant: NewMerchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lookup prefix (type + 8 characters) is not secret; the rest of the key is only
    ever checked by comparing hashes with hmac.compare_digest, never by an early exit."""
    compared: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # as merchants.py calls it
    authenticator = Authenticator(deps.pool)
    real = merchant.key("secret", livemode=False)
    forged = real[: merchant_service.LOOKUP_LENGTH] + "x" * (len(real) - 16)
    with pytest.raises(AuthenticationFailed):
        await authenticator.authenticate(forged)
    assert compared and all(len(a) == len(b) == 32 for a, b in compared)  # full SHA-256 hashes
    compared.clear()
    principal = await authenticator.authenticate(real)
    assert principal.merchant_id == merchant.id and compared
