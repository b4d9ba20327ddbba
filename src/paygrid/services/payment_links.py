"""Payment links over the API: create (validating the prices), retrieve, list, update
(deactivate, change where the customer goes after paying, the expiry, metadata). What the
link's public page does is ``paygrid.services.payment_link_checkout``."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from paygrid.db import payment_link_sessions as link_sessions_db
from paygrid.db import payment_links as links_db
from paygrid.db import products as products_db
from paygrid.db.executor import Executor
from paygrid.db.pagination import PageRequest
from paygrid.db.payment_link_sessions import LinkSessionRow
from paygrid.db.payment_links import LineItemRow, PaymentLinkRow
from paygrid.db.prices import PriceRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import InvalidRequest, ResourceMissing
from paygrid.domain.payment_links import AfterCompletion
from paygrid.domain.url_safety import check_redirect_url
from paygrid.ids import new_id
from paygrid.schemas.catalog import Price
from paygrid.schemas.common import unix
from paygrid.schemas.payment_links import (
    AfterCompletionParams,
    AfterCompletionView,
    CompletedSessions,
    LineItem,
    LineItemCreate,
    LineItems,
    PaymentLink,
    PaymentLinkCreate,
    PaymentLinkUpdate,
    Redirect,
    Restrictions,
)
from paygrid.services.billing.prices import require_price
from paygrid.services.billing.products import merged_metadata
from paygrid.services.context import Tenant

# Links are public by design, but must not be enumerable: 128 random bits.
SLUG_BYTES = 16
PRICE_NOT_USABLE = "price_not_usable"


async def create_link(deps: Deps, tenant: Tenant, params: PaymentLinkCreate) -> PaymentLink:
    """Validate the prices (the tenant's, active, one currency, at most one recurrence:
    a link with recurring prices makes a subscription, so every price must be recurring
    and bill alike) and store the link with its line items."""
    now = deps.clock.now()
    prices = await _usable_prices(deps.pool, tenant, params.line_items)
    after, redirect_url = _after_completion(params.after_completion, tenant)
    limit = params.restrictions.completed_sessions.limit if params.restrictions else None
    row = PaymentLinkRow(
        id=new_id("plink"),
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        slug=secrets.token_urlsafe(SLUG_BYTES),
        active=True,
        currency=prices[0].currency,
        recurring_interval=prices[0].recurring_interval,
        completion_limit=limit,
        reserved_count=0,
        completed_count=0,
        expires_at=_expiry(params.expires_at, now),
        after_completion=after,
        redirect_url=redirect_url,
        metadata=params.metadata,
        created_at=now,
        updated_at=now,
    )
    items = [
        LineItemRow(new_id("li"), row.id, tenant.merchant_id, tenant.livemode, n, p.id, i.quantity)
        for n, (i, p) in enumerate(zip(params.line_items, prices, strict=True))
    ]
    async with deps.pool.acquire() as conn, conn.transaction():
        created = await links_db.insert_link(conn, row, items)
    return await view(deps, created)


async def _usable_prices(
    conn: Executor, tenant: Tenant, items: Sequence[LineItemCreate]
) -> list[PriceRow]:
    prices: list[PriceRow] = []
    for index, item in enumerate(items):
        param = f"line_items[{index}][price]"
        try:
            price = await require_price(conn, tenant, item.price)
        except ResourceMissing as missing:
            raise InvalidRequest(missing.message, param=param, code="resource_missing") from None
        if not price.active:
            raise InvalidRequest(
                f"The price '{price.id}' is archived (active: false).",
                param=param,
                code=PRICE_NOT_USABLE,
            )
        first = prices[0] if prices else price
        if price.currency != first.currency:
            raise InvalidRequest(
                "All prices of a payment link must have the same currency.",
                param=param,
                code=PRICE_NOT_USABLE,
            )
        if (price.type, price.recurring_interval, price.recurring_interval_count) != (
            first.type,
            first.recurring_interval,
            first.recurring_interval_count,
        ):
            raise InvalidRequest(
                "A payment link's prices are all one-time, or all recurring with the same "
                "interval and interval_count (a recurring link makes a subscription).",
                param=param,
                code=PRICE_NOT_USABLE,
            )
        prices.append(price)
    if len({p.id for p in prices}) != len(prices):
        raise InvalidRequest(
            "A payment link names each price at most once (use quantity).",
            param="line_items",
            code=PRICE_NOT_USABLE,
        )
    return prices


def _after_completion(
    params: AfterCompletionParams | None, tenant: Tenant
) -> tuple[AfterCompletion, str | None]:
    if params is None or params.type is AfterCompletion.HOSTED_CONFIRMATION:
        if params is not None and params.redirect is not None:
            raise InvalidRequest(
                "after_completion[redirect] goes with type redirect only.",
                param="after_completion[redirect]",
            )
        return AfterCompletion.HOSTED_CONFIRMATION, None
    if params.redirect is None:
        raise InvalidRequest(
            "after_completion type redirect needs redirect[url].",
            param="after_completion[redirect][url]",
        )
    param = "after_completion[redirect][url]"
    check_redirect_url(params.redirect.url, livemode=tenant.livemode, param=param)
    return AfterCompletion.REDIRECT, params.redirect.url


def _expiry(expires_at: int | None, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at <= now.timestamp():
        raise InvalidRequest("expires_at must be in the future.", param="expires_at")
    try:
        return datetime.fromtimestamp(expires_at, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidRequest("expires_at is not a valid Unix time.", param="expires_at") from None


async def get_link(deps: Deps, tenant: Tenant, link_id: str) -> PaymentLink:
    return await view(deps, await require_link(deps.pool, tenant, link_id))


async def require_link(conn: Executor, tenant: Tenant, link_id: str) -> PaymentLinkRow:
    row = await links_db.get_link(conn, tenant.merchant_id, tenant.livemode, link_id)
    if row is None:
        raise ResourceMissing(f"No such payment_link: '{link_id}'", param="id")
    return row


async def list_links(
    deps: Deps, tenant: Tenant, page: PageRequest, active: bool | None
) -> tuple[list[PaymentLink], bool]:
    rows, has_more = await links_db.list_links(
        deps.pool, tenant.merchant_id, tenant.livemode, page, active
    )
    return await views(deps, rows), has_more


async def update_link(
    deps: Deps, tenant: Tenant, link_id: str, params: PaymentLinkUpdate
) -> PaymentLink:
    """Change only what was sent; a request that changes nothing writes nothing."""
    sent = params.model_fields_set
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await links_db.get_link(conn, tenant.merchant_id, tenant.livemode, link_id, lock=True)
        if row is None:
            raise ResourceMissing(f"No such payment_link: '{link_id}'", param="id")
        changes: dict[str, Any] = {}
        if params.active is not None:
            changes["active"] = params.active
        if params.metadata is not None:
            changes["metadata"] = merged_metadata(row.metadata, params.metadata)
        if "after_completion" in sent and params.after_completion is not None:
            after, url = _after_completion(params.after_completion, tenant)
            changes.update(after_completion=after.value, redirect_url=url)
        if "expires_at" in sent:
            expiry = params.expires_at
            changes["expires_at"] = None if not expiry else _expiry(expiry, deps.clock.now())
        current = {k: getattr(row, k) for k in changes}
        changes = {k: v for k, v in changes.items() if current[k] != v}
        if changes:
            row = await links_db.update_link(conn, row.id, changes, deps.clock.now())
    return await view(deps, row)


def public_url(deps: Deps, row: PaymentLinkRow) -> str:
    return f"{deps.settings.base_url()}/l/{row.slug}"


async def view(deps: Deps, row: PaymentLinkRow) -> PaymentLink:
    return (await views(deps, [row]))[0]


async def views(deps: Deps, rows: Sequence[PaymentLinkRow]) -> list[PaymentLink]:
    """The API objects of these links, their line items' prices included."""
    items = await links_db.line_items(deps.pool, [r.id for r in rows])
    priced = await priced_items(deps.pool, items)
    by_link: dict[str, list[LineItem]] = {}
    for item, price, name in priced:
        by_link.setdefault(item.payment_link_id, []).append(
            LineItem(
                id=item.id,
                price=Price.from_row(price),
                quantity=item.quantity,
                currency=price.currency,
                amount_subtotal=price.unit_amount * item.quantity,
                amount_total=price.unit_amount * item.quantity,
                description=name,
            )
        )
    return [_view(deps, row, by_link.get(row.id, [])) for row in rows]


async def priced_items(
    conn: Executor, items: Sequence[LineItemRow]
) -> list[tuple[LineItemRow, PriceRow, str]]:
    """Each line item with its price and its product's name."""
    result = []
    for item in items:
        tenant = Tenant(item.merchant_id, item.livemode)
        price = await require_price(conn, tenant, item.price_id)
        product = await products_db.get_product(
            conn, item.merchant_id, item.livemode, price.product_id
        )
        result.append((item, price, product.name if product is not None else price.product_id))
    return result


def _view(deps: Deps, row: PaymentLinkRow, items: list[LineItem]) -> PaymentLink:
    limit = row.completion_limit
    redirect = None if row.redirect_url is None else Redirect(url=row.redirect_url)
    return PaymentLink(
        id=row.id,
        active=row.active,
        url=public_url(deps, row),
        currency=row.currency,
        line_items=LineItems(data=items, url=f"/v1/payment_links/{row.id}/line_items"),
        restrictions=None
        if limit is None
        else Restrictions(
            completed_sessions=CompletedSessions(count=row.completed_count, limit=limit)
        ),
        completed_sessions_count=row.completed_count,
        after_completion=AfterCompletionView(type=row.after_completion, redirect=redirect),
        expires_at=unix(row.expires_at),
        metadata=row.metadata,
        livemode=row.livemode,
        created=unix(row.created_at) or 0,
    )


def is_recurring(row: PaymentLinkRow) -> bool:
    return row.recurring_interval is not None


async def completions(deps: Deps, tenant: Tenant, link_id: str) -> list[LinkSessionRow]:
    """The link's completed checkout sessions, newest first (at most 100): each with its
    payment, and for a recurring link its subscription and customer."""
    row = await require_link(deps.pool, tenant, link_id)
    return await link_sessions_db.completions(deps.pool, row.id)
