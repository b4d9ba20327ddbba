"""The dashboard's subscription and invoice pages over HTTP: lists with their filters, a
subscription paused, resumed and canceled and an invoice finalized, paid, marked
uncollectible and voided through the same use cases as the API (with their events and the
dashboard user as audit actor); the customer page's subscriptions, invoices and saved
methods; refused for roles without ``invoices:write`` and for forms without the CSRF
token."""

from __future__ import annotations

import html
import re
from typing import Any

import asyncpg
import httpx

from tests.conftest import SUCCESS_CARD, Api, card
from tests.integration import test_dashboard as dashboard_tests
from tests.integration.test_dashboard import Login, csrf_of, post_form

# The signed-in clients of the dashboard's own tests, shared as fixtures by name.
new_client = dashboard_tests.new_client
login = dashboard_tests.login

Json = dict[str, Any]
DECLINED_CARD = "4000000000000002"


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def ok(response: httpx.Response) -> Json:
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def _customer_with_card(api: Api, number: str = SUCCESS_CARD) -> tuple[str, str]:
    """A customer with a saved card as its default for invoices."""
    customer = ok(await api.post("/v1/customers", {"email": "sub@example.com"}))["id"]
    method = ok(await api.post("/v1/payment_methods", {"customer": customer, **card(number)}))["id"]
    settings = {"invoice_settings": {"default_payment_method": method}}
    ok(await api.post(f"/v1/customers/{customer}", settings))
    return customer, method


async def _subscription(api: Api, customer: str, amount: int = 1500) -> Json:
    product = ok(await api.post("/v1/products", {"name": "Gold plan"}))["id"]
    price = ok(
        await api.post(
            "/v1/prices",
            {
                "product": product,
                "currency": "USD",
                "unit_amount": amount,
                "recurring": {"interval": "month"},
                "nickname": "Gold monthly",
            },
        )
    )["id"]
    body = {"customer": customer, "items": [{"price": price, "quantity": 2}]}
    return ok(await api.post("/v1/subscriptions", body))


async def _draft_invoice(api: Api, customer: str, amount: int = 2500) -> Json:
    item = {"customer": customer, "amount": amount, "currency": "USD", "description": "Setup fee"}
    ok(await api.post("/v1/invoiceitems", item))
    return ok(await api.post("/v1/invoices", {"customer": customer}))


async def _event_types(pool: asyncpg.Pool, object_id: str) -> list[str]:
    rows = await pool.fetch("SELECT type FROM events WHERE object_id = $1 ORDER BY id", object_id)
    return [r["type"] for r in rows]


async def _actors(pool: asyncpg.Pool, object_id: str) -> set[str]:
    rows = await pool.fetch("SELECT DISTINCT actor FROM audit_log WHERE object_id = $1", object_id)
    return {r["actor"] for r in rows}


async def test_an_admin_lists_pauses_resumes_and_cancels_a_subscription(
    login: Login, api: Api, pool: asyncpg.Pool
) -> None:
    customer, _ = await _customer_with_card(api)
    sub = await _subscription(api, customer)
    assert sub["status"] == "active"
    http, user = await login("admin")

    listing = _text((await http.get("/dashboard/subscriptions")).text)
    assert sub["id"] in listing and customer in listing and "Active" in listing
    assert "30.00 USD" in listing  # 2 x 15.00 per period
    assert sub["id"] not in (await http.get("/dashboard/subscriptions?status=paused")).text
    assert sub["id"] in (await http.get(f"/dashboard/subscriptions?customer={customer}")).text

    page = f"/dashboard/subscriptions/{sub['id']}"
    detail = _text((await http.get(page)).text)
    assert "Gold monthly" in detail and "15.00 USD" in detail and "every 1 month" in detail
    assert sub["latest_invoice"] in detail  # its paid first invoice
    assert "customer.subscription.created" in detail

    paused = await post_form(http, page, f"{page}/pause", {})
    assert paused.status_code == 303, paused.text
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "paused"
    assert "Paused" in _text((await http.get(page)).text)
    resumed = await post_form(http, page, f"{page}/resume", {"billing_cycle_anchor": "unchanged"})
    assert resumed.status_code == 303, resumed.text
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "active"

    unconfirmed = await post_form(http, page, f"{page}/cancel", {"when": "now"})
    assert unconfirmed.status_code == 400 and "confirmation" in unconfirmed.text
    scheduled = await post_form(
        http, page, f"{page}/cancel", {"when": "period_end", "confirm": "yes"}
    )
    assert scheduled.status_code == 303, scheduled.text
    after = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
    assert (after["status"], after["cancel_at_period_end"]) == ("active", True)
    assert "Next invoice None" in _text((await http.get(page)).text)
    canceled = await post_form(http, page, f"{page}/cancel", {"when": "now", "confirm": "yes"})
    assert canceled.status_code == 303, canceled.text
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "canceled"
    assert "No actions are possible" in (await http.get(page)).text

    types = await _event_types(pool, sub["id"])
    assert types[0] == "customer.subscription.created"
    assert types[-4:] == [
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    ]
    assert f"dashboard:{user.id}" in await _actors(pool, sub["id"])


async def test_an_admin_finalizes_pays_and_voids_invoices(
    login: Login, api: Api, pool: asyncpg.Pool
) -> None:
    customer, _ = await _customer_with_card(api)
    invoice = await _draft_invoice(api, customer)
    http, user = await login("admin")
    drafts = _text((await http.get("/dashboard/invoices?status=draft")).text)
    assert invoice["id"] in drafts and "25.00 USD" in drafts
    assert invoice["id"] not in (await http.get("/dashboard/invoices?status=paid")).text

    page = f"/dashboard/invoices/{invoice['id']}"
    detail = _text((await http.get(page)).text)
    assert "Setup fee" in detail and "Subtotal 25.00 USD" in detail
    assert "Amount remaining 25.00 USD" in detail and "No attempts." in detail
    finalized = await post_form(http, page, f"{page}/finalize", {})
    assert finalized.status_code == 303, finalized.text
    number = ok(await api.get(f"/v1/invoices/{invoice['id']}"))["number"]
    assert number and number in (await http.get(page)).text

    assert (await post_form(http, page, f"{page}/pay", {})).status_code == 400
    paid = await post_form(http, page, f"{page}/pay", {"confirm": "yes"})
    assert paid.status_code == 303, paid.text
    now_paid = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (now_paid["status"], now_paid["amount_paid"]) == ("paid", 2500)
    detail = _text((await http.get(page)).text)
    assert now_paid["payment"] in detail and "Amount paid 25.00 USD" in detail
    payment = ok(await api.get(f"/v1/payments/{now_paid['payment']}"))
    assert (payment["status"], payment["off_session"]) == ("succeeded", True)
    refused = await http.post(
        f"{page}/void", data={"csrf_token": csrf_of((await http.get(page)).text), "confirm": "yes"}
    )
    assert refused.status_code == 409  # a paid invoice is never voided
    assert ok(await api.get(f"/v1/invoices/{invoice['id']}"))["status"] == "paid"

    other = await _draft_invoice(api, customer, amount=700)
    ok(await api.post(f"/v1/invoices/{other['id']}/finalize"))
    other_page = f"/dashboard/invoices/{other['id']}"
    marked = await post_form(
        http, other_page, f"{other_page}/mark_uncollectible", {"confirm": "yes"}
    )
    assert marked.status_code == 303, marked.text
    assert ok(await api.get(f"/v1/invoices/{other['id']}"))["status"] == "uncollectible"
    voided = await post_form(http, other_page, f"{other_page}/void", {"confirm": "yes"})
    assert voided.status_code == 303, voided.text
    assert ok(await api.get(f"/v1/invoices/{other['id']}"))["status"] == "void"
    assert await _event_types(pool, other["id"]) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.marked_uncollectible",
        "invoice.voided",
    ]
    assert f"dashboard:{user.id}" in await _actors(pool, invoice["id"])


async def test_a_declined_payment_is_shown_as_a_failed_attempt(login: Login, api: Api) -> None:
    customer, _ = await _customer_with_card(api, DECLINED_CARD)
    invoice = await _draft_invoice(api, customer)
    ok(await api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    http, _ = await login("admin")
    page = f"/dashboard/invoices/{invoice['id']}"
    for attempt in (1, 2):
        declined = await post_form(http, page, f"{page}/pay", {"confirm": "yes"})
        assert declined.status_code == 402 and "declined" in declined.text
        after = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
        assert (after["status"], after["attempt_count"]) == ("open", attempt)
    payments = ok(await api.get("/v1/payments", customer=customer))["data"]
    assert len(payments) == 2
    detail = _text((await http.get(page)).text)
    assert all(p["id"] in detail for p in payments)
    assert "Last error:" in detail and "Pay invoice" in detail


async def test_the_customer_page_shows_subscriptions_invoices_and_saved_methods(
    login: Login, api: Api
) -> None:
    customer, method = await _customer_with_card(api)
    other = ok(await api.post("/v1/payment_methods", {"customer": customer, **card(SUCCESS_CARD)}))
    sub = await _subscription(api, customer)
    draft = await _draft_invoice(api, customer)
    http, _ = await login("viewer")
    page = (await http.get(f"/dashboard/customers/{customer}")).text
    text = _text(page)
    assert f'href="/dashboard/subscriptions/{sub["id"]}"' in page
    assert f'href="/dashboard/invoices/{draft["id"]}"' in page
    assert f'href="/dashboard/invoices/{sub["latest_invoice"]}"' in page
    assert f"{method} Visa •••• 4242" in text and "Default for invoices" in text
    assert other["id"] in text
    assert text.count("Default for invoices") == 1

    operator, _ = await login("operator")  # reads no customers or invoices
    assert (await operator.get(f"/dashboard/customers/{customer}")).status_code == 403


async def test_roles_without_invoices_write_only_read_billing(
    login: Login, api: Api, pool: asyncpg.Pool
) -> None:
    customer, _ = await _customer_with_card(api)
    sub = await _subscription(api, customer)
    invoice = await _draft_invoice(api, customer)
    http, _ = await login("support")
    sub_page = await http.get(f"/dashboard/subscriptions/{sub['id']}")
    assert sub_page.status_code == 200
    assert "cannot change subscriptions" in sub_page.text
    assert "cannot cancel subscriptions" in sub_page.text
    assert 'href="/dashboard/subscriptions"' in sub_page.text  # in the navigation
    invoice_page = await http.get(f"/dashboard/invoices/{invoice['id']}")
    assert invoice_page.status_code == 200 and "cannot change invoices" in invoice_page.text
    token = csrf_of(invoice_page.text)
    for action, fields in (
        (f"/dashboard/subscriptions/{sub['id']}/pause", {}),
        (f"/dashboard/subscriptions/{sub['id']}/cancel", {"confirm": "yes"}),
        (f"/dashboard/invoices/{invoice['id']}/finalize", {}),
        (f"/dashboard/invoices/{invoice['id']}/void", {"confirm": "yes"}),
    ):
        refused = await http.post(action, data={"csrf_token": token, **fields})
        assert refused.status_code == 403 and "invoices:write" in refused.text, action
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "active"
    assert ok(await api.get(f"/v1/invoices/{invoice['id']}"))["status"] == "draft"

    operator, _ = await login("operator")
    for path in ("/dashboard/subscriptions", "/dashboard/invoices"):
        assert (await operator.get(path)).status_code == 403
    overview = (await operator.get("/dashboard")).text
    assert 'href="/dashboard/invoices"' not in overview
    assert 'href="/dashboard/subscriptions"' not in overview

    admin, _ = await login("admin")
    no_token = await admin.post(f"/dashboard/subscriptions/{sub['id']}/pause")
    assert no_token.status_code == 403
    no_token = await admin.post(f"/dashboard/invoices/{invoice['id']}/finalize")
    assert no_token.status_code == 403
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "active"
    assert await pool.fetchval("SELECT status FROM invoices WHERE id = $1", invoice["id"]) == (
        "draft"
    )
