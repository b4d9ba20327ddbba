"""The customer billing portal in Chromium (issue 14 §8: "Portal: update the card in
Chromium; the open invoice is paid"): a customer whose renewal was declined (a card with
insufficient funds, on a test clock, in the demo server's real worker) opens the portal,
adds a good card as the default, and the open invoice is paid by the worker's retry. The
portal passes axe-core at 1280 px and 375 px."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from playwright.async_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import DemoServer, screenshot, unique
from tests.conftest import SUCCESS_CARD, card
from tests.integration.worker_harness import eventually

Json = dict[str, Any]
T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
INSUFFICIENT_FUNDS_CARD = "4000000000009995"
THREE_DS_CARD = "4000002500003155"


def ok(response: httpx.Response) -> Json:
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def declined_renewal(api: httpx.AsyncClient) -> tuple[str, Json]:
    """A customer on a test clock whose first renewal (after a 5-day trial) was declined:
    the customer and the subscription, now ``past_due`` with an ``open`` invoice."""
    product = ok(await api.post("/v1/products", json={"name": "Gold plan"}))
    price = ok(
        await api.post(
            "/v1/prices",
            json={
                "product": product["id"],
                "currency": "USD",
                "unit_amount": 1500,
                "recurring": {"interval": "month"},
            },
        )
    )
    clock = ok(await api.post("/v1/test_clocks", json={"frozen_time": int(T0.timestamp())}))
    email = f"{unique('portal')}@example.com"
    customer = ok(await api.post("/v1/customers", json={"test_clock": clock["id"], "email": email}))
    body = {"customer": customer["id"], **card(INSUFFICIENT_FUNDS_CARD)}
    method = ok(await api.post("/v1/payment_methods", json=body))
    settings = {"invoice_settings": {"default_payment_method": method["id"]}}
    ok(await api.post(f"/v1/customers/{customer['id']}", json=settings))
    items = [{"price": price["id"]}]
    sub = ok(
        await api.post(
            "/v1/subscriptions",
            json={"customer": customer["id"], "items": items, "trial_period_days": 5},
        )
    )
    later = int((T0 + timedelta(days=6)).timestamp())
    ok(await api.post(f"/v1/test_clocks/{clock['id']}/advance", json={"frozen_time": later}))

    async def renewed() -> bool:
        found = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
        return bool(found["status"] == "past_due")

    await eventually(renewed, deadline=30)
    return str(customer["id"]), ok(await api.get(f"/v1/subscriptions/{sub['id']}"))


async def add_card(page: Page, number: str) -> None:
    await page.get_by_label("Card number").fill(number)
    await page.get_by_label("Expiry").fill("12 / 34")
    await page.get_by_label("CVC").fill("123")
    await page.get_by_role("button", name="Save card as default").click()


async def test_a_new_card_in_the_portal_pays_the_open_invoice(
    page: Page, demo_server: DemoServer
) -> None:
    async with demo_server.api() as api:
        customer, sub = await declined_renewal(api)
        invoice = ok(await api.get(f"/v1/invoices/{sub['latest_invoice']}"))
        assert (invoice["status"], invoice["billing_reason"]) == ("open", "subscription_cycle")
        old_default = ok(await api.get(f"/v1/customers/{customer}"))["invoice_settings"][
            "default_payment_method"
        ]
        session = ok(
            await api.post(
                "/v1/billing_portal/sessions",
                json={"customer": customer, "return_url": f"{demo_server.url}/demo/store"},
            )
        )
    await page.goto(session["url"])
    await expect(page.get_by_role("heading", name="Your billing")).to_be_visible()
    listed = page.locator(f"[data-invoice='{invoice['id']}']")
    await expect(listed).to_contain_text("Due")
    await expect(listed).to_contain_text("$15.00")
    await expect(page.locator(f"[data-subscription='{sub['id']}']")).to_contain_text("Past due")
    await screenshot(page, "portal-declined-renewal")
    await assert_accessible(page, "billing portal")

    await add_card(page, SUCCESS_CARD)
    await expect(page.get_by_role("status")).to_have_text(
        "Your card was saved and is now your default payment method."
    )
    new_card = page.locator("[data-payment-method]").filter(has=page.locator(".pill-default"))
    await expect(new_card).to_contain_text("Visa ending in 4242")
    await screenshot(page, "portal-card-saved")
    await assert_accessible(page, "billing portal after a card was saved")
    async with demo_server.api() as api:
        default = ok(await api.get(f"/v1/customers/{customer}"))["invoice_settings"][
            "default_payment_method"
        ]
        assert default not in (None, old_default)
        method = ok(await api.get(f"/v1/payment_methods/{default}"))
        assert (method["card"]["last4"], method["customer"]) == ("4242", customer)

        async def paid() -> bool:
            found = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
            return bool(found["status"] == "paid")

        # The worker retries the customer's open invoices once the default changes
        # (dunning.retry_on_method_update); one worker cycle, well within this.
        await eventually(paid, deadline=30)
        after = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
        payment = ok(await api.get(f"/v1/payments/{after['payment']}"))
        assert (payment["status"], payment["payment_method"]) == ("succeeded", default)
        assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "active"
    await page.reload()
    await expect(listed).to_contain_text("Paid")
    await page.get_by_role("button", name="Cancel at period end: Gold plan").click()
    await expect(page.get_by_role("status")).to_contain_text("will be cancelled at the end")
    await expect(page.locator(f"[data-subscription='{sub['id']}']")).to_contain_text("Cancels on")
    async with demo_server.api() as api:
        canceled = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
        assert (canceled["status"], canceled["cancel_at_period_end"]) == ("active", True)


async def test_a_card_that_needs_3ds_is_authenticated_then_saved(
    page: Page, demo_server: DemoServer
) -> None:
    async with demo_server.api() as api:
        customer = ok(await api.post("/v1/customers", json={"email": "grace@example.com"}))
        session = ok(
            await api.post("/v1/billing_portal/sessions", json={"customer": customer["id"]})
        )
    await page.set_viewport_size({"width": 375, "height": 740})
    await page.goto(session["url"])
    await expect(page.get_by_text("You have no saved cards.")).to_be_visible()
    await add_card(page, THREE_DS_CARD)
    await page.get_by_role("button", name="Approve").click()  # the simulator's 3-D Secure
    await expect(page.get_by_role("status")).to_contain_text("Your card was saved")
    await expect(page.locator("[data-payment-method]")).to_contain_text("Visa ending in 3155")
    await expect(page.locator("[data-payment-method] .pill-default")).to_have_text("Default")
    await screenshot(page, "portal-phone-3ds-saved")


async def test_a_link_opened_in_another_browser_shows_a_clear_page(
    page: Page, demo_server: DemoServer
) -> None:
    async with demo_server.api() as api:
        customer = ok(await api.post("/v1/customers", json={}))
        session = ok(
            await api.post("/v1/billing_portal/sessions", json={"customer": customer["id"]})
        )
    await page.goto(session["url"])
    await expect(page.get_by_role("heading", name="Your billing")).to_be_visible()
    other = await page.context.browser.new_context(base_url=demo_server.url)  # type: ignore[union-attr]
    try:
        stranger = await other.new_page()
        answer = await stranger.goto(session["url"])
        assert answer is not None and answer.status == 403
        await expect(
            stranger.get_by_role("heading", name="This billing link was already opened")
        ).to_be_visible()
        await assert_accessible(stranger, "billing portal opened elsewhere")
    finally:
        await other.close()


async def test_expired_and_unknown_links_show_clear_accessible_pages(
    page: Page, demo_server: DemoServer, demo_pool: asyncpg.Pool
) -> None:
    async with demo_server.api() as api:
        customer = ok(await api.post("/v1/customers", json={}))
        session = ok(
            await api.post(
                "/v1/billing_portal/sessions",
                json={"customer": customer["id"], "return_url": f"{demo_server.url}/demo/store"},
            )
        )
    # The server's clock is the real one: the link's five minutes are made to have passed.
    await demo_pool.execute(
        "UPDATE billing_portal_sessions SET created_at = now() - interval '10 minutes',"
        " expires_at = now() - interval '5 minutes' WHERE id = $1",
        session["id"],
    )
    answer = await page.goto(session["url"])
    assert answer is not None and answer.status == 410
    await expect(
        page.get_by_role("heading", name="This billing session has expired")
    ).to_be_visible()
    await expect(page.get_by_role("link", name="Return to the merchant")).to_have_attribute(
        "href", f"{demo_server.url}/demo/store"
    )
    await assert_accessible(page, "expired billing portal")
    answer = await page.goto("/p/no-such-link")
    assert answer is not None and answer.status == 404
    await expect(page.get_by_role("heading", name="Billing page not found")).to_be_visible()
    await assert_accessible(page, "unknown billing portal link")
