"""One-off invoices over HTTP (issue 13 §4): pending invoice items, invoices that collect them
in one currency, totals equal to the sum of the lines, Stripe's status transitions guarded
in SQL, gapless per-merchant numbers under concurrent finalizes, paying through the payment
core with a key derived from the invoice, the events, isolation, scopes and idempotency."""

from __future__ import annotations

import asyncio
from dataclasses import fields
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.db.invoices import InvoiceItemRow, InvoiceLineRow, InvoiceRow
from paygrid.domain.invoices import InvoiceStatus, default_prefix
from paygrid.services.merchants import NewMerchant, issue_key
from tests.conftest import SUCCESS_CARD, Api, auth, card


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


async def customer(api: Api) -> str:
    return str(ok(await api.post("/v1/customers", {"name": "Ada"}))["id"])


async def item(api: Api, customer_id: str, amount: int, currency: str = "USD", **extra: Any) -> str:
    body = {"customer": customer_id, "amount": amount, "currency": currency, **extra}
    return str(ok(await api.post("/v1/invoiceitems", body))["id"])


async def draft(api: Api, customer_id: str, *amounts: int, **extra: Any) -> dict[str, Any]:
    for amount in amounts:
        await item(api, customer_id, amount)
    return ok(await api.post("/v1/invoices", {"customer": customer_id, **extra}))


async def event_types(pool: asyncpg.Pool, object_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT type FROM events WHERE object_id = $1 ORDER BY created_at, id", object_id
    )
    return [r["type"] for r in rows]


async def test_invoice_items_are_created_listed_and_deleted_while_pending(
    api: Api, pool: asyncpg.Pool
) -> None:
    cus = await customer(api)
    created = ok(
        await api.post(
            "/v1/invoiceitems",
            {
                "customer": cus,
                "amount": 2500,
                "currency": "usd",
                "description": "Setup fee",
                "metadata": {"order": "1043"},
            },
        )
    )
    assert created["id"].startswith("ii_")
    assert created["object"] == "invoiceitem"
    assert (created["amount"], created["currency"], created["quantity"]) == (2500, "USD", 1)
    assert (created["unit_amount"], created["invoice"], created["price"]) == (2500, None, None)
    assert created["proration"] is False
    assert created["period"]["start"] == created["period"]["end"] == created["date"]
    assert ok(await api.get(f"/v1/invoiceitems/{created['id']}")) == created

    other = await item(api, cus, 700, "EUR")
    listed = ok(await api.get("/v1/invoiceitems", customer=cus, pending="true"))
    assert [i["id"] for i in listed["data"]] == [other, created["id"]]
    page = ok(await api.get("/v1/invoiceitems", customer=cus, limit=1))
    assert page["has_more"] is True and [i["id"] for i in page["data"]] == [other]

    deleted = ok(await api.delete(f"/v1/invoiceitems/{other}"))
    assert deleted == {"id": other, "object": "invoiceitem", "deleted": True}
    refused(await api.get(f"/v1/invoiceitems/{other}"), 404, "resource_missing")
    assert await event_types(pool, other) == ["invoiceitem.created", "invoiceitem.deleted"]


async def test_an_item_takes_an_amount_and_currency_or_a_price_not_both(api: Api) -> None:
    cus = await customer(api)
    refused(
        await api.post("/v1/invoiceitems", {"customer": cus, "amount": 100}),
        400,
        "parameter_missing",
    )
    both = {"customer": cus, "amount": 100, "currency": "USD", "price": "price_x"}
    assert (await api.post("/v1/invoiceitems", both)).status_code == 400
    missing = {"customer": "cus_nobody", "amount": 100, "currency": "USD"}
    refused(await api.post("/v1/invoiceitems", missing), 400, "resource_missing")
    too_small = {"customer": cus, "amount": 1, "currency": "USD"}
    refused(await api.post("/v1/invoiceitems", too_small), 400, "amount_too_small")


async def test_an_item_priced_from_the_catalog_is_unit_amount_times_quantity(api: Api) -> None:
    product = await api.post("/v1/products", {"name": "Seats"})
    if product.status_code == 404:
        pytest.skip("the catalog's /v1/products is not there yet")
    product_id = ok(product)["id"]
    one_time = ok(
        await api.post(
            "/v1/prices", {"product": product_id, "currency": "KWD", "unit_amount": 1250}
        )
    )
    cus = await customer(api)
    priced = ok(
        await api.post(
            "/v1/invoiceitems", {"customer": cus, "price": one_time["id"], "quantity": 3}
        )
    )
    assert (priced["price"], priced["unit_amount"], priced["quantity"]) == (one_time["id"], 1250, 3)
    assert (priced["amount"], priced["currency"]) == (3750, "KWD")
    recurring = ok(
        await api.post(
            "/v1/prices",
            {
                "product": product_id,
                "currency": "USD",
                "unit_amount": 1000,
                "recurring": {"interval": "month"},
            },
        )
    )
    body = {"customer": cus, "price": recurring["id"]}
    refused(await api.post("/v1/invoiceitems", body), 400, "price_not_usable")
    invoice = ok(await api.post("/v1/invoices", {"customer": cus}))
    assert invoice["currency"] == "KWD" and invoice["total"] == 3750
    assert invoice["lines"]["data"][0]["price"] == one_time["id"]


async def test_an_invoice_collects_pending_items_of_one_currency_and_totals_its_lines(
    api: Api, pool: asyncpg.Pool
) -> None:
    cus = await customer(api)
    first = await item(api, cus, 1000)
    euro = await item(api, cus, 700, "EUR")
    second = await item(api, cus, 2555, description="Extra seats")

    invoice = ok(await api.post("/v1/invoices", {"customer": cus, "metadata": {"a": "b"}}))
    assert invoice["id"].startswith("in_") and invoice["object"] == "invoice"
    assert (invoice["status"], invoice["number"], invoice["currency"]) == ("draft", None, "USD")
    lines = invoice["lines"]["data"]
    assert [line["invoice_item"] for line in lines] == [first, second]
    assert [line["amount"] for line in lines] == [1000, 2555]
    assert lines[1]["description"] == "Extra seats" and lines[1]["type"] == "invoiceitem"
    assert all(set(line["period"]) == {"start", "end"} for line in lines)
    assert all(line["proration"] is False and line["quantity"] == 1 for line in lines)
    total = sum(line["amount"] for line in lines)
    assert (invoice["subtotal"], invoice["total"], invoice["amount_due"]) == (total,) * 3
    assert (invoice["amount_paid"], invoice["amount_remaining"]) == (0, total)
    assert invoice["lines"]["total_count"] == 2
    assert ok(await api.get(f"/v1/invoices/{invoice['id']}")) == invoice

    assert ok(await api.get(f"/v1/invoiceitems/{first}"))["invoice"] == invoice["id"]
    assert ok(await api.get(f"/v1/invoiceitems/{euro}"))["invoice"] is None
    refused(await api.delete(f"/v1/invoiceitems/{first}"), 409, "invoice_item_invoiced")

    refused(
        await api.post("/v1/invoices", {"customer": cus, "currency": "USD"}),
        400,
        "invoice_no_pending_items",
    )
    in_euro = ok(await api.post("/v1/invoices", {"customer": cus}))
    assert (in_euro["currency"], in_euro["total"]) == ("EUR", 700)
    refused(await api.post("/v1/invoices", {"customer": cus}), 400, "invoice_no_pending_items")
    assert await event_types(pool, invoice["id"]) == ["invoice.created"]


async def test_concurrent_invoices_never_share_an_item(api: Api) -> None:
    cus = await customer(api)
    for amount in (1000, 2000, 3000):
        await item(api, cus, amount)
    answers = await asyncio.gather(*(api.post("/v1/invoices", {"customer": cus}) for _ in range(5)))
    made = [r.json() for r in answers if r.status_code == 200]
    assert len(made) == 1, [r.text for r in answers]
    assert all(
        r.json()["error"]["code"] == "invoice_no_pending_items"
        for r in answers
        if r.status_code != 200
    )
    assert made[0]["total"] == 6000


async def test_finalize_numbers_and_pay_through_the_payment_core(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    cus = await customer(api)
    invoice = await draft(api, cus, 1500, 2500)
    opened = ok(await api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    assert opened["status"] == "open"
    assert opened["number"] == f"{default_prefix(merchant.id)}-0001"
    assert opened["status_transitions"]["finalized_at"] is not None
    assert opened["due_date"] is None and opened["collection_method"] == "charge_automatically"

    paid = ok(
        await api.post(f"/v1/invoices/{invoice['id']}/pay", {"payment_method": "pm_card_visa"})
    )
    assert paid["status"] == "paid"
    assert (paid["amount_paid"], paid["amount_remaining"], paid["total"]) == (4000, 0, 4000)
    assert paid["attempt_count"] == 1 and paid["attempted"] is True
    assert paid["status_transitions"]["paid_at"] is not None
    payment = ok(await api.get(f"/v1/payments/{paid['payment']}"))
    assert (payment["status"], payment["amount"], payment["currency"]) == ("succeeded", 4000, "USD")
    assert payment["customer"] == cus
    assert payment["metadata"] == {"invoice": invoice["id"]}
    key = await pool.fetchval("SELECT idempotency_key FROM payments WHERE id = $1", paid["payment"])
    assert key == f"invoice:{invoice['id']}:attempt:1"
    assert await event_types(pool, invoice["id"]) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
    ]
    refused(await api.post(f"/v1/invoices/{invoice['id']}/pay"), 409, "invoice_invalid_state")


async def test_a_declined_payment_leaves_the_invoice_open_and_the_next_attempt_a_new_key(
    api: Api, pool: asyncpg.Pool
) -> None:
    cus = await customer(api)
    invoice = await draft(api, cus, 3000)
    ok(await api.post(f"/v1/invoices/{invoice['id']}/finalize"))

    declined = await api.post(
        f"/v1/invoices/{invoice['id']}/pay", {"payment_method": "pm_card_chargeDeclined"}
    )
    error = refused(declined, 402, "card_declined")
    failed = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (failed["status"], failed["attempt_count"]) == ("open", 1)
    assert failed["payment"] == error["payment_id"]
    assert failed["last_payment_error"]["code"] == "card_declined"
    assert failed["amount_remaining"] == 3000
    event = await pool.fetchrow(
        "SELECT data FROM events WHERE object_id = $1 AND type = 'invoice.payment_failed'",
        invoice["id"],
    )
    assert event is not None
    assert event["data"]["object"]["last_payment_error"]["code"] == "card_declined"

    paid = ok(
        await api.post(f"/v1/invoices/{invoice['id']}/pay", {"payment_method": "pm_card_visa"})
    )
    assert paid["status"] == "paid" and paid["payment"] != error["payment_id"]
    assert paid["last_payment_error"] is None
    keys = await pool.fetch(
        "SELECT idempotency_key FROM payments WHERE customer_id = $1 ORDER BY created_at", cus
    )
    assert [k["idempotency_key"] for k in keys] == [
        f"invoice:{invoice['id']}:attempt:1",
        f"invoice:{invoice['id']}:attempt:2",
    ]


async def test_a_retry_after_a_crash_resumes_the_attempts_payment_instead_of_charging_again(
    api: Api, pool: asyncpg.Pool
) -> None:
    """The first run charged the card under the invoice's key and died before the invoice
    heard of it (played here by creating that payment directly); /pay finds it."""
    cus = await customer(api)
    invoice = await draft(api, cus, 1800)
    ok(await api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    first_run = ok(
        await api.post(
            "/v1/payments",
            {
                "amount": 1800,
                "currency": "USD",
                "customer": cus,
                "payment_method": "pm_card_visa",
                "confirm": True,
            },
            **{"Idempotency-Key": f"invoice:{invoice['id']}:attempt:1"},
        )
    )
    assert first_run["status"] == "succeeded"

    paid = ok(
        await api.post(f"/v1/invoices/{invoice['id']}/pay", {"payment_method": "pm_card_visa"})
    )
    assert (paid["status"], paid["payment"]) == ("paid", first_run["id"])
    charged = await pool.fetchval("SELECT count(*) FROM payments WHERE customer_id = $1", cus)
    assert charged == 1


async def test_pay_needs_a_method_and_uses_the_invoices_default(api: Api) -> None:
    cus = await customer(api)
    bare = await draft(api, cus, 1000)
    ok(await api.post(f"/v1/invoices/{bare['id']}/finalize"))
    refused(await api.post(f"/v1/invoices/{bare['id']}/pay"), 400, "invoice_payment_method_missing")

    with_default = await draft(api, cus, 1200, default_payment_method="pm_card_visa")
    assert with_default["default_payment_method"] == "pm_card_visa"
    ok(await api.post(f"/v1/invoices/{with_default['id']}/finalize"))
    assert ok(await api.post(f"/v1/invoices/{with_default['id']}/pay"))["status"] == "paid"


async def test_statuses_move_only_as_stripe_allows(api: Api, pool: asyncpg.Pool) -> None:
    cus = await customer(api)
    invoice = await draft(api, cus, 1000)
    path = f"/v1/invoices/{invoice['id']}"
    for action in ("pay", "void", "mark_uncollectible"):
        error = refused(await api.post(f"{path}/{action}"), 409, "invoice_invalid_state")
        assert error["current_status"] == "draft"
    ok(await api.post(f"{path}/finalize"))
    refused(await api.post(f"{path}/finalize"), 409, "invoice_invalid_state")
    uncollectible = ok(await api.post(f"{path}/mark_uncollectible"))
    assert uncollectible["status"] == "uncollectible"
    assert uncollectible["status_transitions"]["marked_uncollectible_at"] is not None
    refused(await api.post(f"{path}/mark_uncollectible"), 409, "invoice_invalid_state")
    voided = ok(await api.post(f"{path}/void"))
    assert voided["status"] == "void" and voided["status_transitions"]["voided_at"] is not None
    for action in ("finalize", "pay", "void", "mark_uncollectible"):
        refused(await api.post(f"{path}/{action}"), 409, "invoice_invalid_state")
    assert await event_types(pool, invoice["id"]) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.marked_uncollectible",
        "invoice.voided",
    ]

    paid = await draft(api, cus, 2000)
    ok(await api.post(f"/v1/invoices/{paid['id']}/finalize"))
    ok(await api.post(f"/v1/invoices/{paid['id']}/mark_uncollectible"))
    settled = ok(
        await api.post(f"/v1/invoices/{paid['id']}/pay", {"payment_method": "pm_card_visa"})
    )
    assert settled["status"] == "paid"
    error = refused(await api.post(f"/v1/invoices/{paid['id']}/void"), 409, "invoice_invalid_state")
    assert error["current_status"] == "paid"


async def test_the_database_refuses_what_the_transition_table_refuses(
    api: Api, pool: asyncpg.Pool
) -> None:
    cus = await customer(api)
    invoice = await draft(api, cus, 1000)
    with pytest.raises(asyncpg.CheckViolationError):  # an open invoice without a number
        await pool.execute("UPDATE invoices SET status = 'open' WHERE id = $1", invoice["id"])
    with pytest.raises(asyncpg.CheckViolationError):  # a total other than the subtotal
        await pool.execute("UPDATE invoices SET total = total + 1 WHERE id = $1", invoice["id"])


async def test_send_invoice_is_due_days_after_finalization(api: Api) -> None:
    cus = await customer(api)
    invoice = await draft(api, cus, 1000, collection_method="send_invoice", days_until_due=14)
    assert (invoice["collection_method"], invoice["days_until_due"]) == ("send_invoice", 14)
    opened = ok(await api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    finalized_at = opened["status_transitions"]["finalized_at"]
    assert opened["due_date"] - finalized_at in (14 * 86400, 14 * 86400 - 1, 14 * 86400 + 1)

    default = await draft(api, cus, 1000, collection_method="send_invoice")
    assert default["days_until_due"] == 30
    await item(api, cus, 1000)
    refused(
        await api.post("/v1/invoices", {"customer": cus, "days_until_due": 3}),
        400,
        "parameter_invalid",
    )


async def test_twenty_concurrent_finalizes_take_consecutive_numbers(
    api: Api, merchant: NewMerchant
) -> None:
    customers = [await customer(api) for _ in range(20)]
    invoices = [await draft(api, cus, 1000 + i) for i, cus in enumerate(customers)]
    # One invoice finalized twice at once as well: only one of those takes a number.
    twice = invoices[0]["id"]
    answers = await asyncio.gather(
        *(api.post(f"/v1/invoices/{inv['id']}/finalize") for inv in invoices),
        api.post(f"/v1/invoices/{twice}/finalize"),
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 20 + [409], [r.text for r in answers if r.status_code != 200]
    numbers = sorted({r.json()["number"] for r in answers if r.status_code == 200})
    prefix = default_prefix(merchant.id)
    assert numbers == [f"{prefix}-{n:04d}" for n in range(1, 21)]
    listed = ok(await api.get("/v1/invoices", status="open", limit=100))
    assert sorted(i["number"] for i in listed["data"]) == numbers

    later = await draft(api, customers[0], 500)
    assert ok(await api.post(f"/v1/invoices/{later['id']}/finalize"))["number"] == f"{prefix}-0021"


async def test_numbers_are_per_merchant_and_mode(
    api: Api, client: httpx.AsyncClient, other_merchant: NewMerchant, merchant: NewMerchant
) -> None:
    other = Api(client, other_merchant.key("secret", livemode=False))
    for who, owner in ((api, merchant), (other, other_merchant)):
        invoice = await draft(who, await customer(who), 1000)
        opened = ok(await who.post(f"/v1/invoices/{invoice['id']}/finalize"))
        assert opened["number"] == f"{default_prefix(owner.id)}-0001"


async def test_list_filters_by_customer_and_status_with_cursors(api: Api) -> None:
    ada, bob = await customer(api), await customer(api)
    first = await draft(api, ada, 1000)
    second = await draft(api, ada, 2000)
    theirs = await draft(api, bob, 3000)
    ok(await api.post(f"/v1/invoices/{second['id']}/finalize"))

    by_ada = ok(await api.get("/v1/invoices", customer=ada))
    assert [i["id"] for i in by_ada["data"]] == [second["id"], first["id"]]
    drafts = ok(await api.get("/v1/invoices", customer=ada, status="draft"))
    assert [i["id"] for i in drafts["data"]] == [first["id"]]
    page = ok(await api.get("/v1/invoices", customer=ada, limit=1))
    assert page["has_more"] is True
    rest = ok(await api.get("/v1/invoices", customer=ada, starting_after=page["data"][0]["id"]))
    assert [i["id"] for i in rest["data"]] == [first["id"]]
    assert theirs["id"] not in {i["id"] for i in by_ada["data"]}
    assert (await api.get("/v1/invoices", status="paused")).status_code == 400


async def test_another_merchant_or_mode_sees_nothing(
    api: Api, client: httpx.AsyncClient, merchant: NewMerchant, other_merchant: NewMerchant
) -> None:
    cus = await customer(api)
    pending = await item(api, cus, 900)
    invoice = await draft(api, cus, 1000)
    other = Api(client, other_merchant.key("secret", livemode=False))
    live = Api(client, merchant.key("secret", livemode=True))
    for outsider in (other, live):
        refused(await outsider.get(f"/v1/invoices/{invoice['id']}"), 404, "resource_missing")
        refused(await outsider.get(f"/v1/invoiceitems/{pending}"), 404, "resource_missing")
        refused(await outsider.delete(f"/v1/invoiceitems/{pending}"), 404, "resource_missing")
        for action in ("finalize", "pay", "void", "mark_uncollectible"):
            response = await outsider.post(f"/v1/invoices/{invoice['id']}/{action}")
            refused(response, 404, "resource_missing")
        refused(await outsider.post("/v1/invoices", {"customer": cus}), 400, "resource_missing")
        body = {"customer": cus, "amount": 1000, "currency": "USD"}
        refused(await outsider.post("/v1/invoiceitems", body), 400, "resource_missing")
        assert ok(await outsider.get("/v1/invoices"))["data"] == []
        assert ok(await outsider.get("/v1/invoiceitems"))["data"] == []
    assert ok(await api.get(f"/v1/invoices/{invoice['id']}"))["status"] == "draft"


async def test_invoices_need_the_invoices_scopes(
    api: Api, client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    cus = await customer(api)
    invoice = await draft(api, cus, 1000)

    async def key_with(*granted: str) -> Api:
        issued = await issue_key(pool, merchant.id, "secret", False, scopes=list(granted))
        return Api(client, issued.secret)

    reader = await key_with("invoices:read")
    assert ok(await reader.get(f"/v1/invoices/{invoice['id']}"))["id"] == invoice["id"]
    error = refused(
        await reader.post(f"/v1/invoices/{invoice['id']}/finalize"), 403, "insufficient_permissions"
    )
    assert error["missing_scope"] == "invoices:write"
    refused(
        await reader.post("/v1/invoiceitems", {"customer": cus, "amount": 500, "currency": "USD"}),
        403,
        "insufficient_permissions",
    )
    payments_only = await key_with("payments:write", "payments:read")
    error = refused(await payments_only.get("/v1/invoices"), 403, "insufficient_permissions")
    assert error["missing_scope"] == "invoices:read"
    publishable = merchant.key("publishable", livemode=False)
    response = await client.get("/v1/invoices", headers=auth(publishable))
    assert response.status_code == 403


async def test_posts_take_idempotency_keys(api: Api, pool: asyncpg.Pool) -> None:
    cus = await customer(api)
    body = {"customer": cus, "amount": 1000, "currency": "USD"}
    first = await api.post("/v1/invoiceitems", body, **{"Idempotency-Key": "item-1"})
    again = await api.post("/v1/invoiceitems", body, **{"Idempotency-Key": "item-1"})
    assert ok(first) == ok(again) and again.headers["idempotent-replayed"] == "true"
    made = await api.post("/v1/invoices", {"customer": cus}, **{"Idempotency-Key": "inv-1"})
    replay = await api.post("/v1/invoices", {"customer": cus}, **{"Idempotency-Key": "inv-1"})
    assert ok(made)["id"] == ok(replay)["id"]
    invoice_id = ok(made)["id"]
    path = f"/v1/invoices/{invoice_id}/finalize"
    once = ok(await api.post(path, None, **{"Idempotency-Key": "fin-1"}))
    twice = ok(await api.post(path, None, **{"Idempotency-Key": "fin-1"}))
    assert once["number"] == twice["number"]
    count = await pool.fetchval("SELECT count(*) FROM invoices WHERE customer_id = $1", cus)
    assert count == 1


async def test_a_test_clock_customers_invoices_run_on_the_clocks_time(api: Api) -> None:
    frozen = 1_830_297_600  # 2028-01-01T00:00:00Z
    clock = await api.post("/v1/test_clocks", {"frozen_time": frozen})
    if clock.status_code == 404:
        pytest.skip("test clocks are not there yet")
    cus = ok(await api.post("/v1/customers", {"test_clock": ok(clock)["id"]}))["id"]
    pending = ok(
        await api.post("/v1/invoiceitems", {"customer": cus, "amount": 900, "currency": "USD"})
    )
    assert pending["date"] == pending["period"]["start"] == frozen
    invoice = ok(
        await api.post(
            "/v1/invoices",
            {"customer": cus, "collection_method": "send_invoice", "days_until_due": 1},
        )
    )
    assert invoice["created"] == frozen
    opened = ok(await api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    assert opened["status_transitions"]["finalized_at"] == frozen
    assert opened["due_date"] == frozen + 86400
    paid = ok(
        await api.post(f"/v1/invoices/{invoice['id']}/pay", {"payment_method": "pm_card_visa"})
    )
    assert paid["status_transitions"]["paid_at"] == frozen
    assert ok(await api.get(f"/v1/payments/{paid['payment']}"))["created"] == frozen
    extra = ok(
        await api.post("/v1/invoiceitems", {"customer": cus, "amount": 500, "currency": "USD"})
    )
    ok(await api.delete(f"/v1/invoiceitems/{extra['id']}"))
    events = ok(await api.get("/v1/events", limit=100))["data"]
    mine = [
        e
        for e in events
        if e["data"]["object"]["id"] in (pending["id"], extra["id"], invoice["id"])
    ]
    assert {e["type"] for e in mine} >= {
        "invoiceitem.created",
        "invoiceitem.deleted",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
    }
    assert {e["created"] for e in mine} == {frozen}  # every event on the clock's time


async def saved_card(api: Api, customer_id: str, number: str) -> str:
    body = {"customer": customer_id, **card(number)}
    return str(ok(await api.post("/v1/payment_methods", body))["id"])


async def test_pay_charges_the_customers_default_method_off_session(api: Api) -> None:
    cus = await customer(api)
    method = await saved_card(api, cus, SUCCESS_CARD)
    settings = {"invoice_settings": {"default_payment_method": method}}
    ok(await api.post(f"/v1/customers/{cus}", settings))
    invoice = await draft(api, cus, 4200)
    ok(await api.post(f"/v1/invoices/{invoice['id']}/finalize"))

    paid = ok(await api.post(f"/v1/invoices/{invoice['id']}/pay"))
    assert paid["status"] == "paid"
    payment = ok(await api.get(f"/v1/payments/{paid['payment']}"))
    assert (payment["payment_method"], payment["off_session"]) == (method, True)
    assert payment["amount"] == 4200


async def test_an_off_session_card_that_needs_authentication_fails_the_attempt(
    api: Api, pool: asyncpg.Pool
) -> None:
    cus = await customer(api)
    method = await saved_card(api, cus, "4000002760003184")
    invoice = await draft(api, cus, 3100, default_payment_method=method)
    ok(await api.post(f"/v1/invoices/{invoice['id']}/finalize"))

    error = refused(
        await api.post(f"/v1/invoices/{invoice['id']}/pay"), 402, "authentication_required"
    )
    payment = ok(await api.get(f"/v1/payments/{error['payment_id']}"))
    assert (payment["status"], payment["off_session"]) == ("requires_action", True)
    failed = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (failed["status"], failed["attempt_count"]) == ("open", 1)
    assert failed["last_payment_error"]["code"] == "authentication_required"
    assert "invoice.payment_failed" in await event_types(pool, invoice["id"])


@pytest.mark.parametrize(
    ("table", "row_type"),
    [
        ("invoices", InvoiceRow),
        ("invoice_lines", InvoiceLineRow),
        ("invoice_items", InvoiceItemRow),
    ],
)
async def test_the_typed_rows_have_exactly_their_tables_columns(
    pool: asyncpg.Pool, table: str, row_type: type
) -> None:
    columns = await pool.fetch(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1",
        table,
    )
    assert {f.name for f in fields(row_type)} == {c["column_name"] for c in columns}


async def test_the_status_enum_names_exactly_what_the_table_allows(pool: asyncpg.Pool) -> None:
    checks = await pool.fetch(
        "SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c"
        " JOIN pg_class t ON t.oid = c.conrelid"
        " WHERE t.relname = 'invoices' AND c.contype = 'c'"
        " AND pg_get_constraintdef(c.oid) LIKE '%status = ANY%'"
    )
    assert len(checks) == 1
    assert set(checks[0]["def"].split("'")[1::2]) == {s.value for s in InvoiceStatus}


async def test_two_pays_at_once_make_one_payment(api: Api, pool: asyncpg.Pool) -> None:
    cus = await customer(api)
    invoice = await draft(api, cus, 2600, default_payment_method="pm_card_visa")
    ok(await api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    answers = await asyncio.gather(
        *(api.post(f"/v1/invoices/{invoice['id']}/pay") for _ in range(3))
    )
    # A /pay that meets the attempt still in flight answers the invoice as it is (open).
    seen = [ok(answer) for answer in answers]
    assert "paid" in {s["status"] for s in seen} <= {"paid", "open"}
    assert len({s["payment"] for s in seen if s["status"] == "paid"}) == 1
    assert ok(await api.get(f"/v1/invoices/{invoice['id']}"))["status"] == "paid"
    assert await pool.fetchval("SELECT count(*) FROM payments WHERE customer_id = $1", cus) == 1
    events = await event_types(pool, invoice["id"])
    assert events.count("invoice.paid") == 1
