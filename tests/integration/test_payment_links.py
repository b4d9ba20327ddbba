"""Payment links over HTTP: the API (create, validate, list, update, tenant isolation), the
public page (open -> checkout session -> pay, as the page's script does), one-time and
recurring completions, and the completion limit under 20 concurrent customers."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from paygrid.app import create_app
from paygrid.clock import SYSTEM_CLOCK, FakeClock
from paygrid.config import Settings
from paygrid.dependencies import Deps
from paygrid.services.customers import erase_customer
from paygrid.services.merchants import NewMerchant
from tests.conftest import SUCCESS_CARD, TEST_BASE_URL, Api, auth, card

Json = dict[str, Any]
DECLINED_CARD = "4000000000000002"
REDIRECT_URL = "https://shop.example/thanks"
UNAVAILABLE = "no longer available"


def ok(response: httpx.Response) -> Json:
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def new_price(
    api: Api, amount: int = 1500, currency: str = "USD", interval: str | None = None
) -> str:
    product = ok(await api.post("/v1/products", {"name": "Paygrid mug"}))
    body: Json = {"product": product["id"], "currency": currency, "unit_amount": amount}
    if interval is not None:
        body["recurring"] = {"interval": interval}
    return str(ok(await api.post("/v1/prices", body))["id"])


async def new_link(api: Api, price: str, quantity: int = 1, **extra: Any) -> Json:
    return ok(
        await api.post(
            "/v1/payment_links", {"line_items": [{"price": price, "quantity": quantity}], **extra}
        )
    )


def slug_of(link: Json) -> str:
    prefix = f"{TEST_BASE_URL}/l/"
    assert link["url"].startswith(prefix)
    return str(link["url"][len(prefix) :])


def attribute(html: str, pattern: str) -> str:
    match = re.search(pattern, html)
    assert match is not None, pattern
    return match.group(1)


class Visit:
    """One customer's visit: the page opened from the link, its form token and key."""

    def __init__(self, path: str, token: str, key: str, action: str) -> None:
        self.path, self.token, self.key, self.action = path, token, key, action

    @property
    def session_id(self) -> str:
        return self.path.rsplit("/", 1)[1]


async def visit(client: httpx.AsyncClient, link: Json) -> Visit:
    opened = await client.get(f"/l/{slug_of(link)}")
    assert opened.status_code == 303, opened.text
    path = opened.headers["location"]
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return Visit(
        path,
        attribute(page.text, r'name="form_token" value="([^"]+)"'),
        attribute(page.text, r'data-publishable-key="([^"]+)"'),
        attribute(page.text, r'id="card-form"[^>]*action="([^"]+)"'),
    )


async def tokenize(client: httpx.AsyncClient, key: str, number: str = SUCCESS_CARD) -> str:
    response = await client.post("/v1/payment_methods", json=card(number), headers=auth(key))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def submit(
    client: httpx.AsyncClient, page: Visit, pm: str, email: str = "ada@example.com"
) -> httpx.Response:
    """As the page's script posts its form (it asks for JSON)."""
    return await client.post(
        page.action,
        data={"form_token": page.token, "method": "card", "payment_method": pm, "email": email},
        headers={"Accept": "application/json"},
    )


async def pay(client: httpx.AsyncClient, link: Json, number: str = SUCCESS_CARD) -> httpx.Response:
    page = await visit(client, link)
    return await submit(client, page, await tokenize(client, page.key, number))


async def count(pool: asyncpg.Pool, table: str, merchant_id: str) -> int:
    sql = f"SELECT count(*) FROM {table} WHERE merchant_id = $1"  # noqa: S608 - constant names
    return int(await pool.fetchval(sql, merchant_id))


async def attempts(pool: asyncpg.Pool, merchant_id: str) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM payment_attempts a JOIN payments p ON p.id = a.payment_id"
            " WHERE p.merchant_id = $1",
            merchant_id,
        )
    )


# -- the API -----------------------------------------------------------------------------------


async def test_create_retrieve_list_update(api: Api) -> None:
    price = await new_price(api, 1500)
    link = await new_link(
        api,
        price,
        2,
        restrictions={"completed_sessions": {"limit": 5}},
        after_completion={"type": "redirect", "redirect": {"url": REDIRECT_URL}},
        metadata={"campaign": "winter"},
    )
    assert link["id"].startswith("plink_") and link["object"] == "payment_link"
    assert link["active"] is True and link["livemode"] is False
    assert len(slug_of(link)) >= 22  # 128 random bits, not enumerable
    item = link["line_items"]["data"][0]
    assert (item["price"]["id"], item["quantity"], item["amount_total"]) == (price, 2, 3000)
    assert item["description"] == "Paygrid mug"
    assert link["restrictions"] == {"completed_sessions": {"count": 0, "limit": 5}}
    assert link["after_completion"] == {"type": "redirect", "redirect": {"url": REDIRECT_URL}}
    assert (link["currency"], link["expires_at"], link["metadata"]) == (
        "USD",
        None,
        {"campaign": "winter"},
    )
    assert ok(await api.get(f"/v1/payment_links/{link['id']}")) == link
    assert ok(await api.get(f"/v1/payment_links/{link['id']}/line_items")) == link["line_items"]

    other = await new_link(api, price)
    assert other["after_completion"] == {"type": "hosted_confirmation", "redirect": None}
    assert other["restrictions"] is None and slug_of(other) != slug_of(link)
    listed = ok(await api.get("/v1/payment_links", limit=1))
    assert [x["id"] for x in listed["data"]] == [other["id"]] and listed["has_more"] is True
    after = ok(await api.get("/v1/payment_links", starting_after=other["id"]))
    assert [x["id"] for x in after["data"]] == [link["id"]]

    updated = ok(
        await api.post(
            f"/v1/payment_links/{link['id']}", {"active": False, "metadata": {"campaign": ""}}
        )
    )
    assert (updated["active"], updated["metadata"]) == (False, {})
    inactive = ok(await api.get("/v1/payment_links", active="false"))
    assert [x["id"] for x in inactive["data"]] == [link["id"]]


@pytest.mark.parametrize(
    ("case", "param", "code"),
    [
        ("missing_price", "line_items[0][price]", "resource_missing"),
        ("archived_price", "line_items[0][price]", "price_not_usable"),
        ("two_currencies", "line_items[1][price]", "price_not_usable"),
        ("mixed_recurrence", "line_items[1][price]", "price_not_usable"),
        ("two_intervals", "line_items[1][price]", "price_not_usable"),
        ("zero_quantity", "line_items[0][quantity]", "parameter_invalid"),
        ("bad_redirect", "after_completion[redirect][url]", "parameter_invalid"),
        ("redirect_without_url", "after_completion[redirect][url]", "parameter_invalid"),
        ("past_expiry", "expires_at", "parameter_invalid"),
        ("no_items", "line_items", "parameter_invalid"),
    ],
)
async def test_create_is_validated(api: Api, case: str, param: str, code: str) -> None:
    usd = await new_price(api)
    items: list[Json] = [{"price": usd, "quantity": 1}]
    body: Json = {"line_items": items}
    match case:
        case "missing_price":
            items[0]["price"] = "price_nope"
        case "archived_price":
            ok(await api.post(f"/v1/prices/{usd}", {"active": False}))
        case "two_currencies":
            items.append({"price": await new_price(api, currency="EUR"), "quantity": 1})
        case "mixed_recurrence":
            items.append({"price": await new_price(api, interval="month"), "quantity": 1})
        case "two_intervals":
            items[0]["price"] = await new_price(api, interval="month")
            items.append({"price": await new_price(api, interval="year"), "quantity": 1})
        case "zero_quantity":
            items[0]["quantity"] = 0
        case "bad_redirect":
            body["after_completion"] = {"type": "redirect", "redirect": {"url": "javascript:x"}}
        case "redirect_without_url":
            body["after_completion"] = {"type": "redirect"}
        case "past_expiry":
            body["expires_at"] = 1_000_000
        case "no_items":
            body["line_items"] = []
    response = await api.post("/v1/payment_links", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)


async def test_links_are_isolated_between_merchants(
    api: Api, client: httpx.AsyncClient, other_merchant: NewMerchant
) -> None:
    other = Api(client, other_merchant.key("secret", livemode=False))
    theirs = await new_price(other)
    refused = await api.post(
        "/v1/payment_links", {"line_items": [{"price": theirs, "quantity": 1}]}
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "resource_missing"
    link = await new_link(other, theirs)
    assert (await api.get(f"/v1/payment_links/{link['id']}")).status_code == 404
    assert (await api.post(f"/v1/payment_links/{link['id']}", {"active": False})).status_code == 404
    assert ok(await api.get("/v1/payment_links"))["data"] == []
    live = Api(client, other_merchant.key("secret", livemode=True))
    assert (await live.get(f"/v1/payment_links/{link['id']}")).status_code == 404


# -- the page ----------------------------------------------------------------------------------


async def test_one_time_link_takes_a_payment(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    price = await new_price(api, 1500)
    link = await new_link(api, price, 2)
    page = await visit(client, link)
    session = ok(await api.get(f"/v1/checkout_sessions/{page.session_id}"))
    assert (session["amount"], session["currency"], session["status"]) == (3000, "USD", "open")
    assert session["metadata"] == {"payment_link": link["id"]}
    # The session is paid on the link's page only, where the slot is taken.
    assert (await client.get(f"/checkout/{page.session_id}")).status_code == 404

    paid = await submit(client, page, await tokenize(client, page.key))
    assert paid.status_code == 200, paid.text
    done = paid.json()["navigate"]
    assert done == f"{TEST_BASE_URL}{page.path}/complete"
    confirmation = await client.get(done)
    assert confirmation.status_code == 200 and "Thank you" in confirmation.text

    session = ok(await api.get(f"/v1/checkout_sessions/{page.session_id}"))
    payment = ok(await api.get(f"/v1/payments/{session['payment']}"))
    assert (payment["status"], payment["amount"]) == ("succeeded", 3000)
    assert payment["receipt_email"] == "ada@example.com"
    assert payment["metadata"]["payment_link"] == link["id"]
    assert ok(await api.get(f"/v1/payment_links/{link['id']}"))["completed_sessions_count"] == 1
    row = await pool.fetchrow(
        "SELECT status, payment_id, customer_email FROM payment_link_sessions"
        " WHERE checkout_session_id = $1",
        page.session_id,
    )
    assert row is not None
    assert tuple(row) == ("completed", payment["id"], "ada@example.com")
    assert await count(pool, "subscriptions", merchant.id) == 0


async def test_redirect_after_completion(api: Api, client: httpx.AsyncClient) -> None:
    link = await new_link(
        api,
        await new_price(api),
        after_completion={"type": "redirect", "redirect": {"url": REDIRECT_URL}},
    )
    paid = await pay(client, link)
    assert paid.json() == {"navigate": REDIRECT_URL}


async def test_recurring_link_makes_a_customer_and_a_subscription(
    api: Api, client: httpx.AsyncClient
) -> None:
    price = await new_price(api, 900, interval="month")
    link = await new_link(api, price)
    page = await visit(client, link)
    paid = await submit(client, page, await tokenize(client, page.key), "grace@example.com")
    assert paid.status_code == 200, paid.text
    customers = ok(await api.get("/v1/customers"))["data"]
    assert [c["email"] for c in customers] == ["grace@example.com"]
    subs = ok(await api.get("/v1/subscriptions", customer=customers[0]["id"]))["data"]
    assert len(subs) == 1
    sub = subs[0]
    assert sub["status"] == "active"
    assert sub["items"]["data"][0]["price"]["id"] == price
    assert sub["metadata"]["payment_link"] == link["id"]
    invoice = ok(await api.get(f"/v1/invoices/{sub['latest_invoice']}"))
    assert (invoice["status"], invoice["amount_paid"]) == ("paid", 900)
    # The card paid the first invoice on-session and was saved for the renewals: the
    # customer's default, with the mandate of that payment.
    methods = ok(await api.get("/v1/payment_methods", customer=customers[0]["id"]))["data"]
    customer = ok(await api.get(f"/v1/customers/{customers[0]['id']}"))
    assert [m["id"] for m in methods] == [customer["invoice_settings"]["default_payment_method"]]
    payment = ok(await api.get(f"/v1/payments/{invoice['payment']}"))
    assert (payment["off_session"], payment["setup_future_usage"]) == (False, "off_session")
    assert payment["payment_method"] == methods[0]["id"] and methods[0]["mandate"] is not None
    session = ok(await api.get(f"/v1/checkout_sessions/{page.session_id}"))
    assert (session["status"], session["payment"]) == ("complete", invoice["payment"])
    assert ok(await api.get(f"/v1/payment_links/{link['id']}"))["completed_sessions_count"] == 1


@pytest.mark.parametrize("interval", [None, "month"], ids=["one_time", "recurring"])
async def test_limit_one_with_twenty_concurrent_customers_takes_one_payment(
    api: Api,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    merchant: NewMerchant,
    interval: str | None,
) -> None:
    link = await new_link(
        api,
        await new_price(api, interval=interval),
        restrictions={"completed_sessions": {"limit": 1}},
    )
    pages = [await visit(client, link) for _ in range(20)]
    methods = [await tokenize(client, page.key) for page in pages]
    answers = await asyncio.gather(
        *(
            submit(client, page, pm, f"buyer{n}@example.com")
            for n, (page, pm) in enumerate(zip(pages, methods, strict=True))
        )
    )
    paid = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 410]
    assert len(paid) == 1, [a.text for a in answers]
    assert len(refused) == 19, [a.status_code for a in answers]
    assert all(UNAVAILABLE in a.json()["error"] for a in refused)
    assert await count(pool, "payments", merchant.id) == 1
    assert await attempts(pool, merchant.id) == 1
    # Only the customer who got the slot exists (a recurring link makes one per payer).
    assert await count(pool, "customers", merchant.id) == (0 if interval is None else 1)
    assert await count(pool, "subscriptions", merchant.id) == (0 if interval is None else 1)
    body = ok(await api.get(f"/v1/payment_links/{link['id']}"))
    assert body["restrictions"]["completed_sessions"] == {"count": 1, "limit": 1}
    # Exhausted: the link's page is a 410 from now on.
    gone = await client.get(f"/l/{slug_of(link)}")
    assert gone.status_code == 410 and "reached its limit" in gone.text


async def test_a_failed_card_gives_the_slot_back(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    link = await new_link(
        api, await new_price(api), restrictions={"completed_sessions": {"limit": 1}}
    )
    declined = await pay(client, link, DECLINED_CARD)
    assert declined.status_code == 402, declined.text
    assert "declined" in declined.json()["error"].lower()
    slots = await pool.fetchval(
        "SELECT reserved_count FROM payment_links WHERE id = $1", link["id"]
    )
    assert slots == 0
    again = await pay(client, link)
    assert again.status_code == 200, again.text
    assert await count(pool, "payments", merchant.id) == 2  # the declined one, and the paid one
    body = ok(await api.get(f"/v1/payment_links/{link['id']}"))
    assert body["restrictions"]["completed_sessions"]["count"] == 1


async def test_inactive_link_is_gone(api: Api, client: httpx.AsyncClient) -> None:
    link = await new_link(api, await new_price(api))
    page = await visit(client, link)  # opened before the seller turned it off
    ok(await api.post(f"/v1/payment_links/{link['id']}", {"active": False}))
    gone = await client.get(f"/l/{slug_of(link)}")
    assert gone.status_code == 410 and "deactivated" in gone.text
    assert (await client.get(page.path)).status_code == 410
    refused = await submit(client, page, await tokenize(client, page.key))
    assert refused.status_code == 410
    assert ok(await api.get(f"/v1/checkout_sessions/{page.session_id}"))["payment"] is None
    ok(await api.post(f"/v1/payment_links/{link['id']}", {"active": True}))
    assert (await client.get(f"/l/{slug_of(link)}")).status_code == 303


async def test_expired_link_is_gone(merchant: NewMerchant, deps: Deps, settings: Settings) -> None:
    """Expiry is measured on the injected clock."""
    clock = FakeClock()
    app = create_app(settings, deps=replace(deps, clock=clock))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as client:
        api = Api(client, merchant.key("secret", livemode=False))
        expires = int(clock.now().timestamp()) + 3600
        link = await new_link(api, await new_price(api), expires_at=expires)
        assert link["expires_at"] == expires
        page = await visit(client, link)
        clock.advance(timedelta(seconds=3601))
        gone = await client.get(f"/l/{slug_of(link)}")
        assert gone.status_code == 410 and "expired" in gone.text
        refused = await submit(client, page, await tokenize(client, page.key))
        assert refused.status_code == 410
        assert ok(await api.get(f"/v1/checkout_sessions/{page.session_id}"))["payment"] is None


async def test_unknown_slug_is_not_found(client: httpx.AsyncClient) -> None:
    assert (await client.get("/l/not-a-link")).status_code == 404


async def test_email_is_required(api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    link = await new_link(
        api, await new_price(api), restrictions={"completed_sessions": {"limit": 1}}
    )
    page = await visit(client, link)
    refused = await submit(client, page, await tokenize(client, page.key), email="not an email")
    assert refused.status_code == 400
    assert "email" in refused.json()["error"].lower()
    assert (
        await pool.fetchval("SELECT reserved_count FROM payment_links WHERE id = $1", link["id"])
        == 0
    )


# -- 3-D Secure: the slot is held while the customer authenticates --------------------------

THREE_DS_CARD = "4000002500003155"


async def follow_local(client: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    while response.status_code == 303 and response.headers["location"].startswith(TEST_BASE_URL):
        response = await client.get(response.headers["location"])
    return response


async def test_three_d_secure_holds_the_slot_then_completes(
    api: Api, client: httpx.AsyncClient
) -> None:
    link = await new_link(
        api, await new_price(api), restrictions={"completed_sessions": {"limit": 1}}
    )
    started = await pay(client, link, THREE_DS_CARD)
    bank_page = started.json()["navigate"]
    assert bank_page.startswith(f"{TEST_BASE_URL}/simulator/authenticate/")
    # While the first customer authenticates, the only slot is theirs.
    assert (await client.get(f"/l/{slug_of(link)}")).status_code == 410
    decided = await client.post(urlsplit(bank_page).path, data={"decision": "approve"})
    done = await follow_local(client, decided)
    assert done.status_code == 200 and "Thank you" in done.text
    body = ok(await api.get(f"/v1/payment_links/{link['id']}"))
    assert body["restrictions"]["completed_sessions"] == {"count": 1, "limit": 1}


async def test_an_abandoned_authentication_gives_the_slot_back_later(
    merchant: NewMerchant, deps: Deps, settings: Settings, pool: asyncpg.Pool
) -> None:
    clock = FakeClock()
    app = create_app(settings, deps=replace(deps, clock=clock))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as client:
        api = Api(client, merchant.key("secret", livemode=False))
        link = await new_link(
            api, await new_price(api), restrictions={"completed_sessions": {"limit": 1}}
        )
        abandoned = await pay(client, link, THREE_DS_CARD)
        assert "navigate" in abandoned.json()
        assert (await client.get(f"/l/{slug_of(link)}")).status_code == 410
        clock.advance(timedelta(minutes=61))
        paid = await pay(client, link)
        assert paid.status_code == 200, paid.text
        statuses = await pool.fetch(
            "SELECT status FROM payments WHERE merchant_id = $1 ORDER BY id", merchant.id
        )
        assert [r["status"] for r in statuses] == ["canceled", "succeeded"]
        body = ok(await api.get(f"/v1/payment_links/{link['id']}"))
        assert body["restrictions"]["completed_sessions"] == {"count": 1, "limit": 1}


async def test_erasing_the_customer_forgets_the_email_entered_on_the_page(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    link = await new_link(api, await new_price(api, 900, interval="month"))
    page = await visit(client, link)
    paid = await submit(client, page, await tokenize(client, page.key), "erase.me@example.com")
    assert paid.status_code == 200, paid.text
    customer = ok(await api.get("/v1/customers"))["data"][0]["id"]
    entered = "SELECT customer_email FROM payment_link_sessions WHERE checkout_session_id = $1"
    assert await pool.fetchval(entered, page.session_id) == "erase.me@example.com"
    await erase_customer(pool, merchant.id, customer, "test", now=SYSTEM_CLOCK.now())
    assert await pool.fetchval(entered, page.session_id) is None
