"""The hosted checkout in Chromium: the demo store opens it with checkout.js in a modal
iframe, the customer pays (declined, 3-D Secure, succeeded), and the API and a webhook agree
with what the page said. Also the page itself at a phone's width."""

from __future__ import annotations

import re

from playwright.async_api import FrameLocator, Page, expect

from tests.browser.conftest import DemoServer, screenshot, webhook_event
from tests.conftest import SUCCESS_CARD
from tests.integration.payment_builders import THREE_DS_CARD
from tests.integration.webhook_receiver import Receiver

DECLINED_CARD = "4000000000000002"
PAID = re.compile(r"Thank you! Your payment (pay_\w+) went through\.")


async def open_checkout(page: Page) -> FrameLocator:
    """The demo store, its Buy button, and the checkout.js modal that opens."""
    await page.goto("/demo/store")
    await page.get_by_role("button", name="Buy now").click()
    await expect(page.get_by_role("dialog", name="Checkout")).to_be_visible()
    checkout = page.frame_locator("iframe[title='Checkout']")
    await expect(checkout.get_by_label("Card number")).to_be_visible()
    return checkout


async def pay_with(checkout: FrameLocator, number: str) -> None:
    await checkout.get_by_label("Card number").fill(number)
    await checkout.get_by_label("Expiry").fill("12 / 34")
    await checkout.get_by_label("CVC").fill("123")
    await checkout.get_by_role("button", name="Pay $20.00").click()


async def paid_payment_id(page: Page) -> str:
    """The payment the store's thank-you message names, once checkout.js reported success
    and closed the modal."""
    message = page.get_by_role("status")
    await expect(message).to_have_text(PAID)
    await expect(page.get_by_role("dialog", name="Checkout")).to_have_count(0)
    found = PAID.fullmatch(await message.inner_text())
    assert found is not None
    return found.group(1)


async def test_pay_with_the_success_card(
    page: Page, demo_server: DemoServer, webhooks: Receiver
) -> None:
    checkout = await open_checkout(page)
    await screenshot(page, "checkout-modal-open")
    await pay_with(checkout, SUCCESS_CARD)
    payment_id = await paid_payment_id(page)
    await screenshot(page, "checkout-paid")
    paid = await demo_server.get(f"/v1/payments/{payment_id}")
    assert (paid["status"], paid["amount"], paid["currency"]) == ("succeeded", 2000, "USD")
    assert paid["description"] == "1 x paygrid mug"
    card = (await demo_server.get(f"/v1/payment_methods/{paid['payment_method']}"))["card"]
    assert card["last4"] == "4242"
    event = await webhook_event(webhooks, "payment.succeeded", id=payment_id)
    assert event["data"]["object"]["status"] == "succeeded"
    completed = await webhook_event(webhooks, "checkout_session.completed", payment=payment_id)
    assert completed["data"]["object"]["status"] == "complete"


async def test_declined_card_shows_the_error_then_another_card_pays(
    page: Page, demo_server: DemoServer
) -> None:
    checkout = await open_checkout(page)
    await pay_with(checkout, DECLINED_CARD)
    error = checkout.get_by_role("alert").filter(has_text="Your card was declined.")
    await expect(error).to_be_visible()
    await screenshot(page, "checkout-declined")
    await expect(page.get_by_role("status")).to_have_text("")  # the store heard nothing yet
    await pay_with(checkout, SUCCESS_CARD)
    payment_id = await paid_payment_id(page)
    assert (await demo_server.get(f"/v1/payments/{payment_id}"))["status"] == "succeeded"


async def test_a_decline_keeps_what_was_typed_but_the_cvc_and_focuses_the_error(
    page: Page, demo_server: DemoServer
) -> None:
    checkout = await open_checkout(page)
    await pay_with(checkout, DECLINED_CARD)
    error = checkout.get_by_role("alert").filter(has_text="Your card was declined.")
    await expect(error).to_be_visible()
    await expect(error).to_be_focused()
    await expect(checkout.get_by_label("Card number")).to_have_value("4000 0000 0000 0002")
    await expect(checkout.get_by_label("Expiry")).to_have_value("12 / 34")
    await expect(checkout.get_by_label("CVC")).to_have_value("")
    await screenshot(page, "checkout-declined-kept")
    # Only the CVC needs typing again; the same card number then pays with another card.
    await checkout.get_by_label("Card number").fill(SUCCESS_CARD)
    await checkout.get_by_label("CVC").fill("123")
    await checkout.get_by_role("button", name="Pay $20.00").click()
    payment_id = await paid_payment_id(page)
    assert (await demo_server.get(f"/v1/payments/{payment_id}"))["status"] == "succeeded"


async def test_the_hosted_page_keeps_the_fields_on_a_decline_too(
    page: Page, demo_server: DemoServer
) -> None:
    async with demo_server.api() as api:
        created = await api.post(
            "/v1/checkout_sessions",
            json={
                "amount": 2000,
                "currency": "USD",
                "success_url": f"{demo_server.url}/demo/store",
                "cancel_url": f"{demo_server.url}/demo/store",
            },
        )
    assert created.status_code == 200, created.text
    await page.goto(created.json()["url"])
    await page.get_by_label("Card number").fill(DECLINED_CARD)
    await page.get_by_label("Expiry").fill("12 / 34")
    await page.get_by_label("CVC").fill("123")
    await page.get_by_role("button", name="Pay $20.00").click()
    error = page.get_by_role("alert").filter(has_text="Your card was declined.")
    await expect(error).to_be_focused()
    await expect(page.get_by_label("Card number")).to_have_value("4000 0000 0000 0002")
    await expect(page.get_by_label("CVC")).to_have_value("")
    await page.get_by_label("Card number").fill(SUCCESS_CARD)
    await page.get_by_label("CVC").fill("123")
    await page.get_by_role("button", name="Pay $20.00").click()
    await expect(page).to_have_url(re.compile(r"/demo/store\?session_id=cs_"))


async def test_the_modal_fills_its_box_with_no_grey_strip(
    page: Page, demo_server: DemoServer
) -> None:
    for width in (1280, 375):
        await page.set_viewport_size({"width": width, "height": 800})
        await open_checkout(page)
        frame = page.frame_locator("iframe[title='Checkout']")
        layout = await frame.locator("main").evaluate(
            """main => ({
                left: main.getBoundingClientRect().left,
                right: main.getBoundingClientRect().right,
                bottom: main.getBoundingClientRect().bottom,
                width: document.documentElement.clientWidth,
                height: document.documentElement.clientHeight,
                page: getComputedStyle(document.body).backgroundColor,
                card: getComputedStyle(main).backgroundColor,
            })"""
        )
        assert layout["left"] == 0 and layout["right"] == layout["width"], layout
        assert layout["bottom"] >= layout["height"] or layout["page"] == layout["card"], layout
        await screenshot(page, f"checkout-modal-{width}px")


async def test_the_modal_traps_focus_closes_on_escape_and_returns_focus(
    page: Page, demo_server: DemoServer
) -> None:
    checkout = await open_checkout(page)
    inside = "() => !!document.activeElement.closest('[data-paygrid-checkout]')"
    for key in ["Tab"] * 12 + ["Shift+Tab"] * 12:
        await page.keyboard.press(key)
        assert await page.evaluate(inside), f"focus left the checkout after {key}"
    await checkout.get_by_label("Card number").click()
    await page.keyboard.type("4242")
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog", name="Checkout")).to_have_count(0)
    await expect(page.get_by_role("button", name="Buy now")).to_be_focused()
    await expect(page.get_by_role("status")).to_have_text("Checkout canceled; nothing was charged.")
    # The close button, pressed from the keyboard, also gives focus back.
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("dialog", name="Checkout")).to_be_visible()
    await expect(page.get_by_role("button", name="Close")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("dialog", name="Checkout")).to_have_count(0)
    await expect(page.get_by_role("button", name="Buy now")).to_be_focused()


async def test_three_d_secure_card_is_approved_on_the_simulator_page(
    page: Page, demo_server: DemoServer
) -> None:
    checkout = await open_checkout(page)
    await pay_with(checkout, THREE_DS_CARD)
    approve = checkout.get_by_role("button", name="Approve")
    await expect(approve).to_be_visible()
    await expect(checkout.get_by_text("Test card ending in 3155")).to_be_visible()
    await screenshot(page, "checkout-3ds")
    await approve.click()
    payment_id = await paid_payment_id(page)
    paid = await demo_server.get(f"/v1/payments/{payment_id}")
    assert paid["status"] == "succeeded"
    assert paid["next_action"] is None


async def test_checkout_page_fits_a_phone(page: Page, demo_server: DemoServer) -> None:
    async with demo_server.api() as api:
        created = await api.post(
            "/v1/checkout_sessions",
            json={
                "amount": 123456,
                "currency": "NGN",
                "description": "A long description that must wrap rather than push the page "
                "sideways: 3 x handmade ceramic mugs, glazed, with a gift box",
                "success_url": f"{demo_server.url}/demo/store",
                "cancel_url": f"{demo_server.url}/demo/store",
            },
        )
    assert created.status_code == 200, created.text
    await page.set_viewport_size({"width": 375, "height": 740})
    await page.goto(created.json()["url"])
    controls = [
        page.get_by_label("Card number"),
        page.get_by_label("Expiry"),
        page.get_by_label("CVC"),
        page.get_by_role("button", name=re.compile(r"^Pay ")),
        page.get_by_role("link", name=re.compile(r"^Cancel")),
    ]
    for control in controls:
        await expect(control).to_be_visible()
        box = await control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways: {width} px wide"
    await screenshot(page, "checkout-375px")
