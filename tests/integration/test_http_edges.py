"""HTTP edges from the second outside probe (issue 18 §5, issue 11 §1.8 and §2.4): real
``Allow`` headers, ``HEAD`` wherever ``GET`` works, no trailing-slash redirects, only an
empty body means "no parameters", unreadable bodies are ``invalid_json`` saying why,
control characters in paths and ``Idempotency-Key`` are 400, and HTTP Basic carries the key."""

from __future__ import annotations

import base64

import asyncpg
import httpx
import pytest

from paygrid.app import create_app
from paygrid.config import Settings
from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant
from tests.conftest import Api, auth, row_counts
from tests.integration import raw_asgi


def _error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error: dict[str, object] = response.json()["error"]
    assert error["code"] == code, response.text
    return error


# -- 405 and HEAD ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/payments", {"GET", "HEAD", "POST"}),
        ("DELETE", "/v1/payments/pay_missing", {"GET", "HEAD"}),
        ("PATCH", "/v1/customers/cus_missing", {"DELETE", "GET", "HEAD", "POST"}),
        ("GET", "/v1/payments/pay_missing/capture", {"POST"}),
        ("POST", "/healthz", {"GET", "HEAD"}),
    ],
)
async def test_405_names_the_allowed_methods(
    api: Api, client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path, headers=auth(api.key))
    _error(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("TRACE", "/v1/admin/queues", {"GET", "HEAD"}),
        ("PUT", "/v1/admin/queues", {"GET", "HEAD"}),
        ("DELETE", "/v1/api_keys", {"GET", "HEAD", "POST"}),
        ("POST", "/v1/api_keys/key_missing", {"GET", "HEAD"}),
    ],
)
async def test_a_method_no_route_serves_is_405_even_without_the_scope(
    api: Api, client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    """The scope check runs before routing, but a method no route serves at the path is
    the router's 405 for every key, not a 403 that depends on the key's scopes."""
    response = await client.request(method, path, headers=auth(api.key))
    _error(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


async def test_a_served_method_without_the_scope_is_still_403(
    api: Api, client: httpx.AsyncClient
) -> None:
    created = await client.post("/v1/api_keys", json={"role": "viewer"}, headers=auth(api.key))
    _error(created, 403, "insufficient_permissions")


@pytest.mark.parametrize("path", ["/v1/payments", "/v1/customers", "/healthz"])
async def test_head_answers_like_get_without_a_body(
    api: Api, client: httpx.AsyncClient, path: str
) -> None:
    got = await client.get(path, headers=auth(api.key))
    head = await client.head(path, headers=auth(api.key))
    assert head.status_code == got.status_code == 200, head.text
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


async def test_head_needs_the_read_scope_and_a_key(
    client: httpx.AsyncClient, merchant: NewMerchant
) -> None:
    assert (await client.head("/v1/payments")).status_code == 401
    publishable = merchant.key("publishable", livemode=False)
    assert (await client.head("/v1/payments", headers=auth(publishable))).status_code == 403


# -- no trailing-slash redirects ----------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/payments/"), ("GET", "/v1/customers/")])
async def test_a_trailing_slash_is_an_unknown_url_not_a_redirect(
    api: Api, client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(
        method, path, json={}, headers={**auth(api.key), "Host": "evil.example"}
    )
    _error(response, 404, "url_invalid")
    assert "location" not in response.headers


# -- bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b" ", b"\n", b"\x0b", b"\x0c", b" \t\r\n"])
async def test_a_whitespace_body_is_not_an_empty_one(
    api: Api, client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool, body: bytes
) -> None:
    before = await row_counts(pool, merchant.id)
    as_json = await client.post(
        "/v1/customers", content=body, headers={**auth(api.key), "Content-Type": "application/json"}
    )
    _error(as_json, 400, "invalid_json")
    as_text = await client.post(
        "/v1/customers", content=body, headers={**auth(api.key), "Content-Type": "text/plain"}
    )
    _error(as_text, 415, "unsupported_media_type")
    untyped = await client.post("/v1/customers", content=body, headers=auth(api.key))
    _error(untyped, 415, "unsupported_media_type")
    assert await row_counts(pool, merchant.id) == before


async def test_an_empty_body_still_means_no_parameters(api: Api, client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/customers", content=b"", headers=auth(api.key))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b'{"name": "\xff"}', "application/json", "UTF-8"),
        (b'{"name": "Ada"}', "application/json; charset=latin-1", "charset=latin-1"),
        (b'{"name": "Ada"}', "application/json; charset=utf-16", "charset=utf-16"),
        (
            b'{"name": "Ada", "metadata": {"n": ' + b"9" * 5000 + b"}}",
            "application/json",
            "integer",
        ),
    ],
    ids=["invalid-utf8", "latin-1", "utf-16", "huge-integer"],
)
async def test_unreadable_bodies_are_invalid_json_saying_why(
    api: Api, client: httpx.AsyncClient, body: bytes, content_type: str, says: str
) -> None:
    response = await client.post(
        "/v1/customers", content=body, headers={**auth(api.key), "Content-Type": content_type}
    )
    error = _error(response, 400, "invalid_json")
    assert says in str(error["message"])


async def test_utf8_charset_is_accepted(api: Api, client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/customers",
        content='{"name": "Zoë"}'.encode(),
        headers={**auth(api.key), "Content-Type": "application/json; charset=UTF-8"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Zoë"


# -- control characters -----------------------------------------------------------------------


@pytest.mark.parametrize("character", ["%00", "%01", "%0A", "%1F", "%7F"])
async def test_a_control_character_in_the_path_is_400(
    api: Api, client: httpx.AsyncClient, character: str
) -> None:
    for method, path in (
        ("GET", f"/v1/payments/pay_{character}x"),
        ("POST", f"/v1/payments/pay_{character}x/capture"),
        ("GET", f"/v1/customers/{character}"),
    ):
        response = await client.request(method, path, headers=auth(api.key))
        error = _error(response, 400, "parameter_invalid")
        assert error["param"] == "path"


@pytest.mark.parametrize("key", ["a\x00b", "a\x01b", "tab\there", "a\x7fb", "new\nline"])
async def test_a_control_character_in_the_idempotency_key_is_400(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool, deps: Deps, settings: Settings, key: str
) -> None:
    before = await row_counts(pool, merchant.id)
    # httpx refuses to send such header values: drive the app by hand.
    response = await raw_asgi.call(
        create_app(settings, deps=deps),
        "POST",
        "/v1/customers",
        [
            (b"authorization", f"Bearer {api.key}".encode()),
            (b"content-type", b"application/json"),
            (b"idempotency-key", key.encode("latin-1")),
        ],
        b"{}",
    )
    assert response.status == 400, response.body
    error = response.json()["error"]
    assert isinstance(error, dict)
    assert (error["code"], error["param"]) == ("idempotency_key_invalid", "Idempotency-Key")
    assert await row_counts(pool, merchant.id) == before


# -- HTTP Basic ---------------------------------------------------------------------------------


def _basic(user: str, password: str = "") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_the_key_works_as_the_basic_user(api: Api, client: httpx.AsyncClient) -> None:
    listed = await client.get("/v1/payments", headers=_basic(api.key))
    assert listed.status_code == 200, listed.text
    made = await client.post("/v1/customers", json={"name": "Ada"}, headers=_basic(api.key))
    assert made.status_code == 200, made.text
    with_curl = await client.get("/v1/payments", auth=(api.key, ""))
    assert with_curl.status_code == 200, with_curl.text


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("Basic !!!not-base64", "api_key_invalid"),
        ("Basic " + base64.b64encode(b":").decode(), "api_key_invalid"),
        ("Basic " + base64.b64encode(b"sk_test_nope:").decode(), "api_key_invalid"),
        ("Basic ", "api_key_invalid"),
        ("Digest abc", "api_key_invalid"),
    ],
)
async def test_bad_basic_credentials_are_401(
    client: httpx.AsyncClient, value: str, code: str
) -> None:
    response = await client.get("/v1/payments", headers={"Authorization": value})
    _error(response, 401, code)


async def test_basic_with_a_publishable_key_keeps_its_limits(
    client: httpx.AsyncClient, merchant: NewMerchant
) -> None:
    publishable = merchant.key("publishable", livemode=False)
    response = await client.get("/v1/payments", headers=_basic(publishable))
    _error(response, 403, "secret_key_required")


async def test_a_publishable_key_may_use_the_longest_idempotency_key(
    client: httpx.AsyncClient, merchant: NewMerchant
) -> None:
    publishable = merchant.key("publishable", livemode=False)
    headers = {**auth(publishable), "Idempotency-Key": "k" * 255}
    body = {
        "type": "card",
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
    }
    first = await client.post("/v1/payment_methods", json=body, headers=headers)
    again = await client.post("/v1/payment_methods", json=body, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert again.headers["idempotent-replayed"] == "true"
