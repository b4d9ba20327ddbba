"""Invoice items: charges waiting for a customer's next invoice. Create, read, list, and
delete while pending (no invoice holds them yet)."""

from __future__ import annotations

from datetime import datetime

from paygrid.db import invoices as invoices_db
from paygrid.db.executor import Connection
from paygrid.db.invoices import InvoiceItemRow
from paygrid.db.pagination import PageRequest
from paygrid.dependencies import Deps
from paygrid.domain.errors import InvalidRequest, ResourceMissing
from paygrid.domain.events import EventType
from paygrid.domain.invoices import InvoiceItemInvoiced
from paygrid.ids import new_id
from paygrid.money import get_currency, validate_amount
from paygrid.schemas.common import DeletedObject
from paygrid.schemas.invoices import InvoiceItem, InvoiceItemCreate
from paygrid.services.billing.clocks import clock_for_customer
from paygrid.services.context import Tenant
from paygrid.services.payment_methods import require_customer
from paygrid.services.snapshots import emit_object


async def create_invoice_item(deps: Deps, tenant: Tenant, params: InvoiceItemCreate) -> InvoiceItem:
    """A pending item for the customer: an amount in a currency, or a catalog price times a
    quantity (the price's amount and currency are copied, so later changes to the catalog
    do not move it)."""
    currency, unit_amount, quantity = await _pricing(deps, tenant, params)
    validate_amount(unit_amount * quantity, get_currency(currency))
    now = (await clock_for_customer(deps, params.customer)).now()
    async with deps.pool.acquire() as conn, conn.transaction():
        await require_customer(conn, tenant, params.customer, lock=True)
        row = await invoices_db.insert_item(
            conn,
            InvoiceItemRow(
                id=new_id("ii"),
                merchant_id=tenant.merchant_id,
                livemode=tenant.livemode,
                customer_id=params.customer,
                invoice_id=None,
                currency=currency,
                price_id=params.price,
                unit_amount=unit_amount,
                quantity=quantity,
                amount=unit_amount * quantity,
                description=params.description,
                metadata=params.metadata,
                period_start=now,
                period_end=now,
                proration=False,
                created_at=now,
            ),
        )
        return await _emit(conn, row, EventType.INVOICEITEM_CREATED, row.created_at)


async def _pricing(deps: Deps, tenant: Tenant, params: InvoiceItemCreate) -> tuple[str, int, int]:
    """(currency, unit amount, quantity) from the amount or from the price."""
    if params.price is None:
        if params.amount is None or params.currency is None:
            raise InvalidRequest(
                "Pass amount and currency, or price.", param="amount", code="parameter_missing"
            )
        if params.quantity is not None:
            raise InvalidRequest("quantity is taken with price only.", param="quantity")
        return get_currency(params.currency).code, params.amount, 1
    if params.amount is not None or params.currency is not None:
        raise InvalidRequest("Pass price or amount and currency, not both.", param="price")
    price = await invoices_db.price_facts(
        deps.pool, tenant.merchant_id, tenant.livemode, params.price
    )
    if price is None:
        raise InvalidRequest(
            f"No such price: '{params.price}'", param="price", code="resource_missing"
        )
    if not price.active or price.recurring:
        raise InvalidRequest(
            "An invoice item takes an active one-time price; recurring prices are billed by "
            "subscriptions.",
            param="price",
            code="price_not_usable",
        )
    return price.currency, price.unit_amount, params.quantity or 1


async def get_invoice_item(deps: Deps, tenant: Tenant, item_id: str) -> InvoiceItem:
    row = await invoices_db.get_item(deps.pool, tenant.merchant_id, tenant.livemode, item_id)
    if row is None:
        raise ResourceMissing(f"No such invoice item: '{item_id}'", param="id")
    return InvoiceItem.from_row(row)


async def list_invoice_items(
    deps: Deps,
    tenant: Tenant,
    page: PageRequest,
    *,
    customer: str | None,
    pending: bool | None,
) -> tuple[list[InvoiceItem], bool]:
    rows, has_more = await invoices_db.list_items(
        deps.pool, tenant.merchant_id, tenant.livemode, page, customer_id=customer, pending=pending
    )
    return [InvoiceItem.from_row(r) for r in rows], has_more


async def delete_invoice_item(deps: Deps, tenant: Tenant, item_id: str) -> DeletedObject:
    """Delete a pending item (``invoiceitem.deleted``); one on an invoice stays (409)."""
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await invoices_db.get_item(conn, tenant.merchant_id, tenant.livemode, item_id)
        if row is None:
            raise ResourceMissing(f"No such invoice item: '{item_id}'", param="id")
        deleted = await invoices_db.delete_pending_item(conn, item_id)
        if deleted is None:
            raise InvoiceItemInvoiced(
                f"The invoice item is on invoice {row.invoice_id} and can no longer be deleted."
            )
        now = (await clock_for_customer(deps, deleted.customer_id, conn)).now()
        await _emit(conn, deleted, EventType.INVOICEITEM_DELETED, now)
    return DeletedObject(id=item_id, object="invoiceitem")


async def _emit(
    conn: Connection, row: InvoiceItemRow, event: EventType, at: datetime
) -> InvoiceItem:
    """The item's view as ``event``'s snapshot, stamped ``at`` on the customer's clock (a test
    clock's customer's events carry the clock's time, as its other objects' do)."""
    view = InvoiceItem.from_row(row)
    await emit_object(conn, row, event, view.model_dump(mode="json"), created_at=at)
    return view
