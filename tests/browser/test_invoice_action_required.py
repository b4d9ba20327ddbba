"""An off-session renewal that needs 3-D Secure, end to end in Chromium (issue 14 §8): a
subscription on a test clock whose default card (4000002760003184) asks for 3-D Secure on
every charge renews in the server's own worker; the renewal's payment waits for the
customer (``invoice.payment_action_required`` with ``hosted_invoice_url``, and the
``action_required`` email recorded: the browser tests' server has no SMTP server). The
customer opens the hosted page, which resumes that payment's challenge: approved, the
invoice is paid by it, once, and the subscription is ``active``; abandoned, the wait
expires on the clock and no payment of the invoice is left pending. (The renewal is charged
when the clock crosses the period end, or after the merchant's ``finalize_after_seconds``.)"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import DemoServer, screenshot, unique
from tests.conftest import SUCCESS_CARD, card
from tests.integration.worker_harness import eventually

Json = dict[str, Any]
ALWAYS_3DS_CARD = "4000002760003184"  # every charge asks for 3-D Secure, off-session too
T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
RENEWAL = T0 + timedelta(days=31)
EXPIRY_HOURS = 24  # action_expiry_hours while these tests run
# The first retry after the wait expires: later than the moments the tests move to.
SCHEDULE = [4, 7]


async def call(demo_server: DemoServer, method: str, path: str, body: Json | None = None) -> Json:
    async with demo_server.api() as api:
        response = await api.request(method, path, json=body)
    assert response.status_code == 200, response.text
    found: Json = response.json()
    return found


@pytest.fixture
async def dunning(demo_server: DemoServer) -> AsyncIterator[Json]:
    """The demo merchant's dunning settings for these tests, restored afterwards (every
    browser test shares the merchant)."""
    before = (await call(demo_server, "GET", "/v1/billing_settings"))["dunning"]
    changes = {"retry_schedule_days": SCHEDULE, "action_expiry_hours": EXPIRY_HOURS}
    settings = await call(demo_server, "POST", "/v1/billing_settings", {"dunning": changes})
    yield settings["dunning"]
    await call(demo_server, "POST", "/v1/billing_settings", {"dunning": before})


async def move_clock(demo_server: DemoServer, clock: str, to: datetime) -> None:
    """Advance the test clock; the server's worker runs what falls due on the way."""
    await call(
        demo_server,
        "POST",
        f"/v1/test_clocks/{clock}/advance",
        {"frozen_time": int(to.timestamp())},
    )

    async def ready() -> bool:
        found = await call(demo_server, "GET", f"/v1/test_clocks/{clock}")
        return bool(found["status"] == "ready")

    await eventually(ready, deadline=30)


async def waiting_renewal(demo_server: DemoServer) -> tuple[str, Json, Json]:
    """A monthly subscription paid with 4242, whose default then becomes 3184, renewed on
    its clock: the clock, the renewal invoice (its payment waiting for the customer) and
    the subscription."""
    clock = await call(demo_server, "POST", "/v1/test_clocks", {"frozen_time": int(T0.timestamp())})
    email = f"{unique('ada')}@example.com"
    customer = (
        await call(
            demo_server, "POST", "/v1/customers", {"email": email, "test_clock": clock["id"]}
        )
    )["id"]
    for number in (SUCCESS_CARD, ALWAYS_3DS_CARD):
        method = await call(
            demo_server, "POST", "/v1/payment_methods", {"customer": customer, **card(number)}
        )
        default = {"invoice_settings": {"default_payment_method": method["id"]}}
        await call(demo_server, "POST", f"/v1/customers/{customer}", default)
        if number == SUCCESS_CARD:
            product = await call(demo_server, "POST", "/v1/products", {"name": "Gold plan"})
            price = await call(
                demo_server,
                "POST",
                "/v1/prices",
                {
                    "product": product["id"],
                    "currency": "USD",
                    "unit_amount": 1500,
                    "recurring": {"interval": "month"},
                },
            )
            body = {"customer": customer, "items": [{"price": price["id"]}]}
            sub = await call(demo_server, "POST", "/v1/subscriptions", body)
            assert sub["status"] == "active"
    await move_clock(demo_server, clock["id"], RENEWAL + timedelta(hours=1))
    sub = await call(demo_server, "GET", f"/v1/subscriptions/{sub['id']}")
    invoice = await call(demo_server, "GET", f"/v1/invoices/{sub['latest_invoice']}")
    assert (invoice["status"], invoice["billing_reason"]) == ("open", "subscription_cycle")
    assert invoice["last_payment_error"]["code"] == "authentication_required"
    assert invoice["next_payment_attempt"] is None  # waiting for the customer
    assert sub["status"] == "past_due"
    waiting = await call(demo_server, "GET", f"/v1/payments/{invoice['payment']}")
    assert (waiting["status"], waiting["off_session"]) == ("requires_action", True)
    return clock["id"], invoice, sub


async def action_required_event(demo_server: DemoServer, invoice_id: str) -> Json:
    path = "/v1/events?type=invoice.payment_action_required&limit=100"
    events = (await call(demo_server, "GET", path))["data"]
    found = [e for e in events if e["data"]["object"]["id"] == invoice_id]
    assert len(found) == 1, events
    event: Json = found[0]
    return event


async def action_required_email(pool: asyncpg.Pool, invoice_id: str) -> asyncpg.Record:
    """The ``action_required`` email of the invoice, once the outbox relay's job made it."""
    query = "SELECT * FROM emails WHERE kind = 'action_required' AND object_id = $1"

    async def recorded() -> bool:
        return await pool.fetchrow(query, invoice_id) is not None

    await eventually(recorded, deadline=15)
    rows = await pool.fetch(query, invoice_id)
    assert len(rows) == 1
    return rows[0]


async def unsettled(pool: asyncpg.Pool, invoice_id: str) -> list[tuple[str, str]]:
    """The invoice's payments that, or whose authorization attempts, still wait."""
    rows = await pool.fetch(
        "SELECT p.id, p.status FROM payments p WHERE p.idempotency_key LIKE $1"
        " AND (p.status IN ('requires_action', 'processing', 'requires_confirmation')"
        "  OR EXISTS (SELECT 1 FROM payment_attempts a WHERE a.payment_id = p.id"
        "   AND a.status IN ('pending', 'requires_action', 'unknown')))",
        f"invoice:{invoice_id}:attempt:%",
    )
    return [(str(r["id"]), str(r["status"])) for r in rows]


async def invoice_payments(pool: asyncpg.Pool, invoice_id: str) -> list[tuple[str, str]]:
    rows = await pool.fetch(
        "SELECT id, status FROM payments WHERE idempotency_key LIKE $1 ORDER BY created_at, id",
        f"invoice:{invoice_id}:attempt:%",
    )
    return [(str(r["id"]), str(r["status"])) for r in rows]


async def start_challenge(page: Page, invoice: Json) -> None:
    """Open the hosted page and pay with the saved card: the simulator's challenge."""
    await page.goto(urlsplit(invoice["hosted_invoice_url"]).path)
    await expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^\$15\.00"))
    await page.get_by_role("button", name=re.compile(r"Pay \$15\.00 with .*3184")).click()
    await expect(page.get_by_role("button", name="Approve")).to_be_visible()


async def test_3ds_required_off_session_is_completed_on_the_hosted_page(
    page: Page, demo_server: DemoServer, demo_pool: asyncpg.Pool, dunning: Json
) -> None:
    _, invoice, sub = await waiting_renewal(demo_server)
    event = await action_required_event(demo_server, invoice["id"])
    assert event["data"]["object"]["hosted_invoice_url"] == invoice["hosted_invoice_url"]
    email = await action_required_email(demo_pool, invoice["id"])
    assert email["status"] == "recorded"  # no PAYGRID_SMTP_URL in the browser tests' server
    assert invoice["hosted_invoice_url"] in email["text_body"]

    await start_challenge(page, invoice)
    await screenshot(page, "hosted-invoice-action-required-3ds")
    # The page resumed the waiting payment's challenge: no second payment was made.
    assert await invoice_payments(demo_pool, invoice["id"]) == [
        (invoice["payment"], "requires_action")
    ]
    await page.get_by_role("button", name="Approve").click()
    await expect(page).to_have_url(re.compile(r"/i/[\w-]+$"))
    await expect(page.get_by_role("status")).to_have_text("Paid. Thank you!")

    paid = await call(demo_server, "GET", f"/v1/invoices/{invoice['id']}")
    assert (paid["status"], paid["amount_paid"], paid["payment"]) == (
        "paid",
        1500,
        invoice["payment"],
    )
    assert await invoice_payments(demo_pool, invoice["id"]) == [(invoice["payment"], "succeeded")]
    assert await unsettled(demo_pool, invoice["id"]) == []
    assert (await call(demo_server, "GET", f"/v1/subscriptions/{sub['id']}"))["status"] == "active"


async def test_an_abandoned_challenge_expires_and_leaves_no_pending_attempt(
    page: Page, demo_server: DemoServer, demo_pool: asyncpg.Pool, dunning: Json
) -> None:
    clock, invoice, _ = await waiting_renewal(demo_server)
    await start_challenge(page, invoice)
    await page.goto("about:blank")  # the customer gives up on the challenge
    waiting = await call(demo_server, "GET", f"/v1/payments/{invoice['payment']}")
    assert waiting["status"] == "requires_action"
    failed_at = datetime.fromtimestamp(waiting["created"], UTC)  # the renewal's charge

    # Past the wait, before the schedule's first retry.
    await move_clock(demo_server, clock, failed_at + timedelta(hours=EXPIRY_HOURS + 1))
    expired = await call(demo_server, "GET", f"/v1/invoices/{invoice['id']}")
    assert (expired["status"], expired["attempt_count"]) == ("open", 1)
    retry_at = failed_at + timedelta(days=SCHEDULE[0])
    assert expired["next_payment_attempt"] == int(retry_at.timestamp())
    canceled = await call(demo_server, "GET", f"/v1/payments/{invoice['payment']}")
    assert (canceled["status"], canceled["cancellation_reason"]) == ("canceled", "abandoned")
    assert await invoice_payments(demo_pool, invoice["id"]) == [(invoice["payment"], "canceled")]
    assert await unsettled(demo_pool, invoice["id"]) == []
