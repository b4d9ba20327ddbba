"""Tenant and mode isolation: another merchant's objects, and the other mode's objects of the
same merchant, behave exactly as if they did not exist (404, or 400 ``resource_missing`` when
referenced from a body), never show up in lists, and are never changed.

One world of objects is built per module and shared by the parametrized cases; every case
checks afterwards that the owner still sees its object unchanged, so a leaking write fails the
case that caused it rather than a later one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.app import create_app
from paygrid.bootstrap import build_deps
from paygrid.config import Settings
from paygrid.services.merchants import NewMerchant, create_merchant
from tests.conftest import SUCCESS_CARD, TEST_BASE_URL, Api, card, row_counts


@dataclass
class World:
    """Merchant A's objects in both modes, plus each intruder's own objects."""

    a: NewMerchant
    b: NewMerchant
    apis: dict[str, Api]  # "a_test", "a_live", "b_test", "b_live": secret keys
    test_ids: dict[str, str] = field(default_factory=dict)  # A's test-mode objects
    live_ids: dict[str, str] = field(default_factory=dict)  # A's live-mode objects
    own: dict[str, dict[str, str]] = field(default_factory=dict)  # each intruder's objects

    def merchant_of(self, who: str) -> NewMerchant:
        return self.a if who.startswith("a_") else self.b


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
async def world(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[World]:
    app = create_app(settings, deps=build_deps(pool, settings))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
        a = await create_merchant(pool, f"Isolation A {uuid.uuid4().hex[:6]}")
        b = await create_merchant(pool, f"Isolation B {uuid.uuid4().hex[:6]}")
        apis = {
            "a_test": Api(http, a.key("secret", livemode=False)),
            "a_live": Api(http, a.key("secret", livemode=True)),
            "b_test": Api(http, b.key("secret", livemode=False)),
            "b_live": Api(http, b.key("secret", livemode=True)),
        }
        w = World(a, b, apis)
        a_test = apis["a_test"]
        email = f"a-{uuid.uuid4().hex[:8]}@example.com"
        customer = ok(await a_test.post("/v1/customers", {"email": email, "name": "A"}))
        pm = ok(
            await a_test.post(
                "/v1/payment_methods", {**card(SUCCESS_CARD), "customer": customer["id"]}
            )
        )
        reference = f"a-ref-{uuid.uuid4().hex[:8]}"
        paid = ok(
            await a_test.post(
                "/v1/payments",
                {
                    "amount": 5000,
                    "currency": "usd",
                    "confirm": True,
                    "payment_method": pm["id"],
                    "customer": customer["id"],
                    "reference": reference,
                },
            )
        )
        assert paid["status"] == "succeeded"
        refund = ok(await a_test.post("/v1/refunds", {"payment": paid["id"], "amount": 1000}))
        authorized = ok(
            await a_test.post(
                "/v1/payments",
                {
                    "amount": 3000,
                    "currency": "eur",
                    "confirm": True,
                    "capture_method": "manual",
                    "payment_method": "pm_card_visa",
                },
            )
        )
        assert authorized["status"] == "requires_capture"
        draft = ok(await a_test.post("/v1/payments", {"amount": 1000, "currency": "usd"}))
        w.test_ids = {
            "customer": customer["id"],
            "email": email,
            "pm": pm["id"],
            "payment": paid["id"],
            "reference": reference,
            "refund": refund["id"],
            "authorized": authorized["id"],
            "draft": draft["id"],
        }
        live_email = f"a-live-{uuid.uuid4().hex[:8]}@example.com"
        live_customer = ok(
            await apis["a_live"].post("/v1/customers", {"email": live_email, "name": "A live"})
        )
        live_payment = ok(
            await apis["a_live"].post(
                "/v1/payments",
                {"amount": 1000, "currency": "usd", "customer": live_customer["id"]},
            )
        )
        assert live_payment["livemode"] is True
        w.live_ids = {
            "customer": live_customer["id"],
            "email": live_email,
            "payment": live_payment["id"],
            "reference": live_payment["reference"],
        }
        for who in ("b_test", "a_live", "b_live"):
            own = ok(await apis[who].post("/v1/customers", {"name": f"{who} own"}))
            w.own[who] = {"customer": own["id"]}
        w.own["a_test"] = {"customer": customer["id"]}
        b_draft = ok(await apis["b_test"].post("/v1/payments", {"amount": 1000, "currency": "usd"}))
        b_pm = ok(await apis["b_test"].post("/v1/payment_methods", card(SUCCESS_CARD)))
        w.own["b_test"].update(draft=b_draft["id"], pm=b_pm["id"])
        yield w


def fill(template: Any, values: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    return template


async def send(api: Api, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
    if method == "GET":
        return await api.get(path)
    if method == "DELETE":
        return await api.delete(path)
    return await api.post(path, body)


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "resource_missing"
    assert error["request_id"] == response.headers["x-request-id"]


# (case id, method, path, body, the owner's view of the target to compare before and after)
PATH_CASES = [
    ("payment.retrieve", "GET", "/v1/payments/{payment}", None, "/v1/payments/{payment}"),
    (
        "payment.confirm",
        "POST",
        "/v1/payments/{draft}/confirm",
        {"payment_method": "pm_card_visa"},
        "/v1/payments/{draft}",
    ),
    (
        "payment.capture",
        "POST",
        "/v1/payments/{authorized}/capture",
        {},
        "/v1/payments/{authorized}",
    ),
    (
        "payment.cancel",
        "POST",
        "/v1/payments/{authorized}/cancel",
        {"cancellation_reason": "fraudulent"},
        "/v1/payments/{authorized}",
    ),
    ("refund.retrieve", "GET", "/v1/refunds/{refund}", None, "/v1/refunds/{refund}"),
    ("customer.retrieve", "GET", "/v1/customers/{customer}", None, "/v1/customers/{customer}"),
    (
        "customer.update",
        "POST",
        "/v1/customers/{customer}",
        {"name": "Mallory", "metadata": {"owned": "yes"}},
        "/v1/customers/{customer}",
    ),
    ("customer.delete", "DELETE", "/v1/customers/{customer}", None, "/v1/customers/{customer}"),
    ("pm.retrieve", "GET", "/v1/payment_methods/{pm}", None, "/v1/payment_methods/{pm}"),
    (
        "pm.attach",
        "POST",
        "/v1/payment_methods/{pm}/attach",
        {"customer": "{own_customer}"},
        "/v1/payment_methods/{pm}",
    ),
    ("pm.detach", "POST", "/v1/payment_methods/{pm}/detach", {}, "/v1/payment_methods/{pm}"),
]

# Merchant A's live objects: only payments and customers exist in live mode.
LIVE_PATH_CASES = [
    ("payment.retrieve", "GET", "/v1/payments/{payment}", None, "/v1/payments/{payment}"),
    (
        "payment.confirm",
        "POST",
        "/v1/payments/{payment}/confirm",
        {"payment_method": "pm_card_visa"},
        "/v1/payments/{payment}",
    ),
    ("payment.capture", "POST", "/v1/payments/{payment}/capture", {}, "/v1/payments/{payment}"),
    ("payment.cancel", "POST", "/v1/payments/{payment}/cancel", {}, "/v1/payments/{payment}"),
    ("customer.retrieve", "GET", "/v1/customers/{customer}", None, "/v1/customers/{customer}"),
    (
        "customer.update",
        "POST",
        "/v1/customers/{customer}",
        {"name": "Mallory"},
        "/v1/customers/{customer}",
    ),
    ("customer.delete", "DELETE", "/v1/customers/{customer}", None, "/v1/customers/{customer}"),
]


async def _assert_path_isolated(
    world: World,
    owner: str,
    targets: dict[str, str],
    intruder: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    view: str,
    pool: asyncpg.Pool,
) -> None:
    values = {**targets, "own_customer": world.own[intruder]["customer"]}
    owner_api = world.apis[owner]
    before = ok(await owner_api.get(fill(view, values)))
    counts = await row_counts(pool, world.merchant_of(intruder).id)
    response = await send(world.apis[intruder], method, fill(path, values), fill(body, values))
    assert_not_found(response)
    assert ok(await owner_api.get(fill(view, values))) == before
    assert await row_counts(pool, world.merchant_of(intruder).id) == counts


@pytest.mark.parametrize("intruder", ["b_test", "a_live", "b_live"])
@pytest.mark.parametrize(
    ("method", "path", "body", "view"),
    [pytest.param(*case[1:], id=case[0]) for case in PATH_CASES],
)
async def test_test_mode_object_is_invisible_to_other_merchant_and_live_key(
    world: World,
    pool: asyncpg.Pool,
    intruder: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    view: str,
) -> None:
    await _assert_path_isolated(
        world, "a_test", world.test_ids, intruder, method, path, body, view, pool
    )


@pytest.mark.parametrize("intruder", ["a_test", "b_test", "b_live"])
@pytest.mark.parametrize(
    ("method", "path", "body", "view"),
    [pytest.param(*case[1:], id=case[0]) for case in LIVE_PATH_CASES],
)
async def test_live_object_is_invisible_to_test_key_and_other_merchant(
    world: World,
    pool: asyncpg.Pool,
    intruder: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    view: str,
) -> None:
    await _assert_path_isolated(
        world, "a_live", world.live_ids, intruder, method, path, body, view, pool
    )


# (case id, path, body, the param named in the error, the owner's view to compare)
BODY_CASES = [
    (
        "refund.create",
        "/v1/refunds",
        {"payment": "{payment}", "amount": 100},
        "payment",
        "/v1/payments/{payment}",
    ),
    (
        "payment.create.customer",
        "/v1/payments",
        {"amount": 1000, "currency": "usd", "customer": "{customer}"},
        "customer",
        "/v1/customers/{customer}",
    ),
    (
        "payment.create.payment_method",
        "/v1/payments",
        {"amount": 1000, "currency": "usd", "payment_method": "{pm}"},
        "payment_method",
        "/v1/payment_methods/{pm}",
    ),
    (
        "pm.create.customer",
        "/v1/payment_methods",
        {**card(SUCCESS_CARD), "customer": "{customer}"},
        "customer",
        "/v1/customers/{customer}",
    ),
]

# Only possible with a test-mode intruder: it needs its own draft payment and payment method.
TEST_ONLY_BODY_CASES = [
    (
        "payment.create.confirm.payment_method",
        "/v1/payments",
        {"amount": 1000, "currency": "usd", "confirm": True, "payment_method": "{pm}"},
        "payment_method",
        "/v1/payment_methods/{pm}",
    ),
    (
        "payment.confirm.payment_method",
        "/v1/payments/{own_draft}/confirm",
        {"payment_method": "{pm}"},
        "payment_method",
        "/v1/payment_methods/{pm}",
    ),
    (
        "pm.attach.customer",
        "/v1/payment_methods/{own_pm}/attach",
        {"customer": "{customer}"},
        "customer",
        "/v1/customers/{customer}",
    ),
]


async def _assert_reference_rejected(
    world: World,
    intruder: str,
    path: str,
    body: dict[str, Any],
    param: str,
    view: str,
    pool: asyncpg.Pool,
) -> None:
    own = world.own[intruder]
    values = {
        **world.test_ids,
        "own_draft": own.get("draft", ""),
        "own_pm": own.get("pm", ""),
    }
    owner_api = world.apis["a_test"]
    before = ok(await owner_api.get(fill(view, values)))
    intruder_merchant = world.merchant_of(intruder).id
    counts = await row_counts(pool, intruder_merchant)
    own_views = {
        k: ok(await world.apis[intruder].get(p))
        for k, p in (
            ("draft", f"/v1/payments/{own.get('draft')}"),
            ("pm", f"/v1/payment_methods/{own.get('pm')}"),
        )
        if own.get(k)
    }
    response = await world.apis[intruder].post(fill(path, values), fill(body, values))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "resource_missing",
        param,
    )
    assert ok(await owner_api.get(fill(view, values))) == before
    assert await row_counts(pool, intruder_merchant) == counts
    for k, p in (("draft", "/v1/payments/{}"), ("pm", "/v1/payment_methods/{}")):
        if k in own_views:
            assert ok(await world.apis[intruder].get(p.format(own[k]))) == own_views[k]


@pytest.mark.parametrize("intruder", ["b_test", "a_live", "b_live"])
@pytest.mark.parametrize(
    ("path", "body", "param", "view"),
    [pytest.param(*case[1:], id=case[0]) for case in BODY_CASES],
)
async def test_referencing_another_tenants_object_in_a_body_is_resource_missing(
    world: World,
    pool: asyncpg.Pool,
    intruder: str,
    path: str,
    body: dict[str, Any],
    param: str,
    view: str,
) -> None:
    await _assert_reference_rejected(world, intruder, path, body, param, view, pool)


@pytest.mark.parametrize(
    ("path", "body", "param", "view"),
    [pytest.param(*case[1:], id=case[0]) for case in TEST_ONLY_BODY_CASES],
)
async def test_other_merchants_objects_cannot_be_used_on_own_objects(
    world: World,
    pool: asyncpg.Pool,
    path: str,
    body: dict[str, Any],
    param: str,
    view: str,
) -> None:
    await _assert_reference_rejected(world, "b_test", path, body, param, view, pool)


async def test_live_customer_is_not_usable_by_test_key_or_other_merchant(
    world: World, pool: asyncpg.Pool
) -> None:
    live_customer = world.live_ids["customer"]
    for who in ("a_test", "b_test", "b_live"):
        counts = await row_counts(pool, world.merchant_of(who).id)
        response = await world.apis[who].post(
            "/v1/payments", {"amount": 1000, "currency": "usd", "customer": live_customer}
        )
        assert response.status_code == 400, (who, response.text)
        assert response.json()["error"]["code"] == "resource_missing"
        assert response.json()["error"]["param"] == "customer"
        assert await row_counts(pool, world.merchant_of(who).id) == counts


# (case id, path, query, which owned id must show up for the owner)
LIST_CASES = [
    ("payments", "/v1/payments", {}, "payment"),
    ("payments.by_customer", "/v1/payments", {"customer": "{customer}"}, "payment"),
    ("payments.by_reference", "/v1/payments", {"reference": "{reference}"}, "payment"),
    ("refunds", "/v1/refunds", {}, "refund"),
    ("refunds.by_payment", "/v1/refunds", {"payment": "{payment}"}, "refund"),
    ("customers", "/v1/customers", {}, "customer"),
    ("customers.by_email", "/v1/customers", {"email": "{email}"}, "customer"),
    ("pms", "/v1/payment_methods", {}, "pm"),
    ("pms.by_customer", "/v1/payment_methods", {"customer": "{customer}"}, "pm"),
]
LIVE_LIST_CASES = [c for c in LIST_CASES if c[3] in ("payment", "customer")]


async def _assert_list_isolated(
    world: World,
    owner: str,
    targets: dict[str, str],
    intruder: str,
    path: str,
    query: dict[str, str],
    expect: str,
) -> None:
    params = {**fill(query, targets), "limit": 100}
    owned = (await world.apis[owner].get(path, **params)).json()
    assert targets[expect] in [item["id"] for item in owned["data"]]
    response = await world.apis[intruder].get(path, **params)
    listing = ok(response)
    assert listing["object"] == "list"
    seen = {item["id"] for item in listing["data"]}
    assert not seen & set(targets.values())
    intruder_live = intruder.endswith("_live")
    assert all(item["livemode"] is intruder_live for item in listing["data"])
    if query:  # a filter naming A's object matches nothing for anyone else
        assert listing["data"] == []
        assert listing["has_more"] is False


@pytest.mark.parametrize("intruder", ["b_test", "a_live", "b_live"])
@pytest.mark.parametrize(
    ("path", "query", "expect"), [pytest.param(*c[1:], id=c[0]) for c in LIST_CASES]
)
async def test_lists_never_show_test_objects_of_another_tenant(
    world: World, intruder: str, path: str, query: dict[str, str], expect: str
) -> None:
    await _assert_list_isolated(world, "a_test", world.test_ids, intruder, path, query, expect)


@pytest.mark.parametrize("intruder", ["a_test", "b_test", "b_live"])
@pytest.mark.parametrize(
    ("path", "query", "expect"), [pytest.param(*c[1:], id=c[0]) for c in LIVE_LIST_CASES]
)
async def test_lists_never_show_live_objects_to_test_key_or_other_merchant(
    world: World, intruder: str, path: str, query: dict[str, str], expect: str
) -> None:
    await _assert_list_isolated(world, "a_live", world.live_ids, intruder, path, query, expect)


async def test_owner_sees_its_own_objects_in_each_mode(world: World) -> None:
    """The positive control for every case above: the ids are real and reachable."""
    a_test, a_live = world.apis["a_test"], world.apis["a_live"]
    for path in (
        f"/v1/payments/{world.test_ids['payment']}",
        f"/v1/payments/{world.test_ids['authorized']}",
        f"/v1/payments/{world.test_ids['draft']}",
        f"/v1/refunds/{world.test_ids['refund']}",
        f"/v1/customers/{world.test_ids['customer']}",
        f"/v1/payment_methods/{world.test_ids['pm']}",
    ):
        assert ok(await a_test.get(path))["livemode"] is False
    for path in (
        f"/v1/payments/{world.live_ids['payment']}",
        f"/v1/customers/{world.live_ids['customer']}",
    ):
        assert ok(await a_live.get(path))["livemode"] is True
    pm = ok(await a_test.get(f"/v1/payment_methods/{world.test_ids['pm']}"))
    assert pm["customer"] == world.test_ids["customer"]
    authorized = ok(await a_test.get(f"/v1/payments/{world.test_ids['authorized']}"))
    assert authorized["status"] == "requires_capture"


async def test_payment_reference_is_scoped_to_merchant_and_mode(world: World) -> None:
    """A's reference is free for B and for A's live mode: a conflict would leak its use."""
    reference = world.test_ids["reference"]
    for who in ("b_test", "a_live", "b_live"):
        created = ok(
            await world.apis[who].post(
                "/v1/payments", {"amount": 1000, "currency": "usd", "reference": reference}
            )
        )
        assert created["reference"] == reference
        assert created["livemode"] is who.endswith("_live")
    again = await world.apis["a_test"].post(
        "/v1/payments", {"amount": 1000, "currency": "usd", "reference": reference}
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "reference_already_exists"


async def test_idempotency_keys_are_scoped_to_merchant_and_mode(world: World) -> None:
    key = f"shared-{uuid.uuid4().hex}"
    body = {"name": "Same request", "metadata": {"k": "v"}}
    seen: dict[str, str] = {}
    for who in ("a_test", "b_test", "a_live", "b_live"):
        response = await world.apis[who].post("/v1/customers", body, **{"Idempotency-Key": key})
        created = ok(response)
        assert "idempotent-replayed" not in response.headers
        assert created["livemode"] is who.endswith("_live")
        seen[who] = created["id"]
    assert len(set(seen.values())) == 4
    replay = await world.apis["a_test"].post("/v1/customers", body, **{"Idempotency-Key": key})
    assert replay.headers.get("idempotent-replayed") == "true"
    assert ok(replay)["id"] == seen["a_test"]


# -- live mode --------------------------------------------------------------------------------


@pytest.fixture
def live(client: httpx.AsyncClient, merchant: NewMerchant) -> Api:
    return Api(client, merchant.key("secret", livemode=True))


async def test_live_key_creates_live_objects(
    live: Api, api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    customer = ok(await live.post("/v1/customers", {"name": "Live customer"}))
    payment = ok(
        await live.post(
            "/v1/payments", {"amount": 2500, "currency": "ngn", "customer": customer["id"]}
        )
    )
    assert customer["livemode"] is True
    assert payment["livemode"] is True
    assert payment["status"] == "requires_payment_method"
    assert payment["customer"] == customer["id"]
    rows = await pool.fetch(
        "SELECT livemode FROM payments WHERE merchant_id = $1"
        " UNION ALL SELECT livemode FROM customers WHERE merchant_id = $1",
        merchant.id,
    )
    assert [r["livemode"] for r in rows] == [True, True]
    events = await pool.fetch(
        "SELECT type, livemode FROM events WHERE merchant_id = $1 ORDER BY created_at, id",
        merchant.id,
    )
    assert [(e["type"], e["livemode"]) for e in events] == [
        ("customer.created", True),
        ("payment.created", True),
    ]
    test_created = ok(await api.post("/v1/customers", {"name": "Test customer"}))
    assert test_created["livemode"] is False


async def test_live_confirm_has_no_connector(
    live: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    payment = ok(
        await live.post(
            "/v1/payments",
            {"amount": 1000, "currency": "usd", "payment_method_types": ["card"]},
        )
    )
    counts = await row_counts(pool, merchant.id)
    # Ready for a hosted page, but no live connector account exists; and test-mode magic
    # payment methods do not exist in live mode.
    for body, code in (
        ({}, "no_connector_available"),
        ({"payment_method": "pm_card_visa"}, "resource_missing"),
    ):
        response = await live.post(f"/v1/payments/{payment['id']}/confirm", body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == code
    after = ok(await live.get(f"/v1/payments/{payment['id']}"))
    assert after["status"] == "requires_confirmation"
    assert after["attempts"] == []
    assert await row_counts(pool, merchant.id) == counts


async def test_live_create_with_confirm_has_no_connector_and_writes_nothing(
    live: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    counts = await row_counts(pool, merchant.id)
    response = await live.post(
        "/v1/payments",
        {"amount": 1000, "currency": "usd", "confirm": True, "payment_method_types": ["card"]},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "no_connector_available"
    assert await row_counts(pool, merchant.id) == counts


@pytest.mark.parametrize(
    ("kind", "path", "body"),
    [
        pytest.param(
            "secret",
            "/v1/payments",
            {"amount": 1000, "currency": "usd", "payment_method_data": card(SUCCESS_CARD)},
            id="payment_method_data",
        ),
        pytest.param("secret", "/v1/payment_methods", card(SUCCESS_CARD), id="tokenize-secret"),
        pytest.param(
            "publishable", "/v1/payment_methods", card(SUCCESS_CARD), id="tokenize-publishable"
        ),
    ],
)
async def test_live_card_data_is_not_allowed(
    client: httpx.AsyncClient,
    merchant: NewMerchant,
    pool: asyncpg.Pool,
    kind: str,
    path: str,
    body: dict[str, Any],
) -> None:
    key = merchant.key(kind, livemode=True)  # type: ignore[arg-type]
    counts = await row_counts(pool, merchant.id)
    response = await Api(client, key).post(path, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "card_data_not_allowed"
    assert error["param"] == "payment_method_data"
    assert await row_counts(pool, merchant.id) == counts


async def test_test_mode_magic_payment_methods_do_not_exist_in_live_mode(
    live: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    counts = await row_counts(pool, merchant.id)
    response = await live.post(
        "/v1/payments", {"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "resource_missing"
    assert response.json()["error"]["param"] == "payment_method"
    assert await row_counts(pool, merchant.id) == counts
