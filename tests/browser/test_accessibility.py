"""Every page of the hosted checkout and of the dashboard passes axe-core's WCAG 2.1 A and AA
rules at 1280 px and at 375 px wide (see accessibility.py)."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import DemoServer, unique
from tests.browser.test_checkout_flows import DECLINED_CARD, open_checkout, pay_with
from tests.browser.test_dashboard_flows import sign_in
from tests.conftest import card
from tests.integration.payment_builders import THREE_DS_CARD
from tests.integration.webhook_receiver import Receiver


async def checkout_session(demo_server: DemoServer, **fields: Any) -> dict[str, Any]:
    async with demo_server.api() as api:
        created = await api.post(
            "/v1/checkout_sessions",
            json={
                "amount": 4200,
                "currency": "USD",
                "description": "2 x paygrid mug",
                "success_url": f"{demo_server.url}/demo/store",
                "cancel_url": f"{demo_server.url}/demo/store",
                **fields,
            },
        )
    assert created.status_code == 200, created.text
    session: dict[str, Any] = created.json()
    return session


async def test_checkout_pages_are_accessible(page: Page, demo_server: DemoServer) -> None:
    await page.goto("/demo/store")
    await assert_accessible(page, "demo store")
    checkout = await open_checkout(page)
    await assert_accessible(page, "checkout modal")
    await pay_with(checkout, DECLINED_CARD)
    await expect(checkout.get_by_role("alert").filter(has_text="declined")).to_be_visible()
    await assert_accessible(page, "checkout modal, declined")

    session = await checkout_session(demo_server)
    await page.goto(session["url"])
    await assert_accessible(page, "hosted checkout page")
    await page.get_by_role("button", name="Pay $42.00").click()  # empty: every field errs
    await expect(page.get_by_text("Enter your card number.")).to_be_visible()
    await assert_accessible(page, "hosted checkout page, invalid fields")

    await page.goto(f"/checkout/{session['id']}x")
    await assert_accessible(page, "checkout not found")

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
    await page.goto(created.json()["next_action"]["redirect_to_url"]["url"])
    await assert_accessible(page, "simulator 3-D Secure page")


async def test_checkout_done_and_expired_pages_are_accessible(
    page: Page, demo_server: DemoServer
) -> None:
    session = await checkout_session(demo_server)
    async with demo_server.api() as api:
        expired = await api.post(f"/v1/checkout_sessions/{session['id']}/expire")
    assert expired.status_code == 200, expired.text
    await page.goto(session["url"])
    await expect(page.get_by_role("heading", name="This checkout has expired")).to_be_visible()
    await assert_accessible(page, "checkout expired")

    paid = await checkout_session(demo_server)
    await page.goto(paid["url"] + "?embed=1")
    await page.get_by_label("Card number").fill("4242424242424242")
    await page.get_by_label("Expiry").fill("12 / 34")
    await page.get_by_label("CVC").fill("123")
    await page.get_by_role("button", name="Pay $42.00").click()
    await expect(page.get_by_role("status")).to_have_text("Payment complete")
    await assert_accessible(page, "checkout done (embedded)")


async def dashboard_fixtures(demo_server: DemoServer) -> dict[str, str]:
    """A customer with a paid, partly refunded payment, and a connector account: something
    on every list and detail page."""
    async with demo_server.api() as api:
        customer = await api.post(
            "/v1/customers", json={"email": unique("a11y-") + "@example.com", "name": "Ada"}
        )
        assert customer.status_code == 200, customer.text
        payment = await api.post(
            "/v1/payments",
            json={
                "amount": 3000,
                "currency": "EUR",
                "confirm": True,
                "payment_method": "pm_card_visa",
                "customer": customer.json()["id"],
                "description": "Accessibility check",
                "metadata": {"order": "a11y"},
            },
        )
        assert payment.status_code == 200, payment.text
        refund = await api.post(
            "/v1/refunds", json={"payment": payment.json()["id"], "amount": 500}
        )
        assert refund.status_code == 200, refund.text
        accounts = await api.get("/v1/connector_accounts")
        assert accounts.status_code == 200, accounts.text
        if accounts.json()["data"]:
            account = accounts.json()["data"][0]["id"]
        else:
            made = await api.post(
                "/v1/connector_accounts",
                json={"provider": "simulator", "name": "Simulator", "currencies": ["KWD"]},
            )
            assert made.status_code == 200, made.text
            account = made.json()["id"]
        product = await api.post("/v1/products", json={"name": "Accessibility plan"})
        assert product.status_code == 200, product.text
        price = await api.post(
            "/v1/prices",
            json={
                "product": product.json()["id"],
                "currency": "KWD",
                "unit_amount": 1500,
                "recurring": {"interval": "month"},
            },
        )
        assert price.status_code == 200, price.text
        subscription = await _subscription(api, customer.json()["id"], price.json()["id"])
        events = await api.get("/v1/events", params={"limit": 1})
    return {
        "product": product.json()["id"],
        "subscription": subscription["id"],
        "invoice": subscription["latest_invoice"],
        "customer": customer.json()["id"],
        "payment": payment.json()["id"],
        "refund": refund.json()["id"],
        "account": account,
        "event": events.json()["data"][0]["id"],
    }


async def _subscription(api: httpx.AsyncClient, customer: str, price: str) -> dict[str, Any]:
    """A subscription charged to a saved default card: its first invoice is paid."""
    method = await api.post(
        "/v1/payment_methods", json={"customer": customer, **card("4242424242424242")}
    )
    assert method.status_code == 200, method.text
    settings = {"invoice_settings": {"default_payment_method": method.json()["id"]}}
    updated = await api.post(f"/v1/customers/{customer}", json=settings)
    assert updated.status_code == 200, updated.text
    made = await api.post(
        "/v1/subscriptions", json={"customer": customer, "items": [{"price": price}]}
    )
    assert made.status_code == 200, made.text
    subscription: dict[str, Any] = made.json()
    return subscription


async def test_dashboard_pages_are_accessible(
    page: Page, demo_server: DemoServer, webhooks: Receiver
) -> None:
    ids = await dashboard_fixtures(demo_server)
    await page.goto("/dashboard/login")
    await assert_accessible(page, "dashboard login")
    await page.get_by_label("Email").fill(demo_server.dashboard_email)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text("Incorrect email or password.")).to_be_visible()
    await assert_accessible(page, "dashboard login, wrong password")
    await sign_in(page, demo_server.dashboard_email, demo_server.dashboard_password, "admin")
    async with demo_server.api() as api:
        endpoints = (await api.get("/v1/webhook_endpoints")).json()["data"]
    pages = [
        "/dashboard",
        "/dashboard/payments",
        "/dashboard/payments?status=partially_refunded",
        f"/dashboard/payments/{ids['payment']}",
        "/dashboard/refunds",
        f"/dashboard/refunds/{ids['refund']}",
        "/dashboard/customers",
        f"/dashboard/customers/{ids['customer']}",
        "/dashboard/products",
        f"/dashboard/products/{ids['product']}",
        "/dashboard/prices",
        "/dashboard/subscriptions",
        f"/dashboard/subscriptions/{ids['subscription']}",
        "/dashboard/invoices",
        f"/dashboard/invoices/{ids['invoice']}",
        "/dashboard/emails",
        "/dashboard/billing_settings",
        "/dashboard/reports?group_by=day&group_by=status&group_by=connector",
        "/dashboard/reports?timezone=Nowhere/Special",
        "/dashboard/events",
        f"/dashboard/events/{ids['event']}",
        "/dashboard/webhooks",
        f"/dashboard/webhooks/{endpoints[0]['id']}",
        "/dashboard/developers/api_keys",
        "/dashboard/developers/connector_accounts",
        f"/dashboard/developers/connector_accounts/{ids['account']}",
        "/dashboard/audit",
        "/dashboard/payments/pay_does_not_exist",
    ]
    for path in pages:
        await page.goto(path)
        await assert_accessible(page, path)
