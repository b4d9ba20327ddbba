"""Dunning's gates under the review of issue 14: the schedule's collection never charges an
invoice that already failed (its hard-declined method), concurrent retries of different
invoices on one card respect the card network cap, a waiting payment the provider cannot
cancel stays tracked (never charged around), and a retry it blocks is put off with a
truthful reason without using a step of the schedule."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from paygrid.db import subscriptions as subs_db
from paygrid.dependencies import Deps
from paygrid.domain.errors import PaygridError
from paygrid.services.billing.retries.jobs import STEP as DUNNING
from paygrid.services.billing.retries.retry_invoice import Because, retry_invoice
from paygrid.services.billing.subscriptions import invoicing
from paygrid.services.billing.subscriptions.schedule import STEP as RENEWALS
from tests.conftest import Api
from tests.integration.test_dunning import (
    DAY,
    RENEWAL,
    T0,
    attempt_payments,
    default_of,
    history,
    renewal_invoice,
    script,
    set_dunning,
)
from tests.integration.test_invoice_waiting_payments import _provider
from tests.integration.test_subscriptions import clock_customer, monthly_price, move, ok, subscribe
from tests.integration.test_test_clocks import billing_worker

Json = dict[str, Any]


async def test_a_rerun_of_the_collection_never_charges_a_hard_declined_method(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    await set_dunning(api, on_exhausted="past_due", fallback_to_other_methods=False)
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    # Declined as stolen once; a second charge would go through.
    await script(api, await default_of(api, customer), "stolen_card")
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + timedelta(hours=1))
    invoice = await renewal_invoice(api, sub)
    assert (invoice["status"], invoice["attempt_count"]) == ("open", 1)
    # The schedule's collection again (a pass that listed it before the decline, or a
    # rerun after a crash): dunning owns the invoice now.
    row = await subs_db.get_by_id(pool, sub["id"])
    assert row is not None
    with contextlib.suppress(PaygridError):  # nothing to charge is not an error
        await invoicing.collect(deps, row, invoice["id"])
    after = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (after["status"], after["attempt_count"]) == ("open", 1)
    assert len(await attempt_payments(pool, invoice["id"])) == 1


async def test_concurrent_retries_of_two_invoices_on_one_card_respect_the_cap(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    await set_dunning(
        api,
        retry_schedule_days=[1],
        max_attempts_per_method=3,
        attempt_window_days=30,
        on_exhausted="past_due",
    )
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    first = await subscribe(api, customer, price)
    second = await subscribe(api, customer, price)
    method = await default_of(api, customer)
    await script(api, method, *["insufficient_funds"] * 6)
    async with billing_worker(deps, RENEWALS):  # renewals only: both decline, at once
        await move(api, clock, RENEWAL + DAY + timedelta(hours=1))
    invoices = [await renewal_invoice(api, sub) for sub in (first, second)]
    assert [i["attempt_count"] for i in invoices] == [1, 1]
    # Two payments on the card in the window; the cap lets exactly one more through,
    # even when both retries run at the same moment on their own connections.
    await asyncio.gather(
        *(retry_invoice(deps, i["id"], because=Because.SCHEDULE) for i in invoices)
    )
    payments = [p for i in invoices for p in await attempt_payments(pool, i["id"])]
    assert len(payments) == 3
    lines = [r for i in invoices for r in await history(pool, i["id"])]
    codes = [r["code"] for r in lines]
    assert codes.count("attempt_cap_reached") == 1


async def test_a_waiting_payment_the_provider_cannot_cancel_stays_tracked(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    account = ok(await api.post("/v1/connector_accounts", {"provider": "simulator"}))["id"]
    ok(await api.post("/v1/routing_rules", {"destinations": [{"connector_account": account}]}))
    await set_dunning(api, retry_schedule_days=[2, 4], action_expiry_hours=12)
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    await script(api, await default_of(api, customer), "authentication_required")
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + timedelta(hours=1))
        invoice = await renewal_invoice(api, sub)
        waiting = ok(await api.get(f"/v1/payments/{invoice['payment']}"))
        assert waiting["status"] == "requires_action"
        await _provider(pool, account, failure_mode="unavailable")
        # The wait expires at +12 h; the provider cannot cancel: asked again each hour,
        # three times, then left to the janitor and the invoice back on its schedule.
        await move(api, clock, RENEWAL + timedelta(hours=20))
        columns = await pool.fetchrow(
            "SELECT action_payment_id, action_expires_at, next_payment_attempt, retry_position"
            " FROM invoices WHERE id = $1",
            invoice["id"],
        )
        assert columns is not None
        assert columns["action_payment_id"] == invoice["payment"]  # never forgotten
        # asked again a day after the third failure (12 h, 13 h, 14 h): no clock is held
        assert columns["action_expires_at"] == RENEWAL + timedelta(hours=38)
        assert columns["next_payment_attempt"] is not None
        lines = [(r["outcome"], r["code"]) for r in await history(pool, invoice["id"])]
        assert lines.count(("requires_action", "waiting_payment_cancel_failed")) == 3

        # The retry comes while the provider is still down: nothing is charged, the
        # retry is put off with a truthful reason and no step of the schedule is used.
        position = columns["retry_position"]
        await move(api, clock, RENEWAL + 3 * DAY)
        assert len(await attempt_payments(pool, invoice["id"])) == 1
        lines = [(r["outcome"], r["code"]) for r in await history(pool, invoice["id"])]
        assert ("skipped", "waiting_payment_unresolved") in lines
        assert ("skipped", "payment_method_unusable") not in lines
        after = await pool.fetchrow(
            "SELECT action_payment_id, retry_position FROM invoices WHERE id = $1",
            invoice["id"],
        )
        assert after is not None
        assert after["action_payment_id"] == invoice["payment"]
        assert after["retry_position"] == position

        # The provider is back and the customer completed the payment meanwhile: the
        # next retry settles the invoice with it, no second charge.
        await _provider(pool, account, failure_mode="none")
        deps.connectors.breaker(account).record_success()  # its cooldown's probe answered
        bank_page = waiting["next_action"]["redirect_to_url"]["url"]
        decided = await api.http.post(urlsplit(bank_page).path, data={"decision": "approve"})
        assert decided.status_code in (200, 303), decided.text
        await move(api, clock, RENEWAL + 4 * DAY)
    paid = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (paid["status"], paid["payment"]) == ("paid", invoice["payment"])
    payments = await attempt_payments(pool, invoice["id"])
    assert [(p["id"], p["status"]) for p in payments] == [(invoice["payment"], "succeeded")]
