"""The catalog over HTTP: products and prices created, read, updated and listed as Stripe
shapes them; the validation of currencies, amounts and intervals; immutable price fields;
lookup keys unique among active prices; deletion only of unpriced products; isolation by
merchant and mode; idempotent creation; scopes; and the events each change writes."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.dependencies import Deps
from paygrid.domain import scopes
from paygrid.services.merchants import NewMerchant, issue_key
from paygrid.webhooks.dispatcher import dispatch_pending
from tests.conftest import ERROR_FIELDS, Api


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(
    response: httpx.Response, status: int, code: str, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= ERROR_FIELDS
    assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


async def event_types(pool: asyncpg.Pool, object_id: str) -> list[str]:
    rows = await pool.fetch("SELECT type FROM events WHERE object_id = $1 ORDER BY id", object_id)
    return [r["type"] for r in rows]


async def product(api: Api, **fields: Any) -> dict[str, Any]:
    return ok(await api.post("/v1/products", {"name": "Gold plan", **fields}))


async def price(api: Api, product_id: str, **fields: Any) -> dict[str, Any]:
    body = {"product": product_id, "currency": "USD", "unit_amount": 1500, **fields}
    return ok(await api.post("/v1/prices", body))


PRODUCT_FIELDS = {
    "id",
    "object",
    "active",
    "name",
    "description",
    "metadata",
    "livemode",
    "created",
    "updated",
}
PRICE_FIELDS = {
    "id",
    "object",
    "active",
    "billing_scheme",
    "currency",
    "unit_amount",
    "unit_amount_decimal",
    "product",
    "type",
    "recurring",
    "lookup_key",
    "nickname",
    "metadata",
    "livemode",
    "created",
}


# --- products -----------------------------------------------------------------------------


async def test_a_product_is_created_read_updated_and_archived(api: Api, pool: asyncpg.Pool) -> None:
    created = await product(api, description="Everything", metadata={"tier": "gold"})
    assert set(created) == PRODUCT_FIELDS
    assert created["id"].startswith("prod_") and created["object"] == "product"
    assert (created["name"], created["description"], created["active"]) == (
        "Gold plan",
        "Everything",
        True,
    )
    assert created["livemode"] is False and created["created"] == created["updated"] > 0
    assert ok(await api.get(f"/v1/products/{created['id']}")) == created

    updated = ok(
        await api.post(
            f"/v1/products/{created['id']}",
            {"name": "Gold", "description": "", "metadata": {"tier": "", "team": "a"}},
        )
    )
    assert (updated["name"], updated["description"]) == ("Gold", None)
    assert updated["metadata"] == {"team": "a"}
    archived = ok(await api.post(f"/v1/products/{created['id']}", {"active": False}))
    assert archived["active"] is False
    # Sending what it already is changes nothing and writes no event.
    assert ok(await api.post(f"/v1/products/{created['id']}", {"active": False})) == archived
    assert await event_types(pool, created["id"]) == [
        "product.created",
        "product.updated",
        "product.updated",
    ]


async def test_products_list_newest_first_with_cursors_and_the_active_filter(api: Api) -> None:
    made = [await product(api, name=f"P{i}", active=i != 1) for i in range(3)]
    ids = [p["id"] for p in reversed(made)]
    first = ok(await api.get("/v1/products", limit=2))
    assert first["object"] == "list" and first["url"] == "/v1/products"
    assert [p["id"] for p in first["data"]] == ids[:2] and first["has_more"] is True
    rest = ok(await api.get("/v1/products", limit=2, starting_after=ids[1]))
    assert [p["id"] for p in rest["data"]] == ids[2:] and rest["has_more"] is False
    archived = ok(await api.get("/v1/products", active="false"))
    assert [p["id"] for p in archived["data"]] == [made[1]["id"]]


async def test_a_product_without_prices_is_deleted(api: Api, pool: asyncpg.Pool) -> None:
    created = await product(api)
    deleted = ok(await api.delete(f"/v1/products/{created['id']}"))
    assert deleted == {"id": created["id"], "object": "product", "deleted": True}
    refused(await api.get(f"/v1/products/{created['id']}"), 404, "resource_missing")
    refused(await api.delete(f"/v1/products/{created['id']}"), 404, "resource_missing")
    assert await event_types(pool, created["id"]) == ["product.created", "product.deleted"]


async def test_a_product_with_prices_cannot_be_deleted_only_archived(api: Api) -> None:
    created = await product(api)
    made = await price(api, created["id"])
    ok(await api.post(f"/v1/prices/{made['id']}", {"active": False}))  # even archived prices
    error = refused(await api.delete(f"/v1/products/{created['id']}"), 400, "product_has_prices")
    assert "active=false" in error["message"]
    assert ok(await api.get(f"/v1/products/{created['id']}"))["id"] == created["id"]


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({}, "parameter_missing", "name"),
        ({"name": ""}, "parameter_invalid", "name"),
        ({"name": "x" * 251}, "parameter_invalid", "name"),
        ({"name": "Mug", "active": "yes"}, "parameter_invalid", "active"),
        ({"name": "Mug", "price": 100}, "parameter_unknown", "price"),
        ({"name": "Mug 4242424242424242"}, "card_number_in_text", "name"),
    ],
)
async def test_invalid_products_are_refused(
    api: Api, body: dict[str, Any], code: str, param: str
) -> None:
    refused(await api.post("/v1/products", body), 400, code, param)


# --- prices -------------------------------------------------------------------------------


async def test_a_recurring_price_in_stripes_shape(api: Api, pool: asyncpg.Pool) -> None:
    prod = await product(api)
    made = await price(
        api,
        prod["id"],
        currency="usd",
        recurring={"interval": "month", "interval_count": 3},
        lookup_key="gold_quarterly",
        nickname="Gold, quarterly",
        metadata={"plan": "gold"},
    )
    assert set(made) == PRICE_FIELDS
    assert made["id"].startswith("price_") and made["object"] == "price"
    assert made["product"] == prod["id"] and made["currency"] == "USD"
    assert (made["unit_amount"], made["unit_amount_decimal"]) == (1500, "1500")
    assert made["type"] == "recurring" and made["billing_scheme"] == "per_unit"
    assert made["recurring"] == {"interval": "month", "interval_count": 3, "usage_type": "licensed"}
    assert (made["lookup_key"], made["nickname"]) == ("gold_quarterly", "Gold, quarterly")
    assert made["active"] is True and made["livemode"] is False
    assert ok(await api.get(f"/v1/prices/{made['id']}")) == made
    assert await event_types(pool, made["id"]) == ["price.created"]
    row = await pool.fetchrow("SELECT * FROM prices WHERE id = $1", made["id"])
    assert row is not None
    assert (row["recurring_interval"], row["recurring_interval_count"]) == ("month", 3)


@pytest.mark.parametrize(
    ("currency", "unit_amount"), [("JPY", 500), ("KWD", 12_345), ("NGN", 1), ("USD", 1)]
)
async def test_one_time_prices_in_any_exponent_are_exact_minor_units(
    api: Api, currency: str, unit_amount: int
) -> None:
    made = await price(api, (await product(api))["id"], currency=currency, unit_amount=unit_amount)
    assert (made["currency"], made["unit_amount"]) == (currency, unit_amount)
    assert made["type"] == "one_time" and made["recurring"] is None


@pytest.mark.parametrize(
    ("interval", "count"), [("day", 365), ("week", 52), ("month", 12), ("year", 1)]
)
async def test_the_longest_recurrence_of_each_interval_is_one_year(
    api: Api, interval: str, count: int
) -> None:
    recurring = {"interval": interval, "interval_count": count}
    made = await price(api, (await product(api))["id"], recurring=recurring)
    assert made["recurring"]["interval_count"] == count


@pytest.mark.parametrize(
    ("fields", "status", "code", "param"),
    [
        (
            {"recurring": {"interval": "day", "interval_count": 366}},
            400,
            "parameter_invalid",
            "recurring[interval_count]",
        ),
        (
            {"recurring": {"interval": "week", "interval_count": 53}},
            400,
            "parameter_invalid",
            "recurring[interval_count]",
        ),
        (
            {"recurring": {"interval": "month", "interval_count": 13}},
            400,
            "parameter_invalid",
            "recurring[interval_count]",
        ),
        (
            {"recurring": {"interval": "year", "interval_count": 2}},
            400,
            "parameter_invalid",
            "recurring[interval_count]",
        ),
        (
            {"recurring": {"interval": "month", "interval_count": 0}},
            400,
            "parameter_invalid",
            "recurring[interval_count]",
        ),
        ({"recurring": {"interval": "fortnight"}}, 400, "parameter_invalid", "recurring[interval]"),
        ({"unit_amount": 0}, 400, "parameter_invalid", "unit_amount"),
        ({"unit_amount": -5}, 400, "parameter_invalid", "unit_amount"),
        ({"unit_amount": 10.5}, 400, "parameter_invalid", "unit_amount"),
        ({"unit_amount": "1500"}, 400, "parameter_invalid", "unit_amount"),
        (
            {"currency": "JPY", "unit_amount": 10_000_000_000},
            400,
            "amount_too_large",
            "unit_amount",
        ),
        ({"currency": "XYZ"}, 400, "currency_not_supported", "currency"),
        ({"product": "prod_missing"}, 400, "resource_missing", "product"),
        ({"type": "recurring"}, 400, "parameter_unknown", "type"),
    ],
)
async def test_invalid_prices_are_refused_and_write_nothing(
    api: Api,
    pool: asyncpg.Pool,
    merchant: NewMerchant,
    fields: dict[str, Any],
    status: int,
    code: str,
    param: str,
) -> None:
    prod = await product(api)
    body = {"product": prod["id"], "currency": "USD", "unit_amount": 1500, **fields}
    refused(await api.post("/v1/prices", body), status, code, param)
    assert (
        await pool.fetchval("SELECT count(*) FROM prices WHERE merchant_id = $1", merchant.id) == 0
    )


async def test_only_active_nickname_lookup_key_and_metadata_change(
    api: Api, pool: asyncpg.Pool
) -> None:
    made = await price(api, (await product(api))["id"], nickname="Old", metadata={"a": "1"})
    path = f"/v1/prices/{made['id']}"
    updated = ok(
        await api.post(
            path,
            {"active": False, "nickname": "New", "lookup_key": "k1", "metadata": {"b": "2"}},
        )
    )
    assert (updated["active"], updated["nickname"], updated["lookup_key"]) == (False, "New", "k1")
    assert updated["metadata"] == {"a": "1", "b": "2"}
    cleared = ok(await api.post(path, {"nickname": "", "lookup_key": ""}))
    assert (cleared["nickname"], cleared["lookup_key"]) == (None, None)
    for field, value in [
        ("unit_amount", 2000),
        ("currency", "EUR"),
        ("product", "prod_x"),
        ("recurring", {"interval": "month"}),
        ("type", "recurring"),
    ]:
        error = refused(await api.post(path, {field: value}), 400, "parameter_immutable", field)
        assert "archive" in error["message"]
    refused(await api.post(path, {"tax_behavior": "inclusive"}), 400, "parameter_unknown")
    after = ok(await api.get(path))
    assert (after["unit_amount"], after["currency"]) == (1500, "USD")
    assert await event_types(pool, made["id"]) == [
        "price.created",
        "price.updated",
        "price.updated",
    ]


async def test_a_lookup_key_is_unique_among_active_prices(api: Api, pool: asyncpg.Pool) -> None:
    prod = (await product(api))["id"]
    first = await price(api, prod, lookup_key="gold")
    error = refused(
        await api.post(
            "/v1/prices",
            {"product": prod, "currency": "USD", "unit_amount": 900, "lookup_key": "gold"},
        ),
        409,
        "lookup_key_in_use",
        "lookup_key",
    )
    assert "transfer_lookup_key" in error["message"]
    # An inactive price may share it with an active one.
    archived = await price(api, prod, lookup_key="gold", active=False)
    assert archived["lookup_key"] == "gold"
    refused(
        await api.post(f"/v1/prices/{archived['id']}", {"active": True}),
        409,
        "lookup_key_in_use",
    )
    # Transferring moves it and tells about both prices.
    second = await price(api, prod, lookup_key="gold", transfer_lookup_key=True)
    assert second["lookup_key"] == "gold"
    assert ok(await api.get(f"/v1/prices/{first['id']}"))["lookup_key"] is None
    assert await event_types(pool, first["id"]) == ["price.created", "price.updated"]
    found = ok(await api.get("/v1/prices", lookup_keys="gold", active="true"))
    assert [p["id"] for p in found["data"]] == [second["id"]]
    # And an update can take it back.
    back = ok(
        await api.post(
            f"/v1/prices/{first['id']}", {"lookup_key": "gold", "transfer_lookup_key": True}
        )
    )
    assert back["lookup_key"] == "gold"
    assert ok(await api.get(f"/v1/prices/{second['id']}"))["lookup_key"] is None


async def test_concurrent_prices_with_one_lookup_key_make_one(api: Api) -> None:
    prod = (await product(api))["id"]
    body = {"product": prod, "currency": "USD", "unit_amount": 900, "lookup_key": "race"}
    responses = await asyncio.gather(*(api.post("/v1/prices", body) for _ in range(5)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409, 409, 409, 409], [r.text for r in responses]


async def test_prices_list_filters(api: Api) -> None:
    gold, silver = (await product(api))["id"], (await product(api, name="Silver"))["id"]
    monthly = await price(api, gold, recurring={"interval": "month"}, lookup_key="gm")
    yen = await price(api, gold, currency="JPY", unit_amount=500, lookup_key="gy")
    old = await price(api, silver, active=False, lookup_key="so")

    async def ids(**params: Any) -> list[str]:
        return [p["id"] for p in ok(await api.get("/v1/prices", **params))["data"]]

    assert await ids() == [old["id"], yen["id"], monthly["id"]]
    assert await ids(product=gold) == [yen["id"], monthly["id"]]
    assert await ids(active="false") == [old["id"]]
    assert await ids(currency="jpy") == [yen["id"]]
    assert await ids(type="recurring") == [monthly["id"]]
    assert await ids(type="one_time", product=gold) == [yen["id"]]
    assert await ids(lookup_keys=["gm", "so"]) == [old["id"], monthly["id"]]
    assert await ids(**{"lookup_keys[]": "gy"}) == [yen["id"]]
    assert await ids(limit=1, starting_after=old["id"]) == [yen["id"]]
    refused(await api.get("/v1/prices", type="metered"), 400, "parameter_invalid", "type")
    refused(await api.get("/v1/prices", recurring="x"), 400, "parameter_unknown")


# --- tenancy, idempotency, scopes ------------------------------------------------------------


async def test_merchants_and_modes_see_only_their_own_catalog(
    client: httpx.AsyncClient, merchant: NewMerchant, other_merchant: NewMerchant
) -> None:
    test = Api(client, merchant.key("secret", livemode=False))
    live = Api(client, merchant.key("secret", livemode=True))
    other = Api(client, other_merchant.key("secret", livemode=False))
    prod = await product(test)
    made = await price(test, prod["id"])
    for intruder in (live, other):
        refused(await intruder.get(f"/v1/products/{prod['id']}"), 404, "resource_missing")
        refused(await intruder.get(f"/v1/prices/{made['id']}"), 404, "resource_missing")
        refused(
            await intruder.post(f"/v1/prices/{made['id']}", {"active": False}),
            404,
            "resource_missing",
        )
        refused(await intruder.delete(f"/v1/products/{prod['id']}"), 404, "resource_missing")
        body = {"product": prod["id"], "currency": "USD", "unit_amount": 100}
        refused(await intruder.post("/v1/prices", body), 400, "resource_missing", "product")
        assert ok(await intruder.get("/v1/products"))["data"] == []
        assert ok(await intruder.get("/v1/prices"))["data"] == []
        refused(
            await intruder.get("/v1/prices", starting_after=made["id"]), 400, "resource_missing"
        )


async def test_live_prices_need_a_connector_account_for_the_currency(
    client: httpx.AsyncClient, merchant: NewMerchant
) -> None:
    live = Api(client, merchant.key("secret", livemode=True))
    prod = await product(live)
    assert prod["livemode"] is True
    body = {"product": prod["id"], "currency": "NGN", "unit_amount": 500_000}
    error = refused(await live.post("/v1/prices", body), 400, "currency_not_supported", "currency")
    assert "connector account" in error["message"]
    account = {
        "provider": "paystack",
        "credentials": {"secret_key": "sk_live_ps5432"},
        "currencies": ["NGN"],
    }
    ok(await live.post("/v1/connector_accounts", account))
    made = ok(await live.post("/v1/prices", body))
    assert made["livemode"] is True and made["currency"] == "NGN"
    refused(
        await live.post("/v1/prices", {**body, "currency": "JPY"}),
        400,
        "currency_not_supported",
    )


async def test_an_idempotency_key_makes_one_price(
    api: Api, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    prod = (await product(api))["id"]
    body = {"product": prod, "currency": "USD", "unit_amount": 700}
    first = await api.post("/v1/prices", body, **{"Idempotency-Key": "price-1"})
    again = await api.post("/v1/prices", body, **{"Idempotency-Key": "price-1"})
    assert ok(first) == ok(again) and again.headers["idempotent-replayed"] == "true"
    other = await api.post(
        "/v1/prices", {**body, "unit_amount": 800}, **{"Idempotency-Key": "price-1"}
    )
    refused(other, 422, "idempotency_key_reused")
    count = await pool.fetchval("SELECT count(*) FROM prices WHERE merchant_id = $1", merchant.id)
    assert count == 1


async def test_catalog_scopes(
    client: httpx.AsyncClient, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    async def key_with(granted: frozenset[str]) -> Api:
        issued = await issue_key(pool, merchant.id, "secret", False, scopes=sorted(granted))
        return Api(client, issued.secret)

    viewer = await key_with(scopes.ROLES["viewer"])
    operator = await key_with(scopes.ROLES["operator"])
    writer = await key_with(frozenset({"products:write", "prices:write", "products:read"}))
    prod = await product(writer)
    made = await price(writer, prod["id"])
    assert ok(await viewer.get(f"/v1/prices/{made['id']}"))["id"] == made["id"]
    error = refused(
        await viewer.post("/v1/products", {"name": "X"}), 403, "insufficient_permissions"
    )
    assert "products:write" in error["message"]
    refused(await operator.get("/v1/products"), 403, "insufficient_permissions")
    refused(await writer.get("/v1/prices"), 403, "insufficient_permissions")
    publishable = Api(client, merchant.key("publishable", livemode=False))
    assert (await publishable.get("/v1/products")).status_code == 403


async def test_a_price_racing_its_products_delete_never_leaves_an_orphan(api: Api) -> None:
    """Either the price is made and the delete refused, or the delete wins and the price is
    refused as naming no product: never a 5xx, never a price without its product."""
    for _ in range(5):
        prod = (await product(api))["id"]
        body = {"product": prod, "currency": "USD", "unit_amount": 900}
        made, deleted = await asyncio.gather(
            api.post("/v1/prices", body), api.delete(f"/v1/products/{prod}")
        )
        outcomes = (made.status_code, deleted.status_code)
        assert outcomes in ((200, 400), (400, 200)), (made.text, deleted.text)
        if made.status_code == 200:
            assert deleted.json()["error"]["code"] == "product_has_prices"
            assert ok(await api.get(f"/v1/products/{prod}"))["id"] == prod
        else:
            assert made.json()["error"]["code"] == "resource_missing"


async def test_catalog_events_reach_subscribed_webhook_endpoints(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    """The events go through the outbox like every other: readable at /v1/events and
    planned as deliveries to endpoints subscribed to their types."""
    endpoint = ok(
        await api.post(
            "/v1/webhook_endpoints",
            {
                "url": "http://127.0.0.1:9/catalog",
                "enabled_events": ["product.created", "price.updated"],
            },
        )
    )
    prod = await product(api)
    made = await price(api, prod["id"])
    ok(await api.post(f"/v1/prices/{made['id']}", {"active": False}))
    while await dispatch_pending(deps):  # the whole backlog: earlier tests' events come first
        pass
    delivered = await pool.fetch(
        "SELECT e.type, e.object_id FROM webhook_deliveries d JOIN events e ON e.id = d.event_id"
        " WHERE d.endpoint_id = $1 ORDER BY e.id",
        endpoint["id"],
    )
    assert [(r["type"], r["object_id"]) for r in delivered] == [
        ("product.created", prod["id"]),
        ("price.updated", made["id"]),
    ]
    listed = ok(await api.get("/v1/events", type="price.updated"))["data"]
    assert listed[0]["data"]["object"]["active"] is False
    assert listed[0]["data"]["object"]["id"] == made["id"]
    ok(await api.delete(f"/v1/webhook_endpoints/{endpoint['id']}"))
