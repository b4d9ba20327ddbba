"""Payment links in Chromium (issue 14 §6): support staff create a link in the dashboard
(its page shows the URL with a copy button and a QR code), a customer opens the link, pays
with a test card and lands on the hosted confirmation; a deactivated link shows its 410
page. Every page passes axe-core at 1280 and 375 px."""

from __future__ import annotations

import re

import asyncpg
from playwright.async_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import DemoServer, screenshot
from tests.browser.test_dashboard_flows import PASSWORD, new_user, sign_in
from tests.conftest import SUCCESS_CARD

DECLINED_CARD = "4000000000000002"
THREE_DS_CARD = "4000002500003155"


async def one_time_price(demo_server: DemoServer, amount: int = 1250) -> str:
    async with demo_server.api() as api:
        product = await api.post("/v1/products", json={"name": "Paygrid tote bag"})
        assert product.status_code == 200, product.text
        price = await api.post(
            "/v1/prices",
            json={"product": product.json()["id"], "currency": "USD", "unit_amount": amount},
        )
    assert price.status_code == 200, price.text
    return str(price.json()["id"])


async def pay_on_page(page: Page, email: str, number: str, button: str = "Pay $25.00") -> None:
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Card number").fill(number)
    await page.get_by_label("Expiry").fill("12 / 34")
    await page.get_by_label("CVC").fill("123")
    await page.get_by_role("button", name=button).click()


async def test_support_creates_a_link_and_a_customer_pays_it(
    page: Page, demo_server: DemoServer, demo_pool: asyncpg.Pool
) -> None:
    price = await one_time_price(demo_server)
    email = await new_user(demo_pool, demo_server, "support")
    await sign_in(page, email, PASSWORD, "support")
    await page.goto("/dashboard/payment_links")
    await assert_accessible(page, "payment links")
    await page.get_by_label("Price 1", exact=True).select_option(price)
    await page.get_by_label("Quantity 1", exact=True).fill("2")
    await page.get_by_label("Stop after this many payments (optional)").fill("5")
    await page.get_by_role("button", name="Create payment link").click()
    await expect(
        page.get_by_role("heading", name=re.compile(r"Payment link plink_"))
    ).to_be_visible()
    await expect(page.get_by_role("img", name="QR code of the link")).to_be_visible()
    url = await page.get_by_label("URL").input_value()
    assert "/l/" in url
    await expect(page.get_by_role("button", name="Copy URL")).to_be_visible()
    await screenshot(page, "payment-link-dashboard")
    await assert_accessible(page, "payment link")

    await page.goto(url)
    await expect(page.get_by_label("Card number")).to_be_visible()
    await assert_accessible(page, "payment link checkout")
    await pay_on_page(page, "ada@example.com", DECLINED_CARD)
    error = page.get_by_role("alert").filter(has_text="Your card was declined.")
    await expect(error).to_be_visible()
    await page.get_by_label("Card number").fill(SUCCESS_CARD)
    await page.get_by_label("CVC").fill("123")
    await page.get_by_role("button", name="Pay $25.00").click()
    await expect(page.get_by_role("heading", name=re.compile("Thank you"))).to_be_visible()
    await screenshot(page, "payment-link-paid")
    await assert_accessible(page, "payment link confirmation")

    link_id = url  # found through the API by its url
    async with demo_server.api() as api:
        links = (await api.get("/v1/payment_links")).json()["data"]
    link = next(x for x in links if x["url"] == link_id)
    assert link["restrictions"]["completed_sessions"] == {"count": 1, "limit": 5}
    sessions = await demo_server.get("/v1/checkout_sessions?status=complete&limit=1")
    paid = await demo_server.get(f"/v1/payments/{sessions['data'][0]['payment']}")
    assert (paid["status"], paid["amount"]) == ("succeeded", 2500)
    assert paid["metadata"]["payment_link"] == link["id"]

    await page.goto(f"/dashboard/payment_links/{link['id']}")
    await expect(page.locator("#completions")).to_contain_text(paid["id"])
    await page.get_by_role("button", name="Deactivate link").click()
    await page.goto(url)
    await expect(
        page.get_by_role("heading", name="This payment link is no longer available")
    ).to_be_visible()
    await screenshot(page, "payment-link-gone")
    await assert_accessible(page, "payment link gone")


async def test_a_recurring_link_takes_a_three_d_secure_card(
    page: Page, demo_server: DemoServer
) -> None:
    """The first invoice is paid on-session: the simulator's challenge, then back to the
    link's page and its confirmation; the card is the new customer's default."""
    async with demo_server.api() as api:
        product = await api.post("/v1/products", json={"name": "Paygrid plan"})
        assert product.status_code == 200, product.text
        price = await api.post(
            "/v1/prices",
            json={
                "product": product.json()["id"],
                "currency": "USD",
                "unit_amount": 2500,
                "recurring": {"interval": "month"},
            },
        )
        assert price.status_code == 200, price.text
        created = await api.post(
            "/v1/payment_links",
            json={
                "line_items": [{"price": price.json()["id"], "quantity": 1}],
                "restrictions": {"completed_sessions": {"limit": 1}},
            },
        )
    assert created.status_code == 200, created.text
    link = created.json()
    await page.goto(link["url"])
    await pay_on_page(page, "grace.3ds@example.com", THREE_DS_CARD, "Subscribe")
    await page.get_by_role("button", name="Approve").click()  # the simulator's 3-D Secure
    await expect(page.get_by_role("heading", name=re.compile("Thank you"))).to_be_visible()
    await assert_accessible(page, "recurring payment link confirmation")

    customers = await demo_server.get("/v1/customers?email=grace.3ds@example.com")
    customer = customers["data"][0]
    subs = await demo_server.get(f"/v1/subscriptions?customer={customer['id']}")
    assert subs["data"][0]["status"] == "active"
    invoice = await demo_server.get(f"/v1/invoices/{subs['data'][0]['latest_invoice']}")
    assert invoice["status"] == "paid"
    paid = await demo_server.get(f"/v1/payments/{invoice['payment']}")
    assert customer["invoice_settings"]["default_payment_method"] == paid["payment_method"]
    done = await demo_server.get(f"/v1/payment_links/{link['id']}")
    assert done["restrictions"]["completed_sessions"] == {"count": 1, "limit": 1}
