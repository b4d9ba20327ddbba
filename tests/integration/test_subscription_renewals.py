"""Renewals in batches (``subscriptions/renewals.py``, ``renewal_charges.py``), over HTTP
against the real worker on a test clock: many subscriptions due at the same moment are each
invoiced once, numbered without gaps and charged once through the payment service with the
invoice's key; a crash after the charges and before the invoices are marked paid charges
nothing twice when the schedule collects them again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from paygrid.dependencies import Deps
from paygrid.services.billing.subscriptions import renewal_charges, renewals
from paygrid.services.billing.subscriptions.schedule import STEP
from tests.conftest import Api
from tests.integration.test_subscriptions import (
    T0,
    clock_customer,
    invoices_of,
    monthly_price,
    move,
    subscribe,
)
from tests.integration.test_test_clocks import billing_worker

SUBSCRIPTIONS = 7


async def renewal_payments(pool: asyncpg.Pool, invoice_ids: Sequence[str]) -> list[Any]:
    """Every payment made for the invoices (by the invoice's metadata), with its key."""
    return list(
        await pool.fetch(
            "SELECT id, idempotency_key, metadata->>'invoice' AS invoice, status FROM payments"
            " WHERE metadata->>'invoice' = ANY($1::text[]) ORDER BY id",
            list(invoice_ids),
        )
    )


async def test_many_renewals_due_at_once_are_each_invoiced_numbered_and_charged_once(
    api: Api, deps: Deps, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(renewals, "BATCH_SIZE", 3)  # several batches, one partly filled
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    subs = [await subscribe(api, customer, price) for _ in range(SUBSCRIPTIONS)]
    async with billing_worker(deps, STEP):
        await move(api, clock, T0 + timedelta(days=32))
    invoices = await invoices_of(api, customer)
    renewed = [i for i in invoices if i["billing_reason"] == "subscription_cycle"]
    assert sorted(i["subscription"] for i in renewed) == sorted(s["id"] for s in subs)
    assert all((i["status"], i["amount_paid"]) == ("paid", 1500) for i in renewed)
    # Gapless and consecutive across the first invoices and the batch's.
    numbers = sorted(int(i["number"].rsplit("-", 1)[1]) for i in invoices)
    assert numbers == list(range(1, 2 * SUBSCRIPTIONS + 1))
    payments = await renewal_payments(pool, [i["id"] for i in renewed])
    assert sorted((p["invoice"], p["idempotency_key"], p["status"]) for p in payments) == sorted(
        (i["id"], f"invoice:{i['id']}:attempt:1", "succeeded") for i in renewed
    )
    for sub in subs:
        after = (await api.get(f"/v1/subscriptions/{sub['id']}")).json()
        latest = next(i for i in renewed if i["subscription"] == sub["id"])
        assert (after["status"], after["latest_invoice"]) == ("active", latest["id"])
        types = [
            r["type"]
            for r in await pool.fetch(
                "SELECT type FROM events WHERE object_id = $1 ORDER BY id", latest["id"]
            )
        ]
        assert types == ["invoice.created", "invoice.finalized", "invoice.paid"]


async def test_a_crash_between_the_charges_and_paid_charges_nothing_twice(
    api: Api, deps: Deps, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    subs = [await subscribe(api, customer, price) for _ in range(3)]
    mark_paid = renewal_charges._mark_paid
    crashes: list[int] = []

    async def crash_once(*args: Any) -> None:
        if not crashes:
            crashes.append(1)
            raise RuntimeError("the worker died after charging")
        await mark_paid(*args)

    monkeypatch.setattr(renewal_charges, "_mark_paid", crash_once)
    target = T0 + timedelta(days=32)
    async with billing_worker(deps, STEP):
        await move(api, clock, target)  # the job failed once, and was run again
        assert crashes == [1]
        # The schedule's next pass over the clock's subscriptions (its sweep) collects the
        # invoices left open: the same keys find the payments made, nothing is charged again.
        await STEP.run_until(deps, clock, target)
    renewed = [
        i for i in await invoices_of(api, customer) if i["billing_reason"] == "subscription_cycle"
    ]
    assert len(renewed) == len(subs)
    assert all(i["status"] == "paid" for i in renewed)
    payments = await renewal_payments(pool, [i["id"] for i in renewed])
    # One payment per invoice, the one the crashed pass made, resumed by its key.
    assert sorted(p["invoice"] for p in payments) == sorted(i["id"] for i in renewed)
    assert {i["payment"] for i in renewed} == {p["id"] for p in payments}
    attempts = await pool.fetchval(
        "SELECT count(*) FROM payment_attempts WHERE payment_id = ANY($1::text[])",
        [p["id"] for p in payments],
    )
    assert attempts == len(subs)
