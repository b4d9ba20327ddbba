"""What deleting a customer (``DELETE /v1/customers/{id}``, or deleting its test clock) does
to its billing, as Stripe does: its subscriptions are canceled now (``canceled``,
``customer.subscription.deleted``) and its ``draft`` and ``open`` invoices voided
(``invoice.voided``; a draft is finalized first, as a void invoice has a number), in the
deleting transaction and on the customer's clock.

Locks are taken customer, subscriptions (so no renewal makes a new invoice meanwhile), then
invoices. An invoice whose payment is under way is left to its ``/pay``, which marks it
paid or leaves it open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from paygrid.db import invoices as invoices_db
from paygrid.db import subscriptions as subs_db
from paygrid.db.customers import CustomerRow
from paygrid.db.executor import Connection
from paygrid.db.invoices import InvoiceRow
from paygrid.dependencies import Deps
from paygrid.domain import invoices as invoice_domain
from paygrid.domain.events import EventType
from paygrid.domain.invoices import InvoiceAction, InvoiceInvalidState, InvoiceStatus
from paygrid.domain.subscriptions import SubscriptionAction
from paygrid.schemas.common import DeletedObject
from paygrid.services import customers
from paygrid.services.billing import invoices
from paygrid.services.billing.clocks import clock_for_customer
from paygrid.services.billing.hosted_links import new_link, publish
from paygrid.services.billing.invoice_charging import refuse_while_charging
from paygrid.services.billing.subscriptions.lifecycle import end
from paygrid.services.context import Tenant


async def delete_customer(deps: Deps, tenant: Tenant, customer_id: str) -> DeletedObject:
    """``DELETE /v1/customers/{id}``: the customer's billing ends, then it is deleted
    (``services.customers.delete_customer``), in one transaction."""

    async def departure(conn: Connection, row: CustomerRow) -> None:
        clock = await clock_for_customer(deps, row.id, conn)
        await end_billing(conn, row, clock.now(), base_url=deps.settings.base_url())

    return await customers.delete_customer(deps, tenant, customer_id, before=departure)


async def end_billing(
    conn: Connection, customer: CustomerRow, now: datetime, *, base_url: str
) -> None:
    """Cancel the customer's subscriptions and void its drafts and open invoices, at ``now``
    (its clock's time), in the caller's transaction (``base_url``: of a finalized draft's
    hosted page)."""
    for sub in await subs_db.lock_ongoing_of_customer(conn, customer.id):
        await end(conn, sub, SubscriptionAction.CANCEL, now, ended_at=now)
    for invoice in await invoices_db.lock_unsettled_of_customer(conn, customer.id):
        await _void(conn, invoice, now, base_url)


async def _void(conn: Connection, invoice: InvoiceRow, now: datetime, base_url: str) -> None:
    """Void ``invoice``; a draft is finalized first (a void invoice has a number, and
    numbers stay gapless), with ``invoice.finalized``."""
    if invoice.status is InvoiceStatus.DRAFT:
        prefix, sequence = await invoices_db.next_number(
            conn,
            invoice.merchant_id,
            invoice.livemode,
            invoice_domain.default_prefix(invoice.merchant_id),
        )
        number = invoice_domain.invoice_number(prefix, sequence)
        link = new_link(base_url)
        changes = {"number": number, "finalized_at": now, "hosted_invoice_url": link.url}
        await _move(conn, invoice.id, InvoiceAction.FINALIZE, now, changes)
        await publish(conn, {invoice.id: link}, now)
    else:
        if not await invoices_db.try_payment_lock(conn, invoice.id):
            return  # a /pay runs: it decides (waiting could deadlock on this customer's row)
        try:
            await refuse_while_charging(conn, invoice, InvoiceAction.VOID)
        except InvoiceInvalidState:
            return  # its payment decides
    await _move(conn, invoice.id, InvoiceAction.VOID, now, {"voided_at": now})


async def _move(
    conn: Connection, invoice_id: str, action: InvoiceAction, now: datetime, changes: dict[str, Any]
) -> None:
    """The guarded status write of ``action`` and its event."""
    transition = invoice_domain.TRANSITIONS[action]
    moved = await invoices_db.transition(conn, invoice_id, transition, now, changes)
    if moved is not None:
        lines = await invoices_db.lines_of(conn, [moved.id])
        await invoices.emit(conn, moved, lines[moved.id], _EVENTS[action])


_EVENTS: Final = {
    InvoiceAction.FINALIZE: EventType.INVOICE_FINALIZED,
    InvoiceAction.VOID: EventType.INVOICE_VOIDED,
}
