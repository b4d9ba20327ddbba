"""A 3-D Secure challenge started on the hosted invoice page with a NEW card (the page's own
on-session attempt) is tracked like dunning's waiting payment: abandoned, it expires after
``action_expiry_hours`` on the customer's clock and the invoice returns to its schedule;
another card on the page cancels it and makes a new attempt with a new key."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import asyncpg
import httpx

from paygrid.dependencies import Deps
from paygrid.services.billing.retries.jobs import STEP as DUNNING
from paygrid.services.billing.subscriptions.schedule import STEP as RENEWALS
from tests.conftest import SUCCESS_CARD, Api, card
from tests.integration.test_dunning import DAY, RENEWAL, attempt_payments, history
from tests.integration.test_hosted_invoice_action import (
    ALWAYS_3DS_CARD,
    form_token,
    unsettled,
    waiting_renewal,
)
from tests.integration.test_hosted_invoices import follow, page_path
from tests.integration.test_subscriptions import move, ok
from tests.integration.test_test_clocks import billing_worker


async def pay_new_card(
    client: httpx.AsyncClient, api: Api, invoice: dict[str, object], number: str
) -> httpx.Response:
    token = await form_token(client, invoice)
    method = ok(await api.post("/v1/payment_methods", card(number)))
    return await client.post(
        f"{page_path(invoice)}/pay",
        data={"form_token": token, "method": "card", "payment_method": method["id"]},
    )


async def test_a_new_cards_challenge_abandoned_on_the_page_expires(
    api: Api, client: httpx.AsyncClient, deps: Deps, pool: asyncpg.Pool
) -> None:
    clock, invoice, _ = await waiting_renewal(api, deps, pool)
    challenge = await pay_new_card(client, api, invoice, ALWAYS_3DS_CARD)
    assert challenge.status_code == 303
    assert "/simulator/authenticate/" in challenge.headers["location"]
    page_payment = await pool.fetchval(
        "SELECT id FROM payments WHERE idempotency_key = $1", f"invoice:{invoice['id']}:attempt:2"
    )
    assert page_payment is not None
    tracked = await pool.fetchval(
        "SELECT action_payment_id FROM invoices WHERE id = $1", invoice["id"]
    )
    assert tracked == page_payment
    # The customer closes the tab; 12 hours (action_expiry_hours) later the wait expires.
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + timedelta(hours=14))
    assert await unsettled(pool, invoice["id"]) == []
    expired = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (expired["status"], expired["attempt_count"]) == ("open", 2)
    assert expired["next_payment_attempt"] is not None  # back on its schedule
    assert expired["next_payment_attempt"] >= int((RENEWAL + 2 * DAY).timestamp())
    statuses = {p["id"]: p["status"] for p in await attempt_payments(pool, invoice["id"])}
    assert statuses == {invoice["payment"]: "canceled", page_payment: "canceled"}
    outcomes = [r["outcome"] for r in await history(pool, invoice["id"])]
    assert outcomes[-1] == "action_expired"


async def test_another_card_after_an_abandoned_challenge_makes_a_new_attempt(
    api: Api, client: httpx.AsyncClient, deps: Deps, pool: asyncpg.Pool
) -> None:
    _, invoice, sub = await waiting_renewal(api, deps, pool)
    first = await pay_new_card(client, api, invoice, ALWAYS_3DS_CARD)
    first_challenge = urlsplit(first.headers["location"]).path
    assert first_challenge.startswith("/simulator/authenticate/")
    # Back on the page with another card: not sent back to the first card's challenge.
    answer = await pay_new_card(client, api, invoice, SUCCESS_CARD)
    assert urlsplit(answer.headers.get("location", "")).path != first_challenge
    landed = await follow(client, answer)
    assert "Paid. Thank you!" in landed.text
    paid = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert paid["status"] == "paid"
    payments = await attempt_payments(pool, invoice["id"])
    statuses = [p["status"] for p in payments]
    assert statuses == ["canceled", "canceled", "succeeded"]
    assert paid["payment"] == payments[-1]["id"]
    abandoned = ok(await api.get(f"/v1/payments/{payments[1]['id']}"))
    assert abandoned["cancellation_reason"] == "abandoned"
    assert await unsettled(pool, invoice["id"]) == []
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "active"
