"""The merchant dashboard in Chromium: the demo admin finds a payment and refunds part of it
(the refund and its audit entry show), an operator cannot create API keys and a viewer
cannot refund, in the page and at the server."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from playwright.async_api import Page, expect

from paygrid.services.dashboard_users import create_user, find_user
from tests.browser.conftest import DemoServer, screenshot, unique

PASSWORD = "correct horse battery staple"
REFUSED = re.compile(r"Your role \((operator|viewer)\) does not allow this")


async def sign_in(page: Page, email: str, password: str, role: str) -> None:
    await page.goto("/dashboard")
    await expect(page).to_have_url(re.compile(r"/dashboard/login"))
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text(f"{email} ({role})")).to_be_visible()


async def new_user(pool: asyncpg.Pool, demo_server: DemoServer, role: str) -> str:
    """A dashboard user of the demo merchant (what ``paygrid users create`` does; the CLI
    itself is tested in tests/integration/test_dashboard.py, and takes seconds to start)."""
    email = unique(f"{role}-") + "@example.com"
    await create_user(
        pool, merchant_id=demo_server.merchant_id, email=email, role=role, password=PASSWORD
    )
    return email


async def api_payment(demo_server: DemoServer) -> dict[str, Any]:
    """A succeeded card payment with an email no other payment has, to search for."""
    async with demo_server.api() as api:
        created = await api.post(
            "/v1/payments",
            json={
                "amount": 2500,
                "currency": "USD",
                "confirm": True,
                "payment_method": "pm_card_visa",
                "receipt_email": unique("buyer-") + "@example.com",
            },
        )
    assert created.status_code == 200, created.text
    payment: dict[str, Any] = created.json()
    assert payment["status"] == "succeeded"
    return payment


async def csrf_token(page: Page) -> str:
    """The signed-in session's CSRF token, as every dashboard form carries it."""
    token = await page.locator(
        "form[action='/dashboard/logout'] input[name=csrf_token]"
    ).get_attribute("value")
    assert token
    return token


async def test_admin_finds_a_payment_refunds_part_and_sees_the_audit_entry(
    page: Page, demo_server: DemoServer, demo_pool: asyncpg.Pool
) -> None:
    payment = await api_payment(demo_server)
    await sign_in(page, demo_server.dashboard_email, demo_server.dashboard_password, "admin")
    await screenshot(page, "dashboard-overview")

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Payments").click()
    await page.get_by_role("searchbox", name="Search").fill(payment["receipt_email"])
    await page.get_by_role("button", name="Search").click()
    results = page.get_by_role("table", name="Payments, newest first")
    await expect(results.get_by_role("row")).to_have_count(2)  # the header and one payment
    await screenshot(page, "dashboard-search")
    await results.get_by_role("link", name=payment["id"]).click()
    await expect(page.get_by_role("heading", name="Payment 25.00 USD")).to_be_visible()

    await page.get_by_label("Refund amount (USD)").fill("4.00")
    await page.get_by_label("Reason").select_option("requested_by_customer")
    refund_button = page.get_by_role("button", name="Refund", exact=True)
    confirm = page.get_by_label("I confirm this refund")
    await refund_button.click()  # not confirmed yet: the browser does not send the form
    assert await confirm.evaluate("box => box.validity.valueMissing")
    await expect(page.get_by_role("table", name="Refunds of this payment")).to_contain_text(
        "No refunds."
    )
    await confirm.check()
    await screenshot(page, "dashboard-refund-form")
    await refund_button.click()
    await expect(page.get_by_role("status")).to_have_text("Refund created.")
    refunds = page.get_by_role("table", name="Refunds of this payment")
    await expect(refunds.get_by_role("row")).to_have_count(2)
    await expect(refunds).to_contain_text("4.00 USD")
    await screenshot(page, "dashboard-refunded")
    refund_id = await refunds.get_by_role("link").inner_text()

    refund = await demo_server.get(f"/v1/refunds/{refund_id}")
    assert (refund["payment"], refund["amount"], refund["status"]) == (
        payment["id"],
        400,
        "succeeded",
    )
    assert refund["reason"] == "requested_by_customer"
    after = await demo_server.get(f"/v1/payments/{payment['id']}")
    assert after["amount_refunded"] == 400

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    await page.get_by_label("Object ID").fill(refund_id)
    await page.get_by_role("button", name="Filter").click()
    entries = page.get_by_role("table", name="Changes, newest first")
    created = entries.get_by_role("row").filter(has_text="refund.created")
    await expect(created).to_have_count(1)
    admin = await find_user(demo_pool, demo_server.dashboard_email)
    assert admin is not None
    await expect(created).to_contain_text(f"dashboard:{admin.id}")
    await screenshot(page, "dashboard-audit")


async def test_an_operator_cannot_create_api_keys(
    page: Page, demo_server: DemoServer, demo_pool: asyncpg.Pool
) -> None:
    email = await new_user(demo_pool, demo_server, "operator")
    await sign_in(page, email, PASSWORD, "operator")
    main_nav = page.get_by_role("navigation", name="Main")
    await expect(main_nav.get_by_role("link", name="Payments")).to_be_visible()
    await expect(main_nav.get_by_role("link", name="Developers")).to_have_count(0)
    await page.goto("/dashboard/developers/api_keys")
    await expect(page.get_by_text(REFUSED)).to_be_visible()
    await screenshot(page, "dashboard-operator-refused")
    # Not only hidden: the server refuses the form even when it is sent with a valid token.
    sent = await page.request.post(
        "/dashboard/developers/api_keys",
        form={"csrf_token": await csrf_token(page), "name": "sneaky", "role": "admin"},
    )
    assert sent.status == 403
    refusal = await sent.text()
    assert REFUSED.search(refusal) and "sk_test_" not in refusal
    made = "SELECT count(*) FROM api_keys WHERE merchant_id = $1 AND name = 'sneaky'"
    assert await demo_pool.fetchval(made, demo_server.merchant_id) == 0


async def test_a_viewer_cannot_refund(
    page: Page, demo_server: DemoServer, demo_pool: asyncpg.Pool
) -> None:
    payment = await api_payment(demo_server)
    email = await new_user(demo_pool, demo_server, "viewer")
    await sign_in(page, email, PASSWORD, "viewer")
    await page.goto(f"/dashboard/payments/{payment['id']}")
    await expect(page.get_by_text("Your role (viewer) cannot refund payments.")).to_be_visible()
    await expect(page.get_by_role("button", name="Refund", exact=True)).to_be_disabled()
    await expect(page.get_by_label("Refund amount (USD)")).to_be_disabled()
    await screenshot(page, "dashboard-viewer-payment")
    sent = await page.request.post(
        f"/dashboard/payments/{payment['id']}/refund",
        form={"csrf_token": await csrf_token(page), "amount": "1.00", "confirm": "yes"},
    )
    assert sent.status == 403
    assert REFUSED.search(await sent.text())
    after = await demo_server.get(f"/v1/payments/{payment['id']}")
    assert after["amount_refunded"] == 0


async def test_payment_views_show_the_card_refunds_and_refund_states(
    page: Page, demo_server: DemoServer
) -> None:
    email = unique("ada-") + "@example.com"
    async with demo_server.api() as api:
        customer = (await api.post("/v1/customers", json={"email": email})).json()
        created = await api.post(
            "/v1/payments",
            json={
                "amount": 5000,
                "currency": "GBP",
                "confirm": True,
                "payment_method": "pm_card_mastercard",
                "customer": customer["id"],
                "description": "A teapot",
                "metadata": {"order_number": unique("o-")},
            },
        )
        assert created.status_code == 200, created.text
        payment = created.json()
        refunded = await api.post("/v1/refunds", json={"payment": payment["id"], "amount": 1250})
        assert refunded.status_code == 200, refunded.text
        method = (await api.get(f"/v1/payment_methods/{payment['payment_method']}")).json()
    await sign_in(page, demo_server.dashboard_email, demo_server.dashboard_password, "admin")

    # The overview leads with today, one row per currency, in that currency's units.
    await expect(page.get_by_role("heading", level=2).first).to_have_text("Today")
    today = page.get_by_role("table", name="Today per currency")
    gbp = today.get_by_role("row").filter(has=page.get_by_role("rowheader", name="GBP"))
    await expect(gbp).to_contain_text("50.00 GBP")
    await expect(gbp).to_contain_text("12.50 GBP")
    await screenshot(page, "dashboard-overview-today")

    # The status filter knows refund states, by their names for people.
    await page.goto("/dashboard/payments")
    await page.get_by_label("Status").select_option(label="Partially refunded")
    await page.get_by_label("Currency").select_option("GBP")
    await page.get_by_role("button", name="Search").click()
    results = page.get_by_role("table", name="Payments, newest first")
    row = results.get_by_role("row").filter(has_text=payment["id"])
    await expect(row).to_contain_text("Partially refunded")
    await expect(results).not_to_contain_text("partially_refunded")
    await screenshot(page, "dashboard-filter-partially-refunded")

    await row.get_by_role("link", name=payment["id"]).click()
    facts = page.locator("dl.facts")
    expiry = f"{method['card']['exp_month']:02d}/{method['card']['exp_year']}"
    await expect(facts).to_contain_text(f"Mastercard •••• 4444, expires {expiry}")
    await expect(facts).to_contain_text("A teapot")
    await expect(facts).to_contain_text("12.50 GBP")
    await expect(facts).to_contain_text("Partially refunded")
    metadata = page.get_by_role("table", name="Metadata")
    await expect(metadata).to_contain_text(payment["metadata"]["order_number"])
    refunds = page.get_by_role("table", name="Refunds of this payment")
    await expect(refunds).to_contain_text("Succeeded")

    # Refund the rest here: the payment is then Refunded, and the filter finds it.
    await page.get_by_label("I confirm this refund").check()
    await page.get_by_role("button", name="Refund", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("Refund created.")
    await expect(facts).to_contain_text("50.00 GBP")
    await expect(page.locator("dl.facts .badge")).to_have_text("Refunded")
    await expect(refunds.get_by_role("row")).to_have_count(3)
    await screenshot(page, "dashboard-payment-refunded")
    await page.goto("/dashboard/payments?status=refunded&currency=GBP")
    await expect(page.get_by_role("link", name=payment["id"])).to_be_visible()

    await page.goto(f"/dashboard/payments/{payment['id']}")
    await page.locator("dl.facts").get_by_role("link", name=email).click()
    await expect(page).to_have_url(re.compile(f"/dashboard/customers/{customer['id']}$"))
