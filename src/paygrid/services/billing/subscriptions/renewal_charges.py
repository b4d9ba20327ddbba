"""Charging a batch of renewal invoices (``renewals``), after the transaction that made
and finalized them: what ``invoicing.collect`` does for one invoice, for many at once.

Each charge goes through the payment service (``invoice_payments.attempt_payment``, the
same call ``/pay`` makes) with the key of the invoice and attempt, ``CHARGES_AT_ONCE`` at a
time: one payment waits on its provider, not on the others. The payments that succeeded
mark their invoices ``paid`` together in one transaction (and a subscription whose latest
invoice it is becomes ``active``, as ``/pay`` does). Anything else (a decline, a card that
needs its customer, no method) takes ``/pay``'s own path for that invoice. A crash between
a charge and its invoice's ``paid`` leaves the invoice ``open`` and never attempted: the
schedule's sweep charges it again with the same key, which finds the payment made and
charges nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Final

import structlog

from paygrid.clock import FrozenClock
from paygrid.db import events as events_db
from paygrid.db import invoices as invoices_db
from paygrid.db import renewals as renewals_db
from paygrid.db.events import NewEventOf
from paygrid.db.invoices import InvoiceLineRow, InvoiceRow
from paygrid.db.renewals import MethodOwner, PayerFacts, Payment
from paygrid.db.subscriptions import SubscriptionRow
from paygrid.dependencies import Deps
from paygrid.domain import invoices as invoices_domain
from paygrid.domain import subscriptions as domain
from paygrid.domain.errors import PaygridError
from paygrid.domain.events import EventType
from paygrid.domain.invoices import CollectionMethod, InvoiceAction, InvoiceStatus
from paygrid.domain.payments import PaymentStatus
from paygrid.domain.subscriptions import SubscriptionAction, SubscriptionStatus
from paygrid.schemas.invoices import Invoice
from paygrid.services.billing import invoice_outcomes, invoice_payments
from paygrid.services.billing.subscriptions import invoicing
from paygrid.services.billing.subscriptions import views as subscription_views

log = structlog.get_logger("paygrid.billing")

# Payments in flight at once (each holds a pooled connection only while it writes).
CHARGES_AT_ONCE: Final = 16


async def collect(
    deps: Deps, subs: dict[str, SubscriptionRow], opened: Sequence[InvoiceRow]
) -> None:
    """Charge the ``open`` invoices of ``subs`` (those collected automatically)."""
    due = [
        row
        for row in opened
        if row.collection_method is CollectionMethod.CHARGE_AUTOMATICALLY and row.auto_advance
    ]
    if not due:
        return
    payers = await renewals_db.payer_facts(deps.pool, list({row.customer_id for row in due}))
    methods = {row.id: _method(row, payers.get(row.customer_id)) for row in due}
    owners = await renewals_db.method_owners(
        deps.pool, [m for m in set(methods.values()) if m is not None]
    )
    # Without a method to charge, ``/pay``'s own path (it takes its payment lock itself).
    direct = [row for row in due if row.amount_remaining == 0 or methods[row.id] is not None]
    async with deps.pool.acquire() as holder, holder.transaction():
        # The invoices' payment locks, as ``/pay`` holds its one: a ``/void`` of one of
        # them waits until its charge is over and its invoice paid (or not).
        await renewals_db.hold_payment_locks(holder, [row.id for row in direct])
        await _charge_all(deps, subs, direct, payers, methods, owners)
    for row in due:
        if row.amount_remaining != 0 and methods[row.id] is None:
            with contextlib.suppress(PaygridError):  # logged by collect
                await invoicing.collect(deps, subs[row.subscription_id or ""], row.id)


async def _charge_all(
    deps: Deps,
    subs: dict[str, SubscriptionRow],
    due: Sequence[InvoiceRow],
    payers: dict[str, PayerFacts],
    methods: dict[str, str | None],
    owners: dict[str, MethodOwner],
) -> None:
    """Charge each, ``CHARGES_AT_ONCE`` at a time, then mark those paid that were."""
    gate = asyncio.Semaphore(CHARGES_AT_ONCE)
    paid: list[tuple[InvoiceRow, Payment]] = []

    async def one(row: InvoiceRow) -> None:
        async with gate:
            sub = subs[row.subscription_id or ""]
            payer = _on_clock(deps, payers.get(row.customer_id))
            method = methods[row.id]
            owner = None if method is None else owners.get(method)
            done = await _charge(deps, payer, sub, row, method, owner)
            if done is not None:
                paid.append((row, done))

    async with asyncio.TaskGroup() as group:
        for row in due:
            group.create_task(one(row))
    await _mark_paid(deps, sorted(paid, key=lambda pair: pair[0].id))


def _method(row: InvoiceRow, payer: PayerFacts | None) -> str | None:
    """The invoice's default method, else the customer's (``/pay`` without a method)."""
    if row.default_payment_method_id is not None:
        return row.default_payment_method_id
    return None if payer is None else payer.default_payment_method_id


def _on_clock(deps: Deps, payer: PayerFacts | None) -> Deps:
    """``deps`` on the customer's clock (``clocks.deps_for_customer``)."""
    if payer is None or payer.frozen_time is None:
        return deps
    return replace(deps, clock=FrozenClock(payer.frozen_time, deps.clock))


async def _charge(
    deps: Deps,
    payer: Deps,
    sub: SubscriptionRow,
    row: InvoiceRow,
    method: str | None,
    owner: MethodOwner | None,
) -> Payment | None:
    """The invoice's payment when it succeeded (or nothing was owed), to be marked paid
    with the others; None when ``/pay``'s own path took it (and the subscription
    followed, as ``invoicing.collect`` lets it)."""
    if row.amount_remaining == 0 or method is None:
        return Payment(row.id, None, payer.clock.now())
    tenant = invoicing.tenant_of(sub)
    off_session = owner is not None and (owner.merchant_id, owner.livemode, owner.customer_id) == (
        row.merchant_id,
        row.livemode,
        row.customer_id,
    )
    try:
        payment = await invoice_payments.attempt_payment(
            payer, tenant, row, method, off_session=off_session
        )
        if payment.status is PaymentStatus.SUCCEEDED:
            return Payment(row.id, payment.id, payer.clock.now())
        invoice = await invoice_outcomes.settle_attempt(payer, tenant, row, payment)
    except PaygridError as error:
        log.info("subscription.payment_failed", subscription=sub.id, code=error.code)
        await invoicing.settle_payment(deps, sub.id, paid=False)
        log.info("subscription.renewal_failed", subscription=sub.id, code=error.code)
        return None
    if invoice.status is InvoiceStatus.PAID:
        await invoicing.settle_payment(deps, sub.id, paid=True)
    return None


async def _mark_paid(deps: Deps, paid: Sequence[tuple[InvoiceRow, Payment]]) -> None:
    """``invoice_outcomes.record_paid`` for many invoices in one transaction: ``paid`` with
    ``invoice.paid``, and each subscription whose latest invoice it is ``active``."""
    if not paid:
        return
    async with deps.pool.acquire() as conn, conn.transaction():
        sources = invoices_domain.allowed_sources(InvoiceAction.PAY)
        rows = await renewals_db.mark_paid(conn, [p for _, p in paid], sources)
        lines = await invoices_db.lines_of(conn, [row.id for row in rows])
        events = [invoice_event(row, lines[row.id], EventType.INVOICE_PAID) for row in rows]
        await events_db.insert_events(conn, events)
        following = [
            (row.subscription_id, row.id, row.updated_at)
            for row in rows
            if row.subscription_id is not None
        ]
        sources_now = domain.allowed_sources(SubscriptionAction.PAYMENT_SUCCEEDED) - {
            SubscriptionStatus.ACTIVE
        }
        for moved in await renewals_db.follow_paid(conn, following, sources_now):
            await subscription_views.emit(conn, moved, EventType.CUSTOMER_SUBSCRIPTION_UPDATED)


def invoice_event(row: InvoiceRow, lines: list[InvoiceLineRow], event: EventType) -> NewEventOf:
    """``event`` about the invoice, with its view as the snapshot, at its ``updated_at``."""
    snapshot = Invoice.from_row(row, lines).model_dump(mode="json")
    return event_of(row, event, snapshot, row.updated_at)


def event_of(
    row: SubscriptionRow | InvoiceRow, event: EventType, snapshot: dict[str, object], at: datetime
) -> NewEventOf:
    """``event`` about ``row`` (a subscription or an invoice) at ``at``."""
    return NewEventOf(row.merchant_id, row.livemode, event.value, row.id, dict(snapshot), at)
