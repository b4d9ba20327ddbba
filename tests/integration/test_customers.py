"""Customers: create, retrieve, update (metadata merges; "" removes a key), list with cursor
pagination, soft delete, and the events each change writes."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from paygrid.services.merchants import NewMerchant
from tests.conftest import SUCCESS_CARD, Api, card


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_missing(response: Any, status: int = 404) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == "resource_missing"
    assert error["request_id"] == response.headers["x-request-id"]


async def events_of(pool: asyncpg.Pool, object_id: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT type, merchant_id, livemode, data FROM events WHERE object_id = $1"
            " ORDER BY created_at, id",
            object_id,
        )
    )


async def test_create_and_retrieve(api: Api, merchant: NewMerchant, pool: asyncpg.Pool) -> None:
    created = ok(
        await api.post(
            "/v1/customers",
            {
                "email": "ada@example.com",
                "name": "Ada Lovelace",
                "phone": "+2348012345678",
                "metadata": {"tier": "gold"},
            },
        )
    )
    assert created["id"].startswith("cus_")
    assert created["object"] == "customer"
    assert (created["email"], created["name"], created["phone"]) == (
        "ada@example.com",
        "Ada Lovelace",
        "+2348012345678",
    )
    assert created["metadata"] == {"tier": "gold"}
    assert created["livemode"] is False
    assert isinstance(created["created"], int) and created["created"] > 0
    assert set(created) == {
        "id",
        "object",
        "email",
        "name",
        "phone",
        "metadata",
        "livemode",
        "created",
        "invoice_settings",
        "test_clock",
    }
    assert created["invoice_settings"] == {"default_payment_method": None}
    assert created["test_clock"] is None
    assert ok(await api.get(f"/v1/customers/{created['id']}")) == created
    row = await pool.fetchrow(
        "SELECT merchant_id, livemode FROM customers WHERE id = $1", created["id"]
    )
    assert row is not None
    assert (row["merchant_id"], row["livemode"]) == (merchant.id, False)


async def test_create_with_no_fields(api: Api) -> None:
    created = ok(await api.post("/v1/customers", {}))
    assert (created["email"], created["name"], created["phone"], created["metadata"]) == (
        None,
        None,
        None,
        {},
    )


async def test_retrieve_unknown_customer(api: Api) -> None:
    assert_missing(await api.get("/v1/customers/cus_00000000000000000000000000"))


@pytest.mark.parametrize(("name", "max_length"), [("name", 256), ("phone", 32)])
async def test_field_length_limits(api: Api, name: str, max_length: int) -> None:
    assert ok(await api.post("/v1/customers", {name: "x" * max_length}))[name] == "x" * max_length
    too_long = await api.post("/v1/customers", {name: "x" * (max_length + 1)})
    assert too_long.status_code == 400
    assert too_long.json()["error"]["param"] == name


async def test_update_changes_only_the_fields_sent(api: Api) -> None:
    created = ok(
        await api.post(
            "/v1/customers",
            {"email": "ada@example.com", "name": "Ada", "phone": "+100", "metadata": {"a": "1"}},
        )
    )
    updated = ok(await api.post(f"/v1/customers/{created['id']}", {"name": "Ada Lovelace"}))
    assert updated == {**created, "name": "Ada Lovelace"}
    assert ok(await api.get(f"/v1/customers/{created['id']}")) == updated
    emailed = ok(await api.post(f"/v1/customers/{created['id']}", {"email": "ada@lovelace.org"}))
    assert emailed == {**updated, "email": "ada@lovelace.org"}


async def test_update_with_null_clears_a_field(api: Api) -> None:
    created = ok(await api.post("/v1/customers", {"name": "Ada", "phone": "+100"}))
    cleared = ok(await api.post(f"/v1/customers/{created['id']}", {"phone": None}))
    assert cleared["phone"] is None
    assert cleared["name"] == "Ada"


async def test_metadata_merges_and_empty_string_removes_a_key(api: Api) -> None:
    created = ok(
        await api.post("/v1/customers", {"metadata": {"keep": "1", "change": "2", "drop": "3"}})
    )
    path = f"/v1/customers/{created['id']}"
    updated = ok(
        await api.post(
            path, {"metadata": {"change": "two", "drop": "", "add": "4", "never_set": ""}}
        )
    )
    assert updated["metadata"] == {"keep": "1", "change": "two", "add": "4"}
    assert ok(await api.get(path))["metadata"] == updated["metadata"]
    # Other fields are untouched by a metadata-only update, and vice versa.
    renamed = ok(await api.post(path, {"name": "Renamed"}))
    assert renamed["metadata"] == updated["metadata"]
    emptied = ok(await api.post(path, {"metadata": {"keep": "", "change": "", "add": ""}}))
    assert emptied["metadata"] == {}
    assert emptied["name"] == "Renamed"


async def test_metadata_null_or_empty_leaves_it_unchanged(api: Api) -> None:
    created = ok(await api.post("/v1/customers", {"metadata": {"a": "1"}}))
    path = f"/v1/customers/{created['id']}"
    assert ok(await api.post(path, {"metadata": None}))["metadata"] == {"a": "1"}
    assert ok(await api.post(path, {"metadata": {}}))["metadata"] == {"a": "1"}


async def test_metadata_merge_cannot_exceed_50_keys(api: Api) -> None:
    full = {f"key{i}": "v" for i in range(50)}
    created = ok(await api.post("/v1/customers", {"metadata": full}))
    response = await api.post(f"/v1/customers/{created['id']}", {"metadata": {"one_more": "v"}})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "metadata"
    assert ok(await api.get(f"/v1/customers/{created['id']}"))["metadata"] == full


async def test_metadata_merge_at_50_keys_may_replace_and_remove(api: Api) -> None:
    full = {f"key{i}": "v" for i in range(50)}
    created = ok(await api.post("/v1/customers", {"metadata": full}))
    path = f"/v1/customers/{created['id']}"
    swapped = ok(await api.post(path, {"metadata": {"key0": "", "new": "v", "key1": "w"}}))
    assert len(swapped["metadata"]) == 50
    assert "key0" not in swapped["metadata"]
    assert (swapped["metadata"]["new"], swapped["metadata"]["key1"]) == ("v", "w")


async def test_update_unknown_customer(api: Api) -> None:
    assert_missing(await api.post("/v1/customers/cus_missing", {"name": "x"}))


async def test_list_is_newest_first_with_cursor_pagination(api: Api) -> None:
    ids = [ok(await api.post("/v1/customers", {"name": f"c{i}"}))["id"] for i in range(5)]
    newest_first = ids[::-1]

    everything = ok(await api.get("/v1/customers"))
    assert everything["object"] == "list"
    assert everything["url"] == "/v1/customers"
    assert everything["has_more"] is False
    assert [c["id"] for c in everything["data"]] == newest_first
    assert all(c["object"] == "customer" for c in everything["data"])

    # Forward with starting_after until has_more is false.
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["starting_after"] = cursor
        page = ok(await api.get("/v1/customers", **params))
        pages.append(([c["id"] for c in page["data"]], page["has_more"]))
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    assert pages == [
        (newest_first[0:2], True),
        (newest_first[2:4], True),
        (newest_first[4:], False),
    ]

    # Backward with ending_before: the page just newer than the cursor, still newest first.
    before_oldest = ok(await api.get("/v1/customers", limit=2, ending_before=ids[0]))
    assert [c["id"] for c in before_oldest["data"]] == [ids[2], ids[1]]
    assert before_oldest["has_more"] is True
    before_third = ok(await api.get("/v1/customers", limit=2, ending_before=ids[2]))
    assert [c["id"] for c in before_third["data"]] == [ids[4], ids[3]]
    assert before_third["has_more"] is False
    nothing_newer = ok(await api.get("/v1/customers", ending_before=ids[-1]))
    assert (nothing_newer["data"], nothing_newer["has_more"]) == ([], False)
    nothing_older = ok(await api.get("/v1/customers", starting_after=ids[0]))
    assert (nothing_older["data"], nothing_older["has_more"]) == ([], False)

    exact = ok(await api.get("/v1/customers", limit=5))
    assert ([c["id"] for c in exact["data"]], exact["has_more"]) == (newest_first, False)
    one = ok(await api.get("/v1/customers", limit=1))
    assert ([c["id"] for c in one["data"]], one["has_more"]) == ([ids[-1]], True)


async def test_default_page_size_is_ten(api: Api) -> None:
    ids = [ok(await api.post("/v1/customers", {}))["id"] for _ in range(11)]
    page = ok(await api.get("/v1/customers"))
    assert [c["id"] for c in page["data"]] == ids[::-1][:10]
    assert page["has_more"] is True


async def test_list_filters_by_email(api: Api) -> None:
    ada = ok(await api.post("/v1/customers", {"email": "ada@example.com"}))
    ok(await api.post("/v1/customers", {"email": "grace@example.com"}))
    ada_again = ok(await api.post("/v1/customers", {"email": "ada@example.com", "name": "2"}))
    listed = ok(await api.get("/v1/customers", email="ada@example.com"))
    assert [c["id"] for c in listed["data"]] == [ada_again["id"], ada["id"]]
    assert ok(await api.get("/v1/customers", email="nobody@example.com"))["data"] == []


async def test_delete(api: Api, pool: asyncpg.Pool) -> None:
    keep = ok(await api.post("/v1/customers", {"name": "Keep"}))
    gone = ok(await api.post("/v1/customers", {"name": "Gone", "email": "gone@example.com"}))
    path = f"/v1/customers/{gone['id']}"
    tombstone = {"id": gone["id"], "object": "customer", "deleted": True}

    assert ok(await api.delete(path)) == tombstone
    assert ok(await api.get(path)) == tombstone
    listed = ok(await api.get("/v1/customers"))
    assert [c["id"] for c in listed["data"]] == [keep["id"]]
    assert ok(await api.get("/v1/customers", email="gone@example.com"))["data"] == []
    assert_missing(await api.post(path, {"name": "Back"}))
    assert_missing(await api.post(path, {}))
    assert_missing(await api.delete(path))
    assert ok(await api.get(path)) == tombstone
    row = await pool.fetchrow("SELECT name, deleted_at FROM customers WHERE id = $1", gone["id"])
    assert row is not None
    assert row["name"] == "Gone"  # soft delete: the row stays for payments that refer to it
    assert row["deleted_at"] is not None


async def test_deleted_customer_cannot_be_used_but_old_payments_keep_it(api: Api) -> None:
    customer = ok(await api.post("/v1/customers", {"name": "Leaving"}))
    pm = ok(await api.post("/v1/payment_methods", card(SUCCESS_CARD)))
    paid = ok(
        await api.post(
            "/v1/payments",
            {
                "amount": 1000,
                "currency": "usd",
                "customer": customer["id"],
                "confirm": True,
                "payment_method": "pm_card_visa",
            },
        )
    )
    ok(await api.delete(f"/v1/customers/{customer['id']}"))

    assert ok(await api.get(f"/v1/payments/{paid['id']}"))["customer"] == customer["id"]
    by_customer = ok(await api.get("/v1/payments", customer=customer["id"]))
    assert [p["id"] for p in by_customer["data"]] == [paid["id"]]
    for path, body in (
        ("/v1/payments", {"amount": 1000, "currency": "usd", "customer": customer["id"]}),
        (f"/v1/payment_methods/{pm['id']}/attach", {"customer": customer["id"]}),
        ("/v1/payment_methods", {**card(SUCCESS_CARD), "customer": customer["id"]}),
    ):
        response = await api.post(path, body)
        assert_missing(response, status=400)
        assert response.json()["error"]["param"] == "customer"
    assert ok(await api.get(f"/v1/payment_methods/{pm['id']}"))["customer"] is None


async def test_events_are_written_for_each_change(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    created = ok(await api.post("/v1/customers", {"name": "Ada", "metadata": {"a": "1"}}))
    path = f"/v1/customers/{created['id']}"
    updated = ok(await api.post(path, {"name": "Ada L.", "metadata": {"b": "2"}}))
    ok(await api.delete(path))

    events = await events_of(pool, created["id"])
    assert [e["type"] for e in events] == [
        "customer.created",
        "customer.updated",
        "customer.deleted",
    ]
    assert {(e["merchant_id"], e["livemode"]) for e in events} == {(merchant.id, False)}
    assert events[0]["data"]["object"] == created
    assert events[1]["data"]["object"] == updated
    assert events[1]["data"]["object"]["metadata"] == {"a": "1", "b": "2"}
    assert events[2]["data"]["object"]["id"] == created["id"]


async def test_no_event_for_an_update_that_changes_nothing_or_fails(
    api: Api, pool: asyncpg.Pool
) -> None:
    created = ok(await api.post("/v1/customers", {"name": "Ada"}))
    path = f"/v1/customers/{created['id']}"
    assert ok(await api.post(path, {})) == created
    assert (await api.post(path, {"email": "not-an-email"})).status_code == 400
    assert (await api.post(path, {"nickname": "Ada"})).status_code == 400
    assert [e["type"] for e in await events_of(pool, created["id"])] == ["customer.created"]


async def test_failed_delete_writes_no_event(api: Api, pool: asyncpg.Pool) -> None:
    created = ok(await api.post("/v1/customers", {}))
    ok(await api.delete(f"/v1/customers/{created['id']}"))
    assert_missing(await api.delete(f"/v1/customers/{created['id']}"))
    assert [e["type"] for e in await events_of(pool, created["id"])] == [
        "customer.created",
        "customer.deleted",
    ]


async def test_live_customers_are_separate(
    api: Api, client: Any, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    live = Api(client, merchant.key("secret", livemode=True))
    test_customer = ok(await api.post("/v1/customers", {"name": "Test"}))
    live_customer = ok(await live.post("/v1/customers", {"name": "Live"}))
    assert live_customer["livemode"] is True
    assert [c["id"] for c in ok(await api.get("/v1/customers"))["data"]] == [test_customer["id"]]
    assert [c["id"] for c in ok(await live.get("/v1/customers"))["data"]] == [live_customer["id"]]
    events = await events_of(pool, live_customer["id"])
    assert [(e["type"], e["livemode"]) for e in events] == [("customer.created", True)]
