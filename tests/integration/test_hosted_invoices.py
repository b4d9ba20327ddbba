"""Hosted invoice pages and PDFs (issue 14 §3), over HTTP: finalizing (one-off, a
subscription's renewal, a deleted customer's draft) gives the invoice a
``hosted_invoice_url`` and ``invoice_pdf``; the page shows the invoice in each state and
pays it; a bad token is a 404; the PDF is ``application/pdf``, carries the number, is the
same bytes on every download and is not re-rendered after the customer is renamed."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from pypdf import PdfReader

from paygrid.clock import SYSTEM_CLOCK
from paygrid.dependencies import Deps
from paygrid.services.billing.subscriptions.schedule import STEP
from paygrid.services.customers import erase_customer
from paygrid.services.merchants import NewMerchant
from tests.conftest import SUCCESS_CARD, Api, card
from tests.integration.test_invoices import draft, ok
from tests.integration.test_subscriptions import (
    T0,
    clock_customer,
    invoices_of,
    monthly_price,
    subscribe,
)
from tests.integration.test_subscriptions import move as move_clock
from tests.integration.test_test_clocks import billing_worker

TOKEN_PATH = re.compile(r"^/i/[A-Za-z0-9_-]{32}$")


async def open_invoice(api: Api, name: str = "Ada Lovelace") -> dict[str, Any]:
    customer = ok(await api.post("/v1/customers", {"name": name, "email": "ada@example.com"}))
    invoice = await draft(api, customer["id"], 1500, 250)
    assert (invoice["hosted_invoice_url"], invoice["invoice_pdf"]) == (None, None)
    return ok(await api.post(f"/v1/invoices/{invoice['id']}/finalize", {}))


def page_path(invoice: dict[str, Any]) -> str:
    return urlsplit(str(invoice["hosted_invoice_url"])).path


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


async def test_finalizing_gives_a_page_and_a_pdf_url(
    api: Api, client: httpx.AsyncClient, deps: Deps
) -> None:
    invoice = await open_invoice(api)
    url = invoice["hosted_invoice_url"]
    assert url.startswith(f"{deps.settings.base_url()}/i/")
    assert TOKEN_PATH.match(page_path(invoice)), url  # 24 random bytes, 192 bits
    assert invoice["invoice_pdf"] == f"{url}/pdf"
    assert ok(await api.get(f"/v1/invoices/{invoice['id']}"))["hosted_invoice_url"] == url
    other = await open_invoice(api)
    assert other["hosted_invoice_url"] != url


async def test_the_page_shows_the_open_invoice_and_a_bad_token_is_404(
    api: Api, client: httpx.AsyncClient
) -> None:
    invoice = await open_invoice(api)
    page = await client.get(page_path(invoice))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for text in (invoice["number"], "Ada Lovelace", "$17.50", "$15.00", "$2.50", "Open"):
        assert text in page.text, text
    assert 'id="card-form"' in page.text and 'name="form_token"' in page.text
    path = page_path(invoice)
    missing = await client.get(path[:-1] + ("y" if path.endswith("x") else "x"))
    assert missing.status_code == 404
    assert "Invoice not found" in missing.text
    assert (await client.get("/i/nothing/pdf")).status_code == 404


async def test_the_page_shows_void_and_paid_invoices_without_a_form(
    api: Api, client: httpx.AsyncClient
) -> None:
    voided = await open_invoice(api)
    ok(await api.post(f"/v1/invoices/{voided['id']}/void", {}))
    page = await client.get(page_path(voided))
    assert page.status_code == 200 and "Void" in page.text and "card-form" not in page.text
    paid = await open_invoice(api)
    ok(await api.post(f"/v1/invoices/{paid['id']}/pay", {"payment_method": "pm_card_visa"}))
    page = await client.get(page_path(paid))
    assert "Paid. Thank you!" in page.text and "card-form" not in page.text
    uncollectible = await open_invoice(api)
    ok(await api.post(f"/v1/invoices/{uncollectible['id']}/mark_uncollectible", {}))
    page = await client.get(page_path(uncollectible))
    assert "Past due" in page.text and "card-form" in page.text


async def test_the_page_pays_with_a_tokenized_card_and_saves_it(
    api: Api, client: httpx.AsyncClient
) -> None:
    invoice = await open_invoice(api)
    page = await client.get(page_path(invoice))
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert form_token is not None
    method = ok(
        await api.post(
            "/v1/payment_methods",
            {
                "type": "card",
                "card": {
                    "number": "4242424242424242",
                    "exp_month": 12,
                    "exp_year": 2040,
                    "cvc": "123",
                },
            },
        )
    )
    forged = await client.post(
        f"{page_path(invoice)}/pay",
        data={"form_token": "forged", "method": "card", "payment_method": method["id"]},
    )
    assert forged.status_code == 403
    assert ok(await api.get(f"/v1/invoices/{invoice['id']}"))["status"] == "open"
    paid = await client.post(
        f"{page_path(invoice)}/pay",
        data={"form_token": form_token[1], "method": "card", "payment_method": method["id"]},
    )
    assert paid.status_code == 303 and paid.headers["location"] == page_path(invoice)
    after = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (after["status"], after["amount_paid"]) == ("paid", 1750)
    payment = ok(await api.get(f"/v1/payments/{after['payment']}"))
    assert payment["metadata"] == {"invoice": invoice["id"]}
    saved = ok(await api.get(f"/v1/payment_methods/{method['id']}"))
    assert saved["customer"] == invoice["customer"]


async def test_the_pdf_carries_the_number_and_never_changes(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    invoice = await open_invoice(api, name="Grace Hopper")
    first = await client.get(f"{page_path(invoice)}/pdf")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/pdf"
    assert invoice["number"] in first.headers["content-disposition"]
    text = pdf_text(first.content)
    assert invoice["number"] in text and "Grace Hopper" in text and "$17.50" in text
    # The customer renamed: the page and the PDF stay as the invoice was issued.
    ok(await api.post(f"/v1/customers/{invoice['customer']}", {"name": "Someone Else"}))
    second = await client.get(f"{page_path(invoice)}/pdf")
    assert second.content == first.content
    assert "Grace Hopper" in (await client.get(page_path(invoice))).text
    # Paying it changes the page, not the PDF.
    ok(await api.post(f"/v1/invoices/{invoice['id']}/pay", {"payment_method": "pm_card_visa"}))
    assert (await client.get(f"{page_path(invoice)}/pdf")).content == first.content
    stored = await pool.fetchval(
        "SELECT pdf FROM hosted_invoices WHERE invoice_id = $1", invoice["id"]
    )
    assert bytes(stored) == first.content


async def test_a_deleted_customers_draft_gets_a_page_when_finalized_to_be_voided(
    api: Api, client: httpx.AsyncClient
) -> None:
    customer = ok(await api.post("/v1/customers", {"name": "Ada"}))
    invoice = await draft(api, customer["id"], 900)
    ok(await api.delete(f"/v1/customers/{customer['id']}"))
    voided = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert voided["status"] == "void" and voided["hosted_invoice_url"] is not None
    assert "Void" in (await client.get(page_path(voided))).text


async def test_a_renewal_finalized_by_the_schedule_has_a_page(
    api: Api, client: httpx.AsyncClient, deps: Deps
) -> None:
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    await subscribe(api, customer, price)
    async with billing_worker(deps, STEP):
        await move_clock(api, clock, T0 + timedelta(days=32))
    renewed = [
        i for i in await invoices_of(api, customer) if i["billing_reason"] == "subscription_cycle"
    ]
    assert len(renewed) == 1 and renewed[0]["hosted_invoice_url"] is not None
    page = await client.get(page_path(renewed[0]))
    assert page.status_code == 200 and renewed[0]["number"] in page.text
    pdf = await client.get(f"{page_path(renewed[0])}/pdf")
    assert renewed[0]["number"] in pdf_text(pdf.content)


async def test_erasing_the_customer_removes_it_from_the_page_and_the_pdf(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    invoice = await open_invoice(api, name="Grace Hopper")
    before = await client.get(f"{page_path(invoice)}/pdf")
    assert "Grace Hopper" in pdf_text(before.content)
    await erase_customer(pool, merchant.id, invoice["customer"], "cli:dpo", now=SYSTEM_CLOCK.now())
    page = await client.get(page_path(invoice))
    assert page.status_code == 200 and "Grace Hopper" not in page.text
    assert "ada@example.com" not in page.text
    after = await client.get(f"{page_path(invoice)}/pdf")
    assert invoice["number"] in pdf_text(after.content)
    assert "Grace Hopper" not in pdf_text(after.content)


async def test_the_page_pays_with_the_customers_saved_card(
    api: Api, client: httpx.AsyncClient
) -> None:
    customer = ok(await api.post("/v1/customers", {"name": "Ada"}))["id"]
    method = ok(await api.post("/v1/payment_methods", {"customer": customer, **card(SUCCESS_CARD)}))
    settings = {"invoice_settings": {"default_payment_method": method["id"]}}
    ok(await api.post(f"/v1/customers/{customer}", settings))
    invoice = await draft(api, customer, 4000)
    invoice = ok(await api.post(f"/v1/invoices/{invoice['id']}/finalize", {}))
    page = await client.get(page_path(invoice))
    assert "Pay $40.00 with Visa ending in 4242" in page.text
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert form_token is not None
    paid = await client.post(
        f"{page_path(invoice)}/pay", data={"form_token": form_token[1], "method": "saved"}
    )
    assert paid.status_code == 303
    after = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert after["status"] == "paid"
    payment = ok(await api.get(f"/v1/payments/{after['payment']}"))
    assert payment["payment_method"] == method["id"]
    assert payment["off_session"] is False  # the customer was there


async def pay_on_page(
    api: Api, client: httpx.AsyncClient, invoice: dict[str, Any], number: str
) -> httpx.Response:
    """Post the page's card form with a card tokenized as the page's script does."""
    page = await client.get(page_path(invoice))
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert form_token is not None
    method = ok(await api.post("/v1/payment_methods", card(number)))
    return await client.post(
        f"{page_path(invoice)}/pay",
        data={"form_token": form_token[1], "method": "card", "payment_method": method["id"]},
    )


async def follow(client: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    """Follow the redirects (absolute or not) within the app."""
    while response.status_code == 303:
        location = urlsplit(response.headers["location"])
        target = location.path + (f"?{location.query}" if location.query else "")
        response = await client.get(target)
    return response


async def test_3ds_on_the_page_then_approved_pays_and_denied_counts_a_failed_attempt(
    api: Api, client: httpx.AsyncClient
) -> None:
    invoice = await open_invoice(api)
    challenge = await pay_on_page(api, client, invoice, "4000002760003184")
    assert challenge.status_code == 303
    assert "/simulator/authenticate/" in challenge.headers["location"]
    still = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (still["status"], still["attempt_count"]) == ("open", 0)  # not failed: pending
    decided = await client.post(
        urlsplit(challenge.headers["location"]).path, content=b"decision=deny"
    )
    page = await follow(client, decided)
    assert page.status_code == 402 and "card-form" in page.text
    denied = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (denied["status"], denied["attempt_count"]) == ("open", 1)
    assert denied["last_payment_error"] is not None

    challenge = await pay_on_page(api, client, invoice, "4000002760003184")
    decided = await client.post(
        urlsplit(challenge.headers["location"]).path, content=b"decision=approve"
    )
    page = await follow(client, decided)
    assert page.status_code == 200 and "Paid. Thank you!" in page.text
    paid = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert paid["status"] == "paid"
    payment = ok(await api.get(f"/v1/payments/{paid['payment']}"))
    assert payment["status"] == "succeeded"
    assert payment["metadata"] == {"invoice": invoice["id"]}
