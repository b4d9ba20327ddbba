"""The hosted invoice page in Chromium (issue 14 §3): the customer opens
``hosted_invoice_url`` and pays the open invoice with a new card, or with a card that asks
for 3-D Secure, completing the simulator's challenge; the API then says the invoice is
paid by a payment of that card, saved to the customer. The page passes axe-core at 1280
and 375 px in every state it shows."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import DemoServer, screenshot
from tests.conftest import SUCCESS_CARD

ALWAYS_3DS_CARD = "4000002760003184"  # every charge asks for 3-D Secure


async def open_invoice(demo_server: DemoServer, name: str = "Ada Lovelace") -> dict[str, Any]:
    """A finalized invoice of $27.50 for a new customer with no saved card."""
    async with demo_server.api() as api:
        customer = await api.post("/v1/customers", json={"name": name, "email": "ada@example.com"})
        assert customer.status_code == 200, customer.text
        for amount, description in ((2500, "Pro plan"), (250, "Support")):
            item = await api.post(
                "/v1/invoiceitems",
                json={
                    "customer": customer.json()["id"],
                    "amount": amount,
                    "currency": "USD",
                    "description": description,
                },
            )
            assert item.status_code == 200, item.text
        draft = await api.post("/v1/invoices", json={"customer": customer.json()["id"]})
        assert draft.status_code == 200, draft.text
        final = await api.post(f"/v1/invoices/{draft.json()['id']}/finalize", json={})
    assert final.status_code == 200, final.text
    invoice: dict[str, Any] = final.json()
    assert invoice["hosted_invoice_url"] is not None
    return invoice


async def pay_with_card(page: Page, number: str) -> None:
    await page.get_by_label("Card number").fill(number)
    await page.get_by_label("Expiry").fill("12 / 34")
    await page.get_by_label("CVC").fill("123")
    await page.get_by_role("button", name="Pay $27.50").click()


async def assert_paid_by(demo_server: DemoServer, invoice: dict[str, Any], last4: str) -> None:
    paid = await demo_server.get(f"/v1/invoices/{invoice['id']}")
    assert (paid["status"], paid["amount_paid"]) == ("paid", 2750)
    payment = await demo_server.get(f"/v1/payments/{paid['payment']}")
    assert payment["status"] == "succeeded"
    assert payment["metadata"] == {"invoice": invoice["id"]}
    method = await demo_server.get(f"/v1/payment_methods/{payment['payment_method']}")
    assert method["card"]["last4"] == last4
    assert method["customer"] == invoice["customer"]  # saved for the next invoices


async def test_the_customer_pays_the_invoice_with_a_new_card(
    page: Page, demo_server: DemoServer
) -> None:
    invoice = await open_invoice(demo_server)
    await page.goto(urlsplit(invoice["hosted_invoice_url"]).path)
    await expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^\$27\.50"))
    await expect(page.get_by_text(invoice["number"])).to_be_visible()
    await expect(page.get_by_role("cell", name=re.compile("Pro plan"))).to_be_visible()
    await pay_with_card(page, SUCCESS_CARD)
    await expect(page.get_by_role("status")).to_have_text("Paid. Thank you!")
    await screenshot(page, "hosted-invoice-paid")
    await expect(page.get_by_label("Card number")).to_have_count(0)
    await assert_paid_by(demo_server, invoice, SUCCESS_CARD[-4:])


async def test_completing_3ds_on_the_hosted_page_pays_the_invoice(
    page: Page, demo_server: DemoServer
) -> None:
    invoice = await open_invoice(demo_server)
    await page.goto(urlsplit(invoice["hosted_invoice_url"]).path)
    await pay_with_card(page, ALWAYS_3DS_CARD)
    approve = page.get_by_role("button", name="Approve")
    await expect(approve).to_be_visible()
    await screenshot(page, "hosted-invoice-3ds")
    assert (await demo_server.get(f"/v1/invoices/{invoice['id']}"))["status"] == "open"
    await approve.click()
    await expect(page).to_have_url(re.compile(r"/i/[\w-]+$"))
    await expect(page.get_by_role("status")).to_have_text("Paid. Thank you!")
    await assert_paid_by(demo_server, invoice, ALWAYS_3DS_CARD[-4:])


async def test_the_hosted_invoice_page_is_accessible(page: Page, demo_server: DemoServer) -> None:
    invoice = await open_invoice(demo_server)
    path = urlsplit(invoice["hosted_invoice_url"]).path
    await page.goto(path)
    await assert_accessible(page, "hosted invoice page, open")
    await page.get_by_role("button", name="Pay $27.50").click()  # empty: every field errs
    await expect(page.get_by_text("Enter your card number.")).to_be_visible()
    await assert_accessible(page, "hosted invoice page, invalid fields")
    await pay_with_card(page, "4000000000000002")  # declined
    await expect(page.get_by_role("alert").filter(has_text="declined")).to_be_visible()
    await assert_accessible(page, "hosted invoice page, declined")
    await pay_with_card(page, SUCCESS_CARD)
    await expect(page.get_by_role("status")).to_have_text("Paid. Thank you!")
    await assert_accessible(page, "hosted invoice page, paid")
    async with demo_server.api() as api:
        voided = await open_invoice(demo_server, name="Grace Hopper")
        response = await api.post(f"/v1/invoices/{voided['id']}/void", json={})
        assert response.status_code == 200, response.text
    await page.goto(urlsplit(voided["hosted_invoice_url"]).path)
    await expect(page.get_by_role("status")).to_have_text(re.compile("^Void"))
    await assert_accessible(page, "hosted invoice page, void")
    await page.goto(f"{path}x")
    await assert_accessible(page, "hosted invoice not found")
