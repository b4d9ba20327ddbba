"""One-off invoices: create a draft from the customer's pending invoice items, read, list,
and the status actions finalize, void and mark_uncollectible (paying is
``invoice_payments``). Every status change is decided by ``domain.invoices`` and guarded in
SQL by the same transition table."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from paygrid.db import invoices as invoices_db
from paygrid.db import transactions
from paygrid.db.executor import Connection, Executor
from paygrid.db.invoices import InvoiceItemRow, InvoiceLineRow, InvoiceRow
from paygrid.db.pagination import PageRequest
from paygrid.dependencies import Deps
from paygrid.domain import invoices as domain
from paygrid.domain.errors import InvalidRequest, ResourceMissing
from paygrid.domain.events import EventType
from paygrid.domain.invoices import (
    BillingReason,
    CollectionMethod,
    InvoiceAction,
    InvoiceNoPendingItems,
    InvoiceStatus,
    LineType,
)
from paygrid.ids import new_id
from paygrid.money import get_currency
from paygrid.schemas.invoices import DEFAULT_DAYS_UNTIL_DUE, Invoice, InvoiceCreate
from paygrid.services.billing.clocks import clock_for_customer
from paygrid.services.billing.hosted_links import new_link, publish
from paygrid.services.billing.invoice_charging import refuse_while_charging
from paygrid.services.billing.settings import load_settings
from paygrid.services.context import Tenant
from paygrid.services.payment_methods import require_customer
from paygrid.services.snapshots import emit_object


async def create_invoice(deps: Deps, tenant: Tenant, params: InvoiceCreate) -> Invoice:
    """A ``draft`` invoice of the customer's pending items in one currency (``currency``, or
    the oldest pending item's); items in other currencies stay pending. None to collect is
    400 ``invoice_no_pending_items``."""
    method = CollectionMethod(params.collection_method)
    settings = await load_settings(deps, tenant)
    days = _days_until_due(method, params.days_until_due, settings.invoices.days_until_due)
    await require_customer(deps.pool, tenant, params.customer)
    currency = await _currency(deps, params)
    clock = await clock_for_customer(deps, params.customer)

    async def work(conn: Connection) -> Invoice:
        now = clock.now()
        draft = await invoices_db.insert_invoice(
            conn, _draft(tenant, params, method, days, currency, now)
        )
        items = await invoices_db.claim_pending_items(conn, draft.id, params.customer, currency)
        if not items:
            raise InvoiceNoPendingItems(
                f"The customer has no pending invoice items in {currency}.", param="customer"
            )
        lines = [_line_of(draft.id, position, item) for position, item in enumerate(items)]
        await invoices_db.insert_lines(conn, lines)
        row = await invoices_db.total_from_lines(conn, draft.id, now)
        return await emit(conn, row, lines, EventType.INVOICE_CREATED)

    return await transactions.run(deps.pool, work)


def _days_until_due(
    method: CollectionMethod, days: int | None, default: int = DEFAULT_DAYS_UNTIL_DUE
) -> int | None:
    """``send_invoice`` invoices without their own take the billing settings' days."""
    if method is CollectionMethod.SEND_INVOICE:
        return default if days is None else days
    if days is not None:
        raise InvalidRequest(
            "days_until_due is only for collection_method send_invoice.", param="days_until_due"
        )
    return None


async def _currency(deps: Deps, params: InvoiceCreate) -> str:
    if params.currency is not None:
        return get_currency(params.currency).code
    oldest = await invoices_db.oldest_pending_currency(deps.pool, params.customer)
    if oldest is None:
        raise InvoiceNoPendingItems(
            "The customer has no pending invoice items; create some with "
            "POST /v1/invoiceitems first.",
            param="customer",
        )
    return oldest


def _draft(
    tenant: Tenant,
    params: InvoiceCreate,
    method: CollectionMethod,
    days: int | None,
    currency: str,
    now: datetime,
) -> InvoiceRow:
    return InvoiceRow(
        id=new_id("in"),
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        customer_id=params.customer,
        status=InvoiceStatus.DRAFT,
        collection_method=method,
        currency=currency,
        days_until_due=days,
        due_date=None,
        auto_advance=params.auto_advance,
        description=params.description,
        metadata=params.metadata,
        number=None,
        subtotal=0,
        total=0,
        amount_due=0,
        amount_paid=0,
        amount_remaining=0,
        attempt_count=0,
        payment_id=None,
        default_payment_method_id=params.default_payment_method,
        last_payment_error=None,
        billing_reason=BillingReason.MANUAL,
        subscription_id=None,
        period_start=None,
        period_end=None,
        finalized_at=None,
        paid_at=None,
        voided_at=None,
        marked_uncollectible_at=None,
        created_at=now,
        updated_at=now,
    )


def _line_of(invoice_id: str, position: int, item: InvoiceItemRow) -> InvoiceLineRow:
    return InvoiceLineRow(
        id=new_id("il"),
        invoice_id=invoice_id,
        position=position,
        type=LineType.INVOICEITEM,
        invoice_item_id=item.id,
        subscription_id=None,
        subscription_item_id=None,
        price_id=item.price_id,
        description=item.description,
        currency=item.currency,
        unit_amount=item.unit_amount,
        quantity=item.quantity,
        amount=item.amount,
        proration=item.proration,
        period_start=item.period_start,
        period_end=item.period_end,
        metadata=item.metadata,
    )


async def get_invoice(deps: Deps, tenant: Tenant, invoice_id: str) -> Invoice:
    row = await load(deps.pool, tenant, invoice_id)
    return await view_of(deps.pool, row)


async def list_invoices(
    deps: Deps,
    tenant: Tenant,
    page: PageRequest,
    *,
    customer: str | None,
    status: InvoiceStatus | None,
    subscription: str | None = None,
) -> tuple[list[Invoice], bool]:
    rows, has_more = await invoices_db.list_invoices(
        deps.pool,
        tenant.merchant_id,
        tenant.livemode,
        page,
        customer_id=customer,
        status=status,
        subscription_id=subscription,
    )
    lines = await invoices_db.lines_of(deps.pool, [r.id for r in rows])
    return [Invoice.from_row(r, lines[r.id]) for r in rows], has_more


async def finalize_invoice(deps: Deps, tenant: Tenant, invoice_id: str) -> Invoice:
    """``draft`` → ``open`` with the merchant's next number, taken in this transaction (a
    concurrent finalize waits for the counter row; a rollback gives the number back)."""
    invoice = await load(deps.pool, tenant, invoice_id)
    clock = await clock_for_customer(deps, invoice.customer_id)
    sources = domain.allowed_sources(InvoiceAction.FINALIZE)

    async def work(conn: Connection) -> Invoice:
        locked = await invoices_db.lock_invoice(conn, invoice_id, sources)
        if locked is None:
            current = await load(conn, tenant, invoice_id)
            raise domain.invalid_state(current.status, InvoiceAction.FINALIZE)
        now = clock.now()
        prefix, sequence = await invoices_db.next_number(
            conn, tenant.merchant_id, tenant.livemode, domain.default_prefix(tenant.merchant_id)
        )
        days = locked.days_until_due
        link = new_link(deps.settings.base_url())
        footer = (await load_settings(deps, tenant, conn)).invoices.footer
        changes = {
            "footer": locked.footer or footer,
            "number": domain.invoice_number(prefix, sequence),
            "finalized_at": now,
            "due_date": None if days is None else now + timedelta(days=days),
            "hosted_invoice_url": link.url,
        }
        view = await move(conn, tenant, invoice_id, InvoiceAction.FINALIZE, now, changes)
        await publish(conn, {invoice_id: link}, now)
        return view

    return await transactions.run(deps.pool, work)


async def void_invoice(deps: Deps, tenant: Tenant, invoice_id: str) -> Invoice:
    """``open`` or ``uncollectible`` → ``void``; a paid invoice cannot be voided (409), nor
    one whose payment is under way. A ``/pay`` running now finishes first (the invoice's
    payment lock), so a void never lands on an invoice being charged."""
    now = await _now_for(deps, tenant, invoice_id)
    async with deps.pool.acquire() as conn, conn.transaction():
        await load(conn, tenant, invoice_id)  # 404 before waiting for anything
        await invoices_db.hold_payment_lock(conn, invoice_id)  # a running /pay ends first
        locked = await invoices_db.lock_invoice(conn, invoice_id, frozenset(InvoiceStatus))
        if locked is not None:
            await refuse_while_charging(conn, locked, InvoiceAction.VOID)
        return await move(conn, tenant, invoice_id, InvoiceAction.VOID, now, {"voided_at": now})


async def mark_uncollectible(deps: Deps, tenant: Tenant, invoice_id: str) -> Invoice:
    """``open`` → ``uncollectible``; it can still be paid or voided later."""
    now = await _now_for(deps, tenant, invoice_id)
    async with deps.pool.acquire() as conn, conn.transaction():
        changes = {"marked_uncollectible_at": now}
        return await move(conn, tenant, invoice_id, InvoiceAction.MARK_UNCOLLECTIBLE, now, changes)


async def _now_for(deps: Deps, tenant: Tenant, invoice_id: str) -> datetime:
    """Now on the clock of the invoice's customer (a test clock's frozen time, if any)."""
    invoice = await load(deps.pool, tenant, invoice_id)
    return (await clock_for_customer(deps, invoice.customer_id)).now()


_EVENTS = {
    InvoiceAction.FINALIZE: EventType.INVOICE_FINALIZED,
    InvoiceAction.PAY: EventType.INVOICE_PAID,
    InvoiceAction.VOID: EventType.INVOICE_VOIDED,
    InvoiceAction.MARK_UNCOLLECTIBLE: EventType.INVOICE_MARKED_UNCOLLECTIBLE,
}


async def move(
    conn: Connection,
    tenant: Tenant,
    invoice_id: str,
    action: InvoiceAction,
    now: datetime,
    changes: dict[str, Any],
) -> Invoice:
    """Apply ``action`` through the guarded update and write its event; a status the
    transition table refuses is 409 ``invoice_invalid_state``."""
    current = await load(conn, tenant, invoice_id)
    domain.apply(current.status, action)
    transition = domain.TRANSITIONS[action]
    row = await invoices_db.transition(conn, invoice_id, transition, now, changes)
    if row is None:  # moved by a concurrent request since it was read
        latest = await load(conn, tenant, invoice_id)
        raise domain.invalid_state(latest.status, action)
    lines = await invoices_db.lines_of(conn, [row.id])
    return await emit(conn, row, lines[row.id], _EVENTS[action])


async def load(conn: Executor, tenant: Tenant, invoice_id: str) -> InvoiceRow:
    row = await invoices_db.get_invoice(conn, tenant.merchant_id, tenant.livemode, invoice_id)
    if row is None:
        raise ResourceMissing(f"No such invoice: '{invoice_id}'", param="id")
    return row


async def view_of(conn: Executor, row: InvoiceRow) -> Invoice:
    lines = await invoices_db.lines_of(conn, [row.id])
    return Invoice.from_row(row, lines[row.id])


async def emit(
    conn: Connection, row: InvoiceRow, lines: list[InvoiceLineRow], event: EventType
) -> Invoice:
    """The invoice's view, written as ``event``'s snapshot in the caller's transaction, at
    the time of the change on the customer's clock (``updated_at``)."""
    view = Invoice.from_row(row, lines)
    await emit_object(conn, row, event, view.model_dump(mode="json"), created_at=row.updated_at)
    return view
