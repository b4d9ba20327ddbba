"""Loading subscriptions and their items, their public shape, and their events."""

from __future__ import annotations

from collections.abc import Sequence

from paygrid.db import prices as prices_db
from paygrid.db import subscriptions as subs_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import PageRequest
from paygrid.db.prices import PriceRow
from paygrid.db.subscriptions import SubscriptionItemRow, SubscriptionRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import ResourceMissing
from paygrid.domain.events import EventType
from paygrid.domain.proration import Item
from paygrid.domain.subscriptions import SubscriptionStatus
from paygrid.schemas.subscriptions import Subscription
from paygrid.services.context import Tenant
from paygrid.services.snapshots import emit_object


async def load(
    conn: Executor, tenant: Tenant, subscription_id: str, *, lock: bool = False
) -> SubscriptionRow:
    row = await subs_db.get_subscription(
        conn, tenant.merchant_id, tenant.livemode, subscription_id, lock=lock
    )
    if row is None:
        raise ResourceMissing(f"No such subscription: '{subscription_id}'", param="id")
    return row


async def prices_of(
    conn: Executor, row: SubscriptionRow, price_ids: Sequence[str]
) -> dict[str, PriceRow]:
    """The catalog prices named, by id (prices are never deleted)."""
    found: dict[str, PriceRow] = {}
    for price_id in dict.fromkeys(price_ids):
        price = await prices_db.get_price(conn, row.merchant_id, row.livemode, price_id)
        assert price is not None, f"price {price_id} vanished"
        found[price_id] = price
    return found


async def priced_items(
    conn: Executor, row: SubscriptionRow
) -> tuple[list[SubscriptionItemRow], dict[str, PriceRow]]:
    items = (await subs_db.items_of(conn, [row.id]))[row.id]
    return items, await prices_of(conn, row, [i.price_id for i in items])


def proration_items(
    items: Sequence[SubscriptionItemRow], prices: dict[str, PriceRow]
) -> list[Item]:
    """The items as the proration formula takes them."""
    return [Item(i.price_id, prices[i.price_id].unit_amount, i.quantity) for i in items]


async def view_of(conn: Executor, row: SubscriptionRow) -> Subscription:
    items, prices = await priced_items(conn, row)
    return Subscription.from_row(row, items, prices)


async def emit(conn: Connection, row: SubscriptionRow, event: EventType) -> Subscription:
    """The subscription's view, written as ``event``'s snapshot in the caller's
    transaction, at the time of the change on the customer's clock (``updated_at``)."""
    view = await view_of(conn, row)
    await emit_object(conn, row, event, view.model_dump(mode="json"), created_at=row.updated_at)
    return view


async def get_subscription(deps: Deps, tenant: Tenant, subscription_id: str) -> Subscription:
    return await view_of(deps.pool, await load(deps.pool, tenant, subscription_id))


async def list_subscriptions(
    deps: Deps,
    tenant: Tenant,
    page: PageRequest,
    *,
    customer: str | None,
    status: SubscriptionStatus | None,
    price: str | None,
) -> tuple[list[Subscription], bool]:
    rows, has_more = await subs_db.list_subscriptions(
        deps.pool,
        tenant.merchant_id,
        tenant.livemode,
        page,
        customer_id=customer,
        status=status,
        price_id=price,
    )
    return [await view_of(deps.pool, r) for r in rows], has_more
