"""Request validation: amounts and currencies, body parsing, metadata, emails and query
parameters. Every rejected request gets the standard error body with the request id, and
writes nothing for the merchant (no payment, customer, payment method, refund, event or
idempotency key)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from paygrid.services.merchants import NewMerchant
from tests.conftest import ERROR_FIELDS, SUCCESS_CARD, Api, auth, card, row_counts

MAX_BODY = 1_048_576
VALID = {"amount": 1000, "currency": "usd"}


def error_of(
    response: httpx.Response,
    status: int,
    *,
    code: str | None = None,
    param: str | None = None,
    error_type: str = "invalid_request_error",
) -> dict[str, Any]:
    """Check the standard error envelope and return the error object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) >= ERROR_FIELDS
    assert error["type"] == error_type
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert error["code"] == code, error
    assert error["param"] == param, error
    return error


@pytest.fixture
async def unchanged(pool: asyncpg.Pool, merchant: NewMerchant) -> AsyncIterator[None]:
    """The test's requests must not write anything for the merchant."""
    before = await row_counts(pool, merchant.id)
    yield
    assert await row_counts(pool, merchant.id) == before


def idem() -> dict[str, str]:
    return {"Idempotency-Key": f"val-{uuid.uuid4().hex}"}


# -- amounts ---------------------------------------------------------------------------------

MISSING = object()

BAD_AMOUNTS = [
    pytest.param(20.5, "amount_invalid", id="float"),
    pytest.param(2000.0, "amount_invalid", id="integral-float"),
    pytest.param("2000", "amount_invalid", id="numeric-string"),
    pytest.param("20.00", "amount_invalid", id="decimal-string"),
    pytest.param("", "amount_invalid", id="empty-string"),
    pytest.param(True, "amount_invalid", id="boolean"),
    pytest.param(None, "amount_invalid", id="null"),
    pytest.param([2000], "amount_invalid", id="list"),
    pytest.param({"value": 2000}, "amount_invalid", id="object"),
    pytest.param(0, "amount_invalid", id="zero"),
    pytest.param(-100, "amount_invalid", id="negative"),
    pytest.param(-(10**20), "amount_invalid", id="huge-negative"),
    pytest.param(99, "amount_too_small", id="below-usd-minimum"),
    pytest.param(99_999_999_901, "amount_too_large", id="above-usd-maximum"),
    pytest.param(2**63, "amount_too_large", id="beyond-bigint"),
    pytest.param(10**30, "amount_too_large", id="enormous"),
    pytest.param(MISSING, "parameter_missing", id="missing"),
]


@pytest.mark.parametrize(("amount", "code"), BAD_AMOUNTS)
@pytest.mark.parametrize("confirm", [False, True], ids=["create", "create-and-confirm"])
async def test_bad_payment_amount(
    api: Api, unchanged: None, amount: Any, code: str, confirm: bool
) -> None:
    body: dict[str, Any] = {"currency": "usd"}
    if amount is not MISSING:
        body["amount"] = amount
    if confirm:
        body.update(confirm=True, payment_method_data=card(SUCCESS_CARD))
    response = await api.post("/v1/payments", body, **idem())
    error_of(response, 400, code=code, param="amount")


@pytest.mark.parametrize(
    "amount",
    [
        pytest.param(20.5, id="float"),
        pytest.param("100", id="string"),
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param(True, id="boolean"),
    ],
)
async def test_bad_refund_amount(api: Api, unchanged: None, amount: Any) -> None:
    response = await api.post("/v1/refunds", {"payment": "pay_missing", "amount": amount}, **idem())
    error_of(response, 400, code="amount_invalid", param="amount")


@pytest.mark.parametrize("amount", [20.5, "100", 0, -1, True], ids=str)
async def test_bad_capture_amount(api: Api, unchanged: None, amount: Any) -> None:
    response = await api.post(
        "/v1/payments/pay_missing/capture", {"amount_to_capture": amount}, **idem()
    )
    error_of(response, 400, code="parameter_invalid", param="amount_to_capture")


# ISO code: (minimum, maximum) in minor units, as the currency registry defines them.
LIMITS = {
    "NGN": (100, 99_999_999_900),
    "GHS": (100, 99_999_999_900),
    "ZAR": (100, 99_999_999_900),
    "KES": (100, 99_999_999_900),
    "USD": (100, 99_999_999_900),
    "EUR": (50, 99_999_999_900),
    "GBP": (30, 99_999_999_900),
    "INR": (50, 99_999_999_900),
    "JPY": (50, 9_999_999_999),
    "KWD": (100, 99_999_999_999),
}


@pytest.mark.parametrize("currency", sorted(LIMITS))
async def test_amount_limits_per_currency(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool, currency: str
) -> None:
    low, high = LIMITS[currency]
    before = await row_counts(pool, merchant.id)
    for amount, code in ((low - 1, "amount_too_small"), (high + 1, "amount_too_large")):
        response = await api.post("/v1/payments", {"amount": amount, "currency": currency})
        error = error_of(response, 400, code=code, param="amount")
        assert currency in error["message"]
    assert await row_counts(pool, merchant.id) == before
    for amount in (low, high):
        response = await api.post("/v1/payments", {"amount": amount, "currency": currency.lower()})
        assert response.status_code == 200, response.text
        assert (response.json()["amount"], response.json()["currency"]) == (amount, currency)


async def test_zero_decimal_and_three_decimal_currencies(api: Api) -> None:
    """JPY has no minor unit: 50 means ¥50. KWD has three: 100 means 0.100 KWD."""
    yen = await api.post(
        "/v1/payments",
        {"amount": 50, "currency": "JPY", "confirm": True, "payment_method": "pm_card_visa"},
    )
    assert yen.status_code == 200, yen.text
    assert (yen.json()["status"], yen.json()["amount_received"]) == ("succeeded", 50)
    dinar = await api.post(
        "/v1/payments",
        {"amount": 1234, "currency": "kwd", "confirm": True, "payment_method": "pm_card_visa"},
    )
    assert dinar.status_code == 200, dinar.text
    assert (dinar.json()["currency"], dinar.json()["amount_received"]) == ("KWD", 1234)


@pytest.mark.parametrize("currency", ["XYZ", "btc", "us", "x"])
async def test_unsupported_currency(api: Api, unchanged: None, currency: str) -> None:
    response = await api.post("/v1/payments", {"amount": 1000, "currency": currency}, **idem())
    error_of(response, 400, code="currency_not_supported", param="currency")


@pytest.mark.parametrize(
    "currency",
    [pytest.param(v, id=repr(v)) for v in ("usdx", "", 840, None, ["usd"])],
)
async def test_malformed_currency(api: Api, unchanged: None, currency: Any) -> None:
    response = await api.post("/v1/payments", {"amount": 1000, "currency": currency}, **idem())
    error_of(response, 400, param="currency")


async def test_missing_currency(api: Api, unchanged: None) -> None:
    response = await api.post("/v1/payments", {"amount": 1000}, **idem())
    error_of(response, 400, code="parameter_missing", param="currency")


# -- bodies ----------------------------------------------------------------------------------

# A body each endpoint would otherwise accept (refunds fail later, on the unknown payment).
ENDPOINTS = {
    "payments": ("/v1/payments", {"amount": 1000, "currency": "usd"}),
    "customers": ("/v1/customers", {"name": "Ada", "email": "ada@example.com"}),
    "payment_methods": ("/v1/payment_methods", card(SUCCESS_CARD)),
    "refunds": ("/v1/refunds", {"payment": "pay_missing"}),
}


def _raw(body: bytes, content_type: str | None) -> dict[str, Any]:
    headers = {"Content-Type": content_type} if content_type else {}
    return {"content": body, "headers": headers}


def _oversized(valid: dict[str, Any]) -> bytes:
    return orjson.dumps({**valid, "padding": "x" * MAX_BODY})


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 65_536):
        yield data[start : start + 65_536]


# (id, builds the request from the endpoint's valid body, status, code, param)
BODY_CASES: list[tuple[str, Any, int, str | None, str | None]] = [
    (
        "truncated-json",
        lambda v: _raw(b'{"amount": 1000,', "application/json"),
        400,
        "invalid_json",
        None,
    ),
    ("not-json", lambda v: _raw(b"amount=1000", "application/json"), 400, "invalid_json", None),
    ("json-array", lambda v: _raw(b"[]", "application/json"), 400, "parameter_invalid", None),
    ("json-string", lambda v: _raw(b'"hello"', "application/json"), 400, "parameter_invalid", None),
    ("json-null", lambda v: _raw(b"null", "application/json"), 400, "parameter_invalid", None),
    ("invalid-utf8", lambda v: _raw(b'{"name": "\xff\xfe"}', "application/json"), 400, None, None),
    (
        "text-plain",
        lambda v: _raw(orjson.dumps(v), "text/plain"),
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "form-encoded",
        lambda v: _raw(b"amount=1000&currency=usd", "application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
        None,
    ),
    ("no-content-type", lambda v: _raw(orjson.dumps(v), None), 415, "unsupported_media_type", None),
    (
        "json-suffix-type",
        lambda v: _raw(orjson.dumps(v), "application/vnd.api+json"),
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "unknown-field",
        lambda v: {"json": {**v, "colour": "red"}},
        400,
        "parameter_unknown",
        "colour",
    ),
    ("oversized", lambda v: _raw(_oversized(v), "application/json"), 413, "body_too_large", None),
    (
        "oversized-chunked",
        lambda v: {
            "content": _chunks(_oversized(v)),
            "headers": {"Content-Type": "application/json"},
        },
        413,
        "body_too_large",
        None,
    ),
]


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize(
    ("build", "status", "code", "param"),
    [pytest.param(*case[1:], id=case[0]) for case in BODY_CASES],
)
async def test_bad_body_is_rejected_and_writes_nothing(
    client: httpx.AsyncClient,
    api: Api,
    unchanged: None,
    endpoint: str,
    build: Any,
    status: int,
    code: str | None,
    param: str | None,
) -> None:
    path, valid = ENDPOINTS[endpoint]
    request = build(valid)
    request["headers"] = {**request.get("headers", {}), **auth(api.key), **idem()}
    response = await client.post(path, **request)
    error_of(response, status, code=code, param=param)


async def test_nested_unknown_field_names_its_path(api: Api, unchanged: None) -> None:
    data = card(SUCCESS_CARD)
    data["card"]["colour"] = "gold"
    response = await api.post(
        "/v1/payments", {**VALID, "confirm": True, "payment_method_data": data}, **idem()
    )
    error_of(response, 400, code="parameter_unknown", param="payment_method_data[card][colour]")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/payments/pay_missing/confirm", {"payment_method": "pm_card_visa", "foo": 1}),
        ("/v1/payments/pay_missing/capture", {"foo": 1}),
        ("/v1/payments/pay_missing/cancel", {"foo": 1}),
        ("/v1/customers/cus_missing", {"foo": 1}),
        ("/v1/payment_methods/pm_missing/attach", {"customer": "cus_missing", "foo": 1}),
    ],
    ids=["confirm", "capture", "cancel", "customer-update", "attach"],
)
async def test_unknown_fields_on_object_endpoints(
    api: Api, unchanged: None, path: str, body: dict[str, Any]
) -> None:
    """Validation runs before the lookup: an unknown field is reported, not a missing object."""
    error_of(await api.post(path, body, **idem()), 400, code="parameter_unknown", param="foo")


async def test_body_exactly_at_the_limit_is_read(
    client: httpx.AsyncClient, api: Api, unchanged: None
) -> None:
    """The limit is inclusive: a 1 MiB body is parsed (and fails on its content), one byte
    more is refused unread."""
    skeleton = orjson.dumps({**VALID, "description": ""})
    body = orjson.dumps({**VALID, "description": "x" * (MAX_BODY - len(skeleton))})
    assert len(body) == MAX_BODY
    headers = {**auth(api.key), "Content-Type": "application/json"}
    at_limit = await client.post("/v1/payments", content=body, headers=headers)
    error_of(at_limit, 400, code="parameter_invalid", param="description")
    over = await client.post("/v1/payments", content=body + b" ", headers=headers)
    error_of(over, 413, code="body_too_large")


async def test_empty_post_body_means_no_parameters(
    client: httpx.AsyncClient, api: Api, unchanged: None
) -> None:
    response = await client.post("/v1/payments", headers=auth(api.key))
    error_of(response, 400, code="parameter_missing", param="amount")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {**VALID, "payment_method": "pm_card_visa", "payment_method_data": card(SUCCESS_CARD)},
            id="both-payment-methods",
        ),
        pytest.param({**VALID, "payment_method": "pm_does_not_exist"}, id="unknown-pm"),
        pytest.param({**VALID, "customer": "cus_does_not_exist"}, id="unknown-customer"),
        pytest.param({**VALID, "confirm": True}, id="confirm-without-pm"),
        pytest.param(
            {**VALID, "confirm": "yes", "payment_method": "pm_card_visa"}, id="confirm-not-bool"
        ),
        pytest.param({**VALID, "capture_method": "later"}, id="bad-capture-method"),
        pytest.param({**VALID, "reference": ""}, id="empty-reference"),
        pytest.param(
            {**VALID, "payment_method_data": card("4242424242424241")}, id="bad-card-number"
        ),
    ],
)
async def test_other_rejected_payment_creates_write_nothing(
    api: Api, unchanged: None, body: dict[str, Any]
) -> None:
    # No Idempotency-Key: a 402 card error is a saved (replayable) result by design.
    response = await api.post("/v1/payments", body)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "method",
    [{"payment_method_data": card(SUCCESS_CARD)}, {"payment_method": "pm_card_visa"}],
    ids=["payment_method_data", "magic-pm"],
)
async def test_duplicate_reference_writes_nothing(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool, method: dict[str, Any]
) -> None:
    reference = f"order-{uuid.uuid4().hex[:8]}"
    first = await api.post("/v1/payments", {**VALID, "reference": reference})
    assert first.status_code == 200, first.text
    before = await row_counts(pool, merchant.id)
    duplicate = await api.post("/v1/payments", {**VALID, "reference": reference, **method})
    error_of(duplicate, 409, code="reference_already_exists", param="reference")
    assert await row_counts(pool, merchant.id) == before


# -- request ids -----------------------------------------------------------------------------


async def _request(client: httpx.AsyncClient, api: Api, case: str, rid: str) -> httpx.Response:
    headers = {"X-Request-Id": rid}
    key = auth(api.key)
    match case:
        case "ok":
            return await client.get("/v1/payments", headers={**headers, **key})
        case "created":
            return await client.post("/v1/customers", json={}, headers={**headers, **key})
        case "healthz":
            return await client.get("/healthz", headers=headers)
        case "400":
            return await client.post("/v1/payments", json={}, headers={**headers, **key})
        case "401":
            return await client.get("/v1/payments", headers=headers)
        case "404-object":
            return await client.get("/v1/payments/pay_missing", headers={**headers, **key})
        case "404-route":
            return await client.get("/v1/nowhere", headers={**headers, **key})
        case "405":
            return await client.put("/v1/payments", headers={**headers, **key})
        case "413":
            return await client.post(
                "/v1/payments",
                content=b"x" * (MAX_BODY + 1),
                headers={**headers, **key, "Content-Type": "application/json"},
            )
        case "415":
            return await client.post(
                "/v1/payments",
                content=b"{}",
                headers={**headers, **key, "Content-Type": "text/csv"},
            )
        case "400-reference":
            return await client.post(
                "/v1/refunds",
                json={"payment": "pay_missing"},
                headers={**headers, **key},
            )
    raise AssertionError(case)


REQUEST_ID_CASES = [
    ("ok", 200),
    ("created", 200),
    ("healthz", 200),
    ("400", 400),
    ("401", 401),
    ("404-object", 404),
    ("404-route", 404),
    ("405", 405),
    ("413", 413),
    ("415", 415),
    ("400-reference", 400),
]


@pytest.mark.parametrize(("case", "status"), REQUEST_ID_CASES, ids=[c for c, _ in REQUEST_ID_CASES])
async def test_incoming_request_id_is_echoed(
    client: httpx.AsyncClient, api: Api, case: str, status: int
) -> None:
    rid = f"client-{uuid.uuid4().hex[:12]}:retry.1"
    response = await _request(client, api, case, rid)
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"] == rid
    if status >= 400:
        assert response.json()["error"]["request_id"] == rid


async def test_publishable_forbidden_error_carries_the_request_id(
    client: httpx.AsyncClient, merchant: NewMerchant
) -> None:
    rid = f"pk-{uuid.uuid4().hex[:12]}"
    response = await client.get(
        "/v1/payments",
        headers={**auth(merchant.key("publishable", livemode=False)), "X-Request-Id": rid},
    )
    error = error_of(response, 403, code="secret_key_required", error_type="permission_error")
    assert error["request_id"] == rid


@pytest.mark.parametrize(
    "incoming",
    [None, "has spaces", "x" * 129, "semi;colon", 'quote"d', ""],
    ids=["absent", "spaces", "too-long", "semicolon", "quote", "empty"],
)
async def test_unsafe_or_absent_request_id_is_replaced(
    client: httpx.AsyncClient, api: Api, incoming: str | None
) -> None:
    headers = auth(api.key)
    if incoming is not None:
        headers["X-Request-Id"] = incoming
    ok = await client.get("/v1/payments", headers=headers)
    failed = await client.post("/v1/payments", json={}, headers=headers)
    ids = [ok.headers["x-request-id"], failed.headers["x-request-id"]]
    assert all(i.startswith("req_") and i != incoming for i in ids)
    assert ids[0] != ids[1]
    assert failed.json()["error"]["request_id"] == ids[1]


async def test_replayed_error_request_id_matches_its_header(api: Api) -> None:
    key = f"retry-{uuid.uuid4().hex}"
    first = await api.post(
        "/v1/payments/pay_missing/capture", {}, **{"Idempotency-Key": key, "X-Request-Id": "one"}
    )
    error_of(first, 404, code="resource_missing", param="id")
    retry = await api.post(
        "/v1/payments/pay_missing/capture", {}, **{"Idempotency-Key": key, "X-Request-Id": "two"}
    )
    assert retry.headers.get("idempotent-replayed") == "true"
    assert retry.json()["error"]["request_id"] == retry.headers["x-request-id"]


# -- metadata --------------------------------------------------------------------------------


@pytest.fixture
async def customer_id(api: Api) -> str:
    response = await api.post("/v1/customers", {"name": "Metadata holder"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


METADATA_TARGETS = {
    "customer.create": ("/v1/customers", {}),
    "customer.update": ("/v1/customers/{customer}", {}),
    "payment.create": ("/v1/payments", VALID),
    "payment_method.create": ("/v1/payment_methods", card(SUCCESS_CARD)),
    "refund.create": ("/v1/refunds", {"payment": "pay_missing"}),
}

BAD_METADATA = [
    pytest.param({f"key{i}": "v" for i in range(51)}, "metadata", id="51-keys"),
    pytest.param({"k" * 41: "v"}, "metadata", id="41-char-key"),
    pytest.param({"": "v"}, "metadata", id="empty-key"),
    pytest.param({"k": "v" * 501}, "metadata", id="501-char-value"),
    pytest.param({"k": 1}, "metadata[k]", id="int-value"),
    pytest.param({"k": None}, "metadata[k]", id="null-value"),
    pytest.param({"k": {"nested": "v"}}, "metadata[k]", id="nested-value"),
    pytest.param(["k", "v"], "metadata", id="list"),
    pytest.param("k=v", "metadata", id="string"),
]


@pytest.mark.parametrize("target", sorted(METADATA_TARGETS))
@pytest.mark.parametrize(("metadata", "param"), BAD_METADATA)
async def test_bad_metadata(
    api: Api,
    customer_id: str,
    merchant: NewMerchant,
    pool: asyncpg.Pool,
    target: str,
    metadata: Any,
    param: str,
) -> None:
    path, base = METADATA_TARGETS[target]
    before = await row_counts(pool, merchant.id)
    response = await api.post(
        path.format(customer=customer_id), {**base, "metadata": metadata}, **idem()
    )
    error_of(response, 400, code="parameter_invalid", param=param)
    assert await row_counts(pool, merchant.id) == before
    stored = (await api.get(f"/v1/customers/{customer_id}")).json()
    assert stored["metadata"] == {}


GOOD_METADATA = [
    pytest.param({f"key{i}": "v" for i in range(50)}, id="50-keys"),
    pytest.param({"k" * 40: "v"}, id="40-char-key"),
    pytest.param({"k": "v" * 500}, id="500-char-value"),
    pytest.param({"ключ": "значение", "emoji": "💳" * 500}, id="unicode"),
    pytest.param({}, id="empty"),
]


@pytest.mark.parametrize("target", sorted(set(METADATA_TARGETS) - {"refund.create"}))
@pytest.mark.parametrize("metadata", GOOD_METADATA)
async def test_metadata_at_the_limits_is_accepted(
    api: Api, customer_id: str, target: str, metadata: dict[str, str]
) -> None:
    path, base = METADATA_TARGETS[target]
    response = await api.post(path.format(customer=customer_id), {**base, "metadata": metadata})
    assert response.status_code == 200, response.text
    assert response.json()["metadata"] == metadata


async def test_refund_metadata_at_the_limits_is_accepted(api: Api) -> None:
    payment = await api.post(
        "/v1/payments", {**VALID, "confirm": True, "payment_method": "pm_card_visa"}
    )
    metadata = {f"{i:0>40}": "v" * 500 for i in range(50)}
    refund = await api.post("/v1/refunds", {"payment": payment.json()["id"], "metadata": metadata})
    assert refund.status_code == 200, refund.text
    assert refund.json()["metadata"] == metadata


# -- customers' email ------------------------------------------------------------------------

BAD_EMAILS = [
    "not-an-email",
    "ada@",
    "@example.com",
    "ada lovelace@example.com",
    "ada@@example.com",
    "ada@example..com",
    "a" * 250 + "@example.com",
    "",
]


@pytest.mark.parametrize("email", BAD_EMAILS, ids=lambda e: e[:20] or "empty")
async def test_customer_create_with_bad_email(api: Api, unchanged: None, email: str) -> None:
    response = await api.post("/v1/customers", {"email": email, "name": "Ada"}, **idem())
    error_of(response, 400, code="parameter_invalid", param="email")


@pytest.mark.parametrize("email", BAD_EMAILS[:3], ids=lambda e: e[:20])
async def test_customer_update_with_bad_email(
    api: Api, customer_id: str, merchant: NewMerchant, pool: asyncpg.Pool, email: str
) -> None:
    before = await row_counts(pool, merchant.id)
    response = await api.post(f"/v1/customers/{customer_id}", {"email": email}, **idem())
    error_of(response, 400, code="parameter_invalid", param="email")
    assert await row_counts(pool, merchant.id) == before
    assert (await api.get(f"/v1/customers/{customer_id}")).json()["email"] is None


@pytest.mark.parametrize("email", [123, ["ada@example.com"]], ids=["int", "list"])
async def test_customer_email_must_be_a_string(api: Api, unchanged: None, email: Any) -> None:
    error_of(await api.post("/v1/customers", {"email": email}, **idem()), 400, param="email")


async def test_customer_with_good_email(api: Api) -> None:
    response = await api.post("/v1/customers", {"email": "ada.lovelace+test@example.com"})
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "ada.lovelace+test@example.com"


# -- query parameters ------------------------------------------------------------------------

LISTS = ["/v1/payments", "/v1/refunds", "/v1/customers", "/v1/payment_methods"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", ""])
async def test_bad_limit(api: Api, path: str, limit: str) -> None:
    response = await api.get(path, limit=limit)
    error_of(response, 400, code="parameter_invalid", param="limit")


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", ["1", "100"])
async def test_limit_bounds_are_accepted(api: Api, path: str, limit: str) -> None:
    response = await api.get(path, limit=limit)
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "list"


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/v1/payments", {"status": "paid"}, "status"),
        ("/v1/payments", {"created[gte]": "yesterday"}, "created[gte]"),
        ("/v1/payments", {"created[lte]": "1.5"}, "created[lte]"),
        ("/v1/payments", {"currency": "usdx"}, "currency"),
        ("/v1/customers", {"email": "a" * 255}, "email"),
    ],
    ids=["status", "created-gte", "created-lte", "currency", "email"],
)
async def test_bad_list_filters(api: Api, path: str, params: dict[str, str], param: str) -> None:
    error_of(await api.get(path, **params), 400, code="parameter_invalid", param=param)
