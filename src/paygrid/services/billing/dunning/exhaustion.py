"""``on_exhausted``: what an invoice's exhausted retry schedule does to the invoice and to its
subscription, through both transition tables and their guarded SQL, with their events, in
the caller's transaction (the invoice's row first, then the subscription's).

=============  =====================================  ====================
on_exhausted   subscription                           invoice
=============  =====================================  ====================
cancel         ``canceled`` (subscription.deleted)    ``uncollectible``
unpaid         ``unpaid``                             ``uncollectible``
past_due       ``past_due`` (stays)                   ``open`` (stays)
pause          ``paused`` (subscription.paused)       ``open`` (stays)
=============  =====================================  ====================
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from paygrid.db import invoices as invoices_db
from paygrid.db import prices as prices_db
from paygrid.db import subscriptions as subs_db
from paygrid.db.executor import Connection
from paygrid.db.invoices import InvoiceRow
from paygrid.db.subscriptions import SubscriptionRow
from paygrid.domain import invoices as invoices_domain
from paygrid.domain import subscriptions as subs_domain
from paygrid.domain.billing_settings import DunningSettings, OnExhausted
from paygrid.domain.events import EventType
from paygrid.domain.invoices import InvoiceAction
from paygrid.domain.subscriptions import SubscriptionAction, SubscriptionStatus
from paygrid.schemas.subscriptions import Subscription
from paygrid.services.billing.invoices import emit as emit_invoice
from paygrid.services.snapshots import emit_object

A = SubscriptionAction
_UNCOLLECTIBLE: Final = frozenset({OnExhausted.CANCEL, OnExhausted.UNPAID})


async def apply_on_exhausted(
    conn: Connection, settings: DunningSettings, invoice: InvoiceRow, now: datetime
) -> InvoiceRow:
    """Apply ``settings.on_exhausted``; the invoice afterwards."""
    on = settings.on_exhausted
    if on in _UNCOLLECTIBLE:
        invoice = await _uncollectible(conn, invoice, now)
    if invoice.subscription_id is not None:
        sub = await subs_db.lock_by_id(conn, invoice.subscription_id)
        if sub is not None:
            await _subscription(conn, sub, on, now)
    return invoice


async def _uncollectible(conn: Connection, invoice: InvoiceRow, now: datetime) -> InvoiceRow:
    move = invoices_domain.TRANSITIONS[InvoiceAction.MARK_UNCOLLECTIBLE]
    changes = {"marked_uncollectible_at": now}
    moved = await invoices_db.transition(conn, invoice.id, move, now, changes)
    if moved is None:  # no longer open: nothing to mark
        return invoice
    lines = await invoices_db.lines_of(conn, [moved.id])
    await emit_invoice(conn, moved, lines[moved.id], EventType.INVOICE_MARKED_UNCOLLECTIBLE)
    return moved


async def _subscription(
    conn: Connection, sub: SubscriptionRow, on: OnExhausted, now: datetime
) -> None:
    """The subscription's move; one whose status the table does not allow it (already
    canceled, paused, ...) stays as it is."""
    if sub.status is SubscriptionStatus.ACTIVE and on is not OnExhausted.PAUSE:
        # A renewal's first failure ends the schedule at once (a hard decline): it is
        # past_due first, as any failed renewal is.
        moved = await _move(conn, sub, A.PAYMENT_FAILED, now, {})
        sub = moved or sub
    match on:
        case OnExhausted.CANCEL:
            changes: dict[str, object] = {
                "canceled_at": sub.canceled_at or now,
                "ended_at": now,
                "resumes_at": None,
            }
            await _move(conn, sub, A.CANCEL, now, changes, EventType.CUSTOMER_SUBSCRIPTION_DELETED)
        case OnExhausted.UNPAID:
            await _move(conn, sub, A.MARK_UNPAID, now, {})
        case OnExhausted.PAUSE:
            changes = {"paused_at": now, "resumes_at": None}
            await _move(
                conn, sub, A.PAUSE_EXHAUSTED, now, changes, EventType.CUSTOMER_SUBSCRIPTION_PAUSED
            )
        case OnExhausted.PAST_DUE:
            return  # the merchant's choice: the subscription stays past_due, its invoice open


async def _move(
    conn: Connection,
    sub: SubscriptionRow,
    action: SubscriptionAction,
    now: datetime,
    changes: dict[str, object],
    event: EventType = EventType.CUSTOMER_SUBSCRIPTION_UPDATED,
) -> SubscriptionRow | None:
    sources = subs_domain.allowed_sources(action)
    if sub.status not in sources:
        return None
    target = subs_domain.apply(sub.status, action)
    if target is sub.status and not changes:
        return sub
    moved = await subs_db.transition(conn, sub.id, sources, target, now, changes)
    if moved is not None:
        await emit_subscription(conn, moved, event)
    return moved


async def emit_subscription(conn: Connection, row: SubscriptionRow, event: EventType) -> None:
    """The subscription's view as ``subscriptions.views.emit`` writes it (that package calls
    ``invoice_payments``, which calls this one, so this one cannot call it)."""
    items = (await subs_db.items_of(conn, [row.id]))[row.id]
    prices = {}
    for item in items:
        price = await prices_db.get_price(conn, row.merchant_id, row.livemode, item.price_id)
        assert price is not None, "prices are never deleted"
        prices[item.price_id] = price
    view = Subscription.from_row(row, items, prices).model_dump(mode="json")
    await emit_object(conn, row, event, view, created_at=row.updated_at)
