"""The hosted invoice page of an invoice whose off-session payment waits for the customer's
3-D Secure (issue 14 §1, §8): a renewal charged to a card that always asks for it leaves its
payment ``requires_action`` (``invoice.payment_action_required``, with the page's URL).
Paying on the page with that card resumes the waiting payment's challenge (no second
payment); paying with another card cancels the waiting one first; either way the invoice is
paid once and no attempt is left ``pending`` or ``requires_action``. A challenge started on
the page and abandoned expires with the wait (``action_expiry_hours``)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from paygrid.dependencies import Deps
from paygrid.services.billing.retries.jobs import STEP as DUNNING
from paygrid.services.billing.subscriptions.schedule import STEP as RENEWALS
from tests.conftest import SUCCESS_CARD, Api, card
from tests.integration.test_dunning import (
    DAY,
    RENEWAL,
    attempt_payments,
    history,
    save_card,
    set_dunning,
)
from tests.integration.test_hosted_invoices import follow, page_path
from tests.integration.test_subscriptions import clock_customer, monthly_price, move, ok, subscribe
from tests.integration.test_test_clocks import billing_worker, event_types

Json = dict[str, Any]
ALWAYS_3DS_CARD = "4000002760003184"  # every charge asks for 3-D Secure, off-session too


async def waiting_renewal(api: Api, deps: Deps, pool: asyncpg.Pool) -> tuple[str, Json, Json]:
    """A subscription paid with 4242 whose default then becomes 3184, renewed by the worker
    on its test clock: the clock, the renewal invoice (open, waiting for authentication)
    and the subscription."""
    await set_dunning(api, retry_schedule_days=[2, 4], action_expiry_hours=12)
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, RENEWAL - 31 * DAY)
    sub = await subscribe(api, customer, price)
    asking = await save_card(api, customer, ALWAYS_3DS_CARD)
    default = {"invoice_settings": {"default_payment_method": asking}}
    ok(await api.post(f"/v1/customers/{customer}", default))
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + timedelta(hours=1))
    current = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
    invoice = ok(await api.get(f"/v1/invoices/{current['latest_invoice']}"))
    assert (invoice["status"], invoice["next_payment_attempt"]) == ("open", None)
    assert invoice["last_payment_error"]["classification"] == "action"
    assert current["status"] == "past_due"
    waiting = ok(await api.get(f"/v1/payments/{invoice['payment']}"))
    assert (waiting["status"], waiting["off_session"]) == ("requires_action", True)
    types = await event_types(pool, invoice["id"])
    assert "invoice.payment_action_required" in types
    return clock, invoice, current


async def form_token(client: httpx.AsyncClient, invoice: Json) -> str:
    page = await client.get(page_path(invoice))
    assert page.status_code == 200, page.text
    found = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert found is not None
    return found[1]


async def pay_saved(client: httpx.AsyncClient, invoice: Json) -> httpx.Response:
    token = await form_token(client, invoice)
    return await client.post(
        f"{page_path(invoice)}/pay", data={"form_token": token, "method": "saved"}
    )


async def unsettled(pool: asyncpg.Pool, invoice_id: str) -> list[tuple[str, str]]:
    """The invoice's payments, or their authorization attempts, still waiting for anything."""
    rows = await pool.fetch(
        "SELECT p.id, p.status FROM payments p WHERE p.idempotency_key LIKE $1"
        " AND (p.status IN ('requires_action', 'processing', 'requires_confirmation')"
        "  OR EXISTS (SELECT 1 FROM payment_attempts a WHERE a.payment_id = p.id"
        "   AND a.status IN ('pending', 'requires_action', 'unknown')))",
        f"invoice:{invoice_id}:attempt:%",
    )
    return [(str(r["id"]), str(r["status"])) for r in rows]


async def test_the_page_resumes_the_waiting_payments_challenge_and_pays_once(
    api: Api, client: httpx.AsyncClient, deps: Deps, pool: asyncpg.Pool
) -> None:
    _, invoice, sub = await waiting_renewal(api, deps, pool)
    page = await client.get(page_path(invoice))
    assert "Pay $15.00 with Visa ending in 3184" in page.text
    challenge = await pay_saved(client, invoice)
    assert challenge.status_code == 303
    location = urlsplit(challenge.headers["location"]).path
    assert location.startswith("/simulator/authenticate/")
    assert len(await attempt_payments(pool, invoice["id"])) == 1  # no second payment
    decided = await client.post(location, content=b"decision=approve")
    landed = await follow(client, decided)
    assert landed.status_code == 200 and "Paid. Thank you!" in landed.text

    paid = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (paid["status"], paid["payment"]) == ("paid", invoice["payment"])
    assert paid["next_payment_attempt"] is None
    payments = await attempt_payments(pool, invoice["id"])
    assert [(p["id"], p["status"]) for p in payments] == [(invoice["payment"], "succeeded")]
    assert await unsettled(pool, invoice["id"]) == []
    waiting = await pool.fetchval(
        "SELECT action_payment_id FROM invoices WHERE id = $1", invoice["id"]
    )
    assert waiting is None
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "active"
    assert (await event_types(pool, invoice["id"])).count("invoice.paid") == 1


async def test_another_card_on_the_page_cancels_the_waiting_payment_first(
    api: Api, client: httpx.AsyncClient, deps: Deps, pool: asyncpg.Pool
) -> None:
    _, invoice, sub = await waiting_renewal(api, deps, pool)
    token = await form_token(client, invoice)
    method = ok(await api.post("/v1/payment_methods", card(SUCCESS_CARD)))
    answer = await client.post(
        f"{page_path(invoice)}/pay",
        data={"form_token": token, "method": "card", "payment_method": method["id"]},
    )
    landed = await follow(client, answer)
    assert "Paid. Thank you!" in landed.text
    paid = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert paid["status"] == "paid" and paid["payment"] != invoice["payment"]
    payments = {p["id"]: p["status"] for p in await attempt_payments(pool, invoice["id"])}
    assert payments == {invoice["payment"]: "canceled", paid["payment"]: "succeeded"}
    canceled = ok(await api.get(f"/v1/payments/{invoice['payment']}"))
    assert canceled["cancellation_reason"] == "abandoned"
    assert await unsettled(pool, invoice["id"]) == []
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "active"


async def test_a_challenge_abandoned_on_the_page_expires_and_leaves_nothing_pending(
    api: Api, client: httpx.AsyncClient, deps: Deps, pool: asyncpg.Pool
) -> None:
    clock, invoice, _ = await waiting_renewal(api, deps, pool)
    challenge = await pay_saved(client, invoice)
    assert challenge.status_code == 303
    assert "/simulator/authenticate/" in challenge.headers["location"]
    # The customer closes the tab on the challenge. 12 hours later the wait expires.
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + timedelta(hours=14))
    expired = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (expired["status"], expired["attempt_count"]) == ("open", 1)
    assert expired["next_payment_attempt"] == int((RENEWAL + 2 * DAY).timestamp())
    assert await unsettled(pool, invoice["id"]) == []
    payments = await attempt_payments(pool, invoice["id"])
    assert [(p["id"], p["status"]) for p in payments] == [(invoice["payment"], "canceled")]
    outcomes = [r["outcome"] for r in await history(pool, invoice["id"])]
    assert outcomes == ["requires_action", "action_expired"]


async def test_a_refused_resumed_challenge_leaves_nothing_pending_and_can_be_paid_again(
    api: Api, client: httpx.AsyncClient, deps: Deps, pool: asyncpg.Pool
) -> None:
    _, invoice, _ = await waiting_renewal(api, deps, pool)
    challenge = await pay_saved(client, invoice)
    location = urlsplit(challenge.headers["location"]).path
    refused = await follow(client, await client.post(location, content=b"decision=deny"))
    assert refused.status_code == 402 and "card-form" in refused.text
    after = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (after["status"], after["attempt_count"]) == ("open", 1)
    assert await unsettled(pool, invoice["id"]) == []

    # Again with the saved card: nothing waits any more, so a new attempt, on-session.
    challenge = await pay_saved(client, invoice)
    location = urlsplit(challenge.headers["location"]).path
    landed = await follow(client, await client.post(location, content=b"decision=approve"))
    assert "Paid. Thank you!" in landed.text
    paid = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert paid["status"] == "paid" and paid["payment"] != invoice["payment"]
    statuses = sorted(p["status"] for p in await attempt_payments(pool, invoice["id"]))
    assert statuses[-1] == "succeeded" and statuses.count("succeeded") == 1
    assert await unsettled(pool, invoice["id"]) == []
