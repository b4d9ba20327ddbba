"""``POST /v1/subscriptions/{id}``: items and quantities (with proration), scheduled
cancel, default method and metadata."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from paygrid.db import subscriptions as subs_db
from paygrid.db.executor import Connection
from paygrid.db.prices import PriceRow
from paygrid.db.subscriptions import SubscriptionItemRow, SubscriptionRow
from paygrid.dependencies import Deps
from paygrid.domain import subscriptions as domain
from paygrid.domain.billing_dates import Period
from paygrid.domain.errors import InvalidRequest
from paygrid.domain.events import EventType
from paygrid.domain.invoices import BillingReason
from paygrid.domain.proration import Item, ProrationBehavior, ProrationLine, proration_lines
from paygrid.domain.subscriptions import BILLING, SubscriptionAction
from paygrid.ids import new_id, new_ordered_id
from paygrid.schemas.subscriptions import ItemUpdate, Subscription, SubscriptionUpdate
from paygrid.services.billing.clocks import deps_for_customer
from paygrid.services.billing.subscriptions import invoicing
from paygrid.services.billing.subscriptions.items import (
    PRICE_NOT_USABLE,
    Recurrence,
    billable_price,
    check_payment_method,
)
from paygrid.services.billing.subscriptions.lifecycle import (
    collect_quietly,
    set_cancel_at_period_end,
)
from paygrid.services.billing.subscriptions.views import (
    emit,
    load,
    priced_items,
    proration_items,
    view_of,
)
from paygrid.services.context import Tenant


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item as it will be: an existing id (kept or changed) or a new one."""

    id: str
    price: PriceRow
    quantity: int
    metadata: dict[str, str]
    new: bool


async def update_subscription(
    deps: Deps, tenant: Tenant, subscription_id: str, params: SubscriptionUpdate
) -> Subscription:
    """Change what was sent. Items while ``trialing``, ``active``, ``past_due`` or
    ``unpaid``: outside a trial, ``create_prorations`` keeps the formula's lines for the
    next invoice, ``always_invoice`` invoices and charges them now, ``none`` makes none."""
    sub = await load(deps.pool, tenant, subscription_id)
    deps = await deps_for_customer(deps, sub.customer_id)
    await check_payment_method(deps.pool, tenant, params.default_payment_method, sub.customer_id)
    invoice_id = None
    async with deps.pool.acquire() as conn, conn.transaction():
        sub = await load(conn, tenant, subscription_id, lock=True)
        now = deps.clock.now()
        if params.items is not None:
            sub, invoice_id = await _change_items(conn, tenant, sub, params, now)
        if params.cancel_at_period_end is not None:
            sub = await set_cancel_at_period_end(conn, sub, params.cancel_at_period_end, now)
        sub = await _plain_fields(conn, sub, params, now)
    if invoice_id is not None:
        await collect_quietly(deps, sub, invoice_id)
    return await view_of(deps.pool, await load(deps.pool, tenant, subscription_id))


async def _plain_fields(
    conn: Connection, sub: SubscriptionRow, params: SubscriptionUpdate, now: datetime
) -> SubscriptionRow:
    changes: dict[str, object] = {}
    if params.default_payment_method is not None:
        changes["default_payment_method_id"] = params.default_payment_method
    if params.metadata is not None:
        changes["metadata"] = {**sub.metadata, **params.metadata}
    if not changes:
        return sub
    sources = frozenset(domain.SubscriptionStatus) - domain.TERMINAL
    if sub.status in domain.TERMINAL:
        raise domain.invalid_state(sub.status, SubscriptionAction.UPDATE_ITEMS)
    moved = await subs_db.transition(conn, sub.id, sources, None, now, changes)
    assert moved is not None
    await emit(conn, moved, EventType.CUSTOMER_SUBSCRIPTION_UPDATED)
    return moved


async def _change_items(
    conn: Connection,
    tenant: Tenant,
    sub: SubscriptionRow,
    params: SubscriptionUpdate,
    now: datetime,
) -> tuple[SubscriptionRow, str | None]:
    domain.apply(sub.status, SubscriptionAction.UPDATE_ITEMS)
    old, prices = await priced_items(conn, sub)
    new = await _new_items(conn, tenant, sub, old, prices, params.items or [])
    behavior = ProrationBehavior(params.proration_behavior)
    lines: tuple[ProrationLine, ...] = ()
    if sub.status in BILLING and behavior is not ProrationBehavior.NONE:
        lines = proration_lines(
            proration_items(old, prices),
            [Item(i.price.id, i.price.unit_amount, i.quantity) for i in new],
            Period(sub.current_period_start, sub.current_period_end),
            now,
        )
    await _store_items(conn, sub, old, new, now)
    await subs_db.insert_prorations(conn, invoicing.proration_rows(sub, lines, now))
    changes: dict[str, object] = {}
    invoice_id = None
    if lines and behavior is ProrationBehavior.ALWAYS_INVOICE:
        draft = invoicing.draft(sub, BillingReason.SUBSCRIPTION_UPDATE, None, now)
        invoice = await invoicing.make_invoice(conn, sub, draft, [], now)
        assert invoice is not None
        invoice_id = changes["latest_invoice_id"] = invoice.id
    moved = await subs_db.transition(
        conn, sub.id, domain.allowed_sources(SubscriptionAction.UPDATE_ITEMS), None, now, changes
    )
    assert moved is not None
    await emit(conn, moved, EventType.CUSTOMER_SUBSCRIPTION_UPDATED)
    return moved, invoice_id


async def _new_items(
    conn: Connection,
    tenant: Tenant,
    sub: SubscriptionRow,
    old: list[SubscriptionItemRow],
    prices: dict[str, PriceRow],
    changes: list[ItemUpdate],
) -> list[NewItem]:
    fits = Recurrence(sub.currency, sub.interval, sub.interval_count)
    items = {
        i.id: NewItem(i.id, prices[i.price_id], i.quantity, i.metadata, new=False) for i in old
    }
    for index, change in enumerate(changes):
        param = f"items[{index}]"
        price = None
        if change.price is not None:
            price = await billable_price(conn, tenant, change.price, f"{param}[price]", fits)
        if change.id is None:
            if price is None or change.deleted:
                raise InvalidRequest("A new item needs a price.", param=f"{param}[price]")
            key = new_id("si")
            items[key] = NewItem(key, price, change.quantity or 1, change.metadata or {}, new=True)
            continue
        current = items.get(change.id)
        if current is None:
            raise InvalidRequest(
                f"No such subscription item: '{change.id}'",
                param=f"{param}[id]",
                code="resource_missing",
            )
        if change.deleted:
            del items[change.id]
            continue
        items[change.id] = NewItem(
            change.id,
            price or current.price,
            change.quantity or current.quantity,
            current.metadata if change.metadata is None else change.metadata,
            new=price is not None and price.id != current.price.id,
        )
    chosen = list(items.values())
    if not chosen:
        raise InvalidRequest("A subscription needs at least one item.", param="items")
    if len({i.price.id for i in chosen}) != len(chosen):
        raise InvalidRequest(
            "A subscription names each price at most once.", param="items", code=PRICE_NOT_USABLE
        )
    return chosen


async def _store_items(
    conn: Connection,
    sub: SubscriptionRow,
    old: list[SubscriptionItemRow],
    new: list[NewItem],
    now: datetime,
) -> None:
    """Write the new set: removed and re-priced items are deleted, new ones inserted (a
    changed price makes a new item, as Stripe's proration lines do), quantities set."""
    olds = {i.id: i for i in old}
    keep = {i.id for i in new if not i.new and i.id in olds}
    await subs_db.delete_items(conn, [i for i in olds if i not in keep])
    for item in new:
        if item.id in keep and olds[item.id].quantity != item.quantity:
            await subs_db.set_quantity(conn, item.id, item.quantity)
    # Ordered ids: the added items share ``now``, and their ids keep them in the order given.
    added = [
        SubscriptionItemRow(new_ordered_id("si"), sub.id, i.price.id, i.quantity, i.metadata, now)
        for i in new
        if i.id not in keep
    ]
    await subs_db.insert_items(conn, added)
