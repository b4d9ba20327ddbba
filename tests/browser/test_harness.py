"""The harness itself, on pages that need no checkout: a payment made through the API that
needs 3-D Secure is approved on the simulator's page in Chromium, and its webhook goes out."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import DemoServer, screenshot, webhook_event
from tests.conftest import card
from tests.integration.payment_builders import THREE_DS_CARD
from tests.integration.webhook_receiver import Receiver


async def test_api_payment_approved_on_the_simulator_page(
    page: Page, demo_server: DemoServer, webhooks: Receiver
) -> None:
    async with demo_server.api() as api:
        created = await api.post(
            "/v1/payments",
            json={
                "amount": 1250,
                "currency": "USD",
                "confirm": True,
                "payment_method_data": card(THREE_DS_CARD),
            },
        )
        assert created.status_code == 200, created.text
        payment = created.json()
        assert payment["status"] == "requires_action"
        await page.goto(payment["next_action"]["redirect_to_url"]["url"])
        await expect(page.get_by_role("heading", name="Authenticate this payment")).to_be_visible()
        await screenshot(page, "harness-simulator-3ds")
        await page.get_by_role("button", name="Approve").click()
        await expect(page.get_by_role("status")).to_have_text("Payment succeeded")
        after = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert after["status"] == "succeeded"
    await webhook_event(webhooks, "payment.succeeded", id=payment["id"])
