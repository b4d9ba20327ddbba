"""A subscription's invoices: a period's invoice (made at most once per period), proration
invoices, and collecting them (finalize, then charge the default method off-session) with
what the payment means for the subscription's status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog

from paygrid.db import invoices as invoices_db
from paygrid.db import subscriptions as subs_db
from paygrid.db.executor import Connection
from paygrid.db.invoices import InvoiceLineRow, InvoiceRow
from paygrid.db.prices import PriceRow
from paygrid.db.subscriptions import ProrationRow, SubscriptionItemRow, SubscriptionRow
from paygrid.dependencies import Deps
from paygrid.domain import subscriptions as domain
from paygrid.domain.billing_dates import Cycle, Period, next_boundary, period_containing
from paygrid.domain.errors import PaygridError
from paygrid.domain.events import EventType
from paygrid.domain.invoices import BillingReason, CollectionMethod, InvoiceStatus, LineType
from paygrid.domain.proration import ProrationKind, ProrationLine, prorate, remaining_seconds
from paygrid.domain.subscriptions import SubscriptionAction, SubscriptionStatus
from paygrid.ids import derived_id, new_id
from paygrid.schemas.invoices import Invoice, InvoicePay
from paygrid.services.billing import invoice_payments, invoices
from paygrid.services.billing.subscriptions import finalize_delays
from paygrid.services.billing.subscriptions.views import emit
from paygrid.services.context import Tenant

log = structlog.get_logger("paygrid.billing")


def tenant_of(row: SubscriptionRow) -> Tenant:
    return Tenant(row.merchant_id, row.livemode)


CYCLE = BillingReason.SUBSCRIPTION_CYCLE


def period_invoice_id(sub: SubscriptionRow, period: Period) -> str:
    """A renewal invoice's id: derived from its subscription and period (unique together),
    so the invoice of a period is the same object however often it is made. After a restore
    (``paygrid restore``) the schedule renews a period again that was renewed and charged
    after the backup: the invoice comes back under its old id, its charge's key
    (``invoice:<id>:attempt:<n>``) is the one the re-sync re-imported the payment under, and
    the charge finds that payment instead of charging the customer a second time."""
    return derived_id("in", period.start, sub.id, period.start.isoformat())


def draft(
    sub: SubscriptionRow, reason: BillingReason, period: Period | None, now: datetime
) -> InvoiceRow:
    """A draft invoice of ``sub``; ``period`` (its start unique per subscription) for a
    period's invoice, None for an invoice of prorations only."""
    return InvoiceRow(
        id=period_invoice_id(sub, period) if reason is CYCLE and period else new_id("in"),
        merchant_id=sub.merchant_id,
        livemode=sub.livemode,
        customer_id=sub.customer_id,
        status=InvoiceStatus.DRAFT,
        collection_method=sub.collection_method,
        currency=sub.currency,
        days_until_due=sub.days_until_due,
        due_date=None,
        auto_advance=True,
        description=None,
        metadata={},
        number=None,
        subtotal=0,
        total=0,
        amount_due=0,
        amount_paid=0,
        amount_remaining=0,
        attempt_count=0,
        payment_id=None,
        default_payment_method_id=sub.default_payment_method_id,
        last_payment_error=None,
        billing_reason=reason,
        subscription_id=sub.id,
        period_start=None if period is None else period.start,
        period_end=None if period is None else period.end,
        finalized_at=None,
        paid_at=None,
        voided_at=None,
        marked_uncollectible_at=None,
        created_at=now,
        updated_at=now,
    )


def _line(
    invoice_id: str,
    position: int,
    sub: SubscriptionRow,
    price: str,
    unit_amount: int,
    quantity: int,
    amount: int,
    period: Period,
    *,
    item_id: str | None,
    proration: bool,
    description: str,
) -> InvoiceLineRow:
    return InvoiceLineRow(
        id=new_id("il"),
        invoice_id=invoice_id,
        position=position,
        type=LineType.SUBSCRIPTION,
        invoice_item_id=None,
        subscription_id=sub.id,
        subscription_item_id=item_id,
        price_id=price,
        description=description,
        currency=sub.currency,
        unit_amount=unit_amount,
        quantity=quantity,
        amount=amount,
        proration=proration,
        period_start=period.start,
        period_end=period.end,
        metadata={},
    )


def next_period(sub: SubscriptionRow) -> Period:
    """The period that begins where the current one ends (at a trial's end: the first one
    from the anchor), as the next renewal invoices it."""
    start = sub.current_period_end
    cycle = Cycle(sub.billing_cycle_anchor, sub.interval, sub.interval_count)
    period = period_containing(cycle, start)
    if period.start != start:  # not on a boundary: a period ending at the next one
        period = Period(start, next_boundary(cycle, start))
    return period


def period_lines(
    invoice_id: str,
    sub: SubscriptionRow,
    items: Sequence[SubscriptionItemRow],
    prices: dict[str, PriceRow],
    period: Period,
    start: datetime | None = None,
) -> list[InvoiceLineRow]:
    """One line per item for ``period``; from ``start`` on (a first period that ends at a
    later anchor), the formula's share of it, marked as proration."""
    lines = []
    for position, item in enumerate(items):
        unit = prices[item.price_id].unit_amount
        amount, billed, partial = unit * item.quantity, period, False
        if start is not None and start > period.start:
            amount = prorate(amount, remaining_seconds(period, start), period.seconds)
            billed, partial = Period(start, period.end), True
        label = f"{item.quantity} x {item.price_id}"
        description = f"Remaining time on {label}" if partial else label
        lines.append(
            _line(
                invoice_id,
                position,
                sub,
                item.price_id,
                unit,
                item.quantity,
                amount,
                billed,
                item_id=item.id,
                proration=partial,
                description=description,
            )
        )
    return lines


def proration_rows(
    sub: SubscriptionRow, lines: Sequence[ProrationLine], now: datetime
) -> list[ProrationRow]:
    """Pending rows of ``lines`` (``create_prorations``), for the next invoice."""
    return [
        ProrationRow(
            id=new_id("prorate"),
            subscription_id=sub.id,
            invoice_id=None,
            position=position,
            price_id=line.price,
            unit_amount=line.unit_amount,
            quantity=line.quantity,
            amount=line.amount,
            period_start=line.period.start,
            period_end=line.period.end,
            created_at=now,
        )
        for position, line in enumerate(lines)
    ]


def proration_invoice_lines(
    invoice_id: str, sub: SubscriptionRow, rows: Sequence[ProrationRow], first: int
) -> list[InvoiceLineRow]:
    lines = []
    for offset, row in enumerate(rows):
        kind = ProrationKind.CREDIT if row.amount < 0 else ProrationKind.DEBIT
        verb = "Unused time on" if kind is ProrationKind.CREDIT else "Remaining time on"
        lines.append(
            _line(
                invoice_id,
                first + offset,
                sub,
                row.price_id,
                row.unit_amount,
                row.quantity,
                row.amount,
                Period(row.period_start, row.period_end),
                item_id=None,
                proration=True,
                description=f"{verb} {row.quantity} x {row.price_id}",
            )
        )
    return lines


async def make_invoice(
    conn: Connection,
    sub: SubscriptionRow,
    invoice: InvoiceRow,
    lines: Sequence[InvoiceLineRow],
    now: datetime,
) -> InvoiceRow | None:
    """Insert ``invoice`` with ``lines`` and the subscription's pending prorations after
    them, total it and write ``invoice.created``; None when its period is invoiced already."""
    inserted = await subs_db.insert_period_invoice(conn, invoice)
    if inserted is None:
        return None
    pending = await subs_db.claim_prorations(conn, sub.id, inserted.id)
    every = [*lines, *proration_invoice_lines(inserted.id, sub, pending, len(lines))]
    await invoices_db.insert_lines(conn, every)
    row = await invoices_db.total_from_lines(conn, inserted.id, now)
    await invoices.emit(conn, row, list(every), EventType.INVOICE_CREATED)
    return row


async def collect(deps: Deps, sub: SubscriptionRow, invoice_id: str) -> None:
    """Finalize a draft, then (``charge_automatically``) charge it through ``/pay``'s use
    case, keyed by the invoice and attempt: paid → the subscription is ``active``; a
    decline, a card that needs authentication, or no method → ``past_due`` (``incomplete``
    stays so)."""
    tenant = tenant_of(sub)
    invoice = await invoices.get_invoice(deps, tenant, invoice_id)
    if invoice.status is InvoiceStatus.DRAFT:
        if not _finalize_due(deps, invoice, await finalize_delays.delay_for(deps, tenant)):
            return  # the schedule comes back when it is (db.subscriptions.FINALIZE_DUE)
        invoice = await invoices.finalize_invoice(deps, tenant, invoice_id)
    charged = invoice.collection_method is CollectionMethod.CHARGE_AUTOMATICALLY
    if invoice.status is not InvoiceStatus.OPEN or not charged or not invoice.auto_advance:
        return
    try:
        # The first attempt only: a rerun (or a racing pass) never charges an invoice that
        # already failed, whose retries go through dunning's gate (hard declines, the cap).
        paid = await invoice_payments.pay_invoice(
            deps, tenant, invoice_id, InvoicePay(), first_only=True
        )
    except PaygridError as error:
        log.info("subscription.payment_failed", subscription=sub.id, code=error.code)
        await settle_payment(deps, sub.id, paid=False)
        raise
    if paid.status is InvoiceStatus.PAID:
        await settle_payment(deps, sub.id, paid=True)


def _finalize_due(deps: Deps, invoice: Invoice, delay: timedelta) -> bool:
    """A renewal's draft waits ``delay`` (the merchant's ``finalize_after_seconds``, else
    ``PAYGRID_INVOICE_FINALIZE_DELAY_SECONDS``) on the customer's clock (``deps.clock``
    here) before it is finalized; other drafts do not wait."""
    if invoice.billing_reason is not BillingReason.SUBSCRIPTION_CYCLE:
        return True
    return datetime.fromtimestamp(invoice.created, UTC) + delay <= deps.clock.now()


async def settle_payment(deps: Deps, subscription_id: str, *, paid: bool) -> None:
    """Move the subscription by its latest payment: guarded by the transition table."""
    async with deps.pool.acquire() as conn, conn.transaction():
        sub = await subs_db.lock_by_id(conn, subscription_id)
        if sub is None:
            return
        action = _payment_action(sub.status, paid=paid)
        if action is None:
            return
        target = domain.apply(sub.status, action)
        if target is sub.status:
            return
        moved = await subs_db.transition(
            conn, sub.id, domain.allowed_sources(action), target, deps.clock.now()
        )
        if moved is not None:
            await emit(conn, moved, EventType.CUSTOMER_SUBSCRIPTION_UPDATED)


def _payment_action(status: SubscriptionStatus, *, paid: bool) -> SubscriptionAction | None:
    action = SubscriptionAction.PAYMENT_SUCCEEDED if paid else SubscriptionAction.PAYMENT_FAILED
    if not paid and status is SubscriptionStatus.INCOMPLETE:
        action = SubscriptionAction.INITIAL_PAYMENT_FAILED
    return action if status in domain.allowed_sources(action) else None
