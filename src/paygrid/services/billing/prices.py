"""Prices: create, retrieve, update (only ``active``, ``nickname``, ``lookup_key`` and
``metadata``), and list with Stripe's filters. A price's currency must be one paygrid can
charge in the price's mode; its lookup key is unique among the tenant's active prices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from paygrid.db import prices as prices_db
from paygrid.db import routing_rules as rules_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import PageRequest
from paygrid.db.prices import ACTIVE_LOOKUP_KEY_INDEX, PriceFilters, PriceRow
from paygrid.dependencies import Deps
from paygrid.domain.catalog import PriceType
from paygrid.domain.errors import (
    InvalidAmount,
    InvalidRequest,
    PaygridError,
    ResourceMissing,
    UnsupportedCurrency,
)
from paygrid.domain.events import EventType
from paygrid.ids import new_id
from paygrid.money import Currency, get_currency
from paygrid.schemas.catalog import Price, PriceCreate, PriceUpdate
from paygrid.services.billing.products import merged_metadata, require_product
from paygrid.services.context import Tenant
from paygrid.services.snapshots import emit_object


class LookupKeyInUse(PaygridError):
    """Another active price has this lookup key; pass transfer_lookup_key=true to move it."""

    status_code = 409
    error_type = "invalid_request_error"
    default_code = "lookup_key_in_use"


async def create_price(deps: Deps, tenant: Tenant, params: PriceCreate) -> Price:
    """Create a price of one of the tenant's products, with ``price.created`` (and
    ``price.updated`` for a price whose lookup key it takes with ``transfer_lookup_key``)."""
    currency = get_currency(params.currency)
    _check_unit_amount(params.unit_amount, currency)
    now = deps.clock.now()
    recurring = params.recurring
    async with deps.pool.acquire() as conn, conn.transaction():
        # Key share: a concurrent delete of the product waits for this price, then sees
        # it; a product deleted first is missing here.
        product = await _referenced_product(conn, tenant, params.product)
        await _require_chargeable(conn, tenant, currency)
        if params.lookup_key is not None and params.transfer_lookup_key and params.active:
            await _release(conn, tenant, params.lookup_key, now, keep=None)
        row = PriceRow(
            id=new_id("price"),
            merchant_id=tenant.merchant_id,
            livemode=tenant.livemode,
            product_id=product,
            currency=currency.code,
            unit_amount=params.unit_amount,
            type=PriceType.ONE_TIME if recurring is None else PriceType.RECURRING,
            recurring_interval=None if recurring is None else recurring.interval,
            recurring_interval_count=None if recurring is None else recurring.interval_count,
            active=params.active,
            lookup_key=params.lookup_key,
            nickname=params.nickname or None,
            metadata=params.metadata,
            created_at=now,
            updated_at=now,
        )
        async with _lookup_key_guard(params.lookup_key):
            created = await prices_db.insert_price(conn, row)
        return await _emit(conn, created, EventType.PRICE_CREATED)


async def get_price(deps: Deps, tenant: Tenant, price_id: str) -> Price:
    """One of the tenant's prices; another merchant's or mode's is missing (404)."""
    return Price.from_row(await require_price(deps.pool, tenant, price_id))


async def update_price(deps: Deps, tenant: Tenant, price_id: str, params: PriceUpdate) -> Price:
    """Change the mutable fields sent and emit ``price.updated``; a request that changes
    nothing writes nothing. Activating a price, or giving it a lookup key, that another
    active price holds is ``lookup_key_in_use`` unless ``transfer_lookup_key``."""
    sent = params.model_dump(exclude_unset=True)
    now = deps.clock.now()
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await require_price(conn, tenant, price_id, lock=True)
        changes = _changes(row, sent)
        if not changes:
            return Price.from_row(row)
        key = changes.get("lookup_key", row.lookup_key)
        if (
            params.transfer_lookup_key
            and isinstance(key, str)
            and changes.get("active", row.active)
        ):
            await _release(conn, tenant, key, now, keep=row.id)
        async with _lookup_key_guard(key):
            updated = await prices_db.update_price(conn, row.id, changes, now)
        return await _emit(conn, updated, EventType.PRICE_UPDATED)


def _changes(row: PriceRow, sent: dict[str, object]) -> dict[str, object]:
    changes: dict[str, object] = {}
    if sent.get("active") is not None:
        changes["active"] = sent["active"]
    for name in ("nickname", "lookup_key"):
        if name in sent:
            changes[name] = sent[name] or None  # "" or null removes it
    if sent.get("metadata") is not None:
        metadata = sent["metadata"]
        assert isinstance(metadata, dict)
        changes["metadata"] = merged_metadata(row.metadata, metadata)
    current: dict[str, object] = {
        "active": row.active,
        "nickname": row.nickname,
        "lookup_key": row.lookup_key,
        "metadata": row.metadata,
    }
    return {k: v for k, v in changes.items() if current[k] != v}


@dataclass(frozen=True, slots=True)
class PriceQuery:
    """The filters of ``GET /v1/prices``, as sent (the currency in either case)."""

    product: str | None = None
    active: bool | None = None
    currency: str | None = None
    type: PriceType | None = None
    lookup_keys: tuple[str, ...] = ()


async def list_prices(
    deps: Deps, tenant: Tenant, page: PageRequest, query: PriceQuery
) -> tuple[list[Price], bool]:
    """A page of the tenant's prices, newest first, narrowed by Stripe's filters."""
    currency = None if query.currency is None else get_currency(query.currency).code
    wanted = PriceFilters(query.product, query.active, currency, query.type, query.lookup_keys)
    rows, has_more = await prices_db.list_prices(
        deps.pool, tenant.merchant_id, tenant.livemode, page, wanted
    )
    return [Price.from_row(r) for r in rows], has_more


async def require_price(
    conn: Executor, tenant: Tenant, price_id: str, *, lock: bool = False
) -> PriceRow:
    """The tenant's price, or ``ResourceMissing`` naming it."""
    row = await prices_db.get_price(conn, tenant.merchant_id, tenant.livemode, price_id, lock=lock)
    if row is None:
        raise ResourceMissing(f"No such price: '{price_id}'", param="id")
    return row


async def _referenced_product(conn: Connection, tenant: Tenant, product_id: str) -> str:
    try:
        row = await require_product(conn, tenant, product_id, lock="key share")
    except ResourceMissing:
        raise InvalidRequest(
            f"No such product: '{product_id}'", param="product", code="resource_missing"
        ) from None
    return row.id


def _check_unit_amount(unit_amount: int, currency: Currency) -> None:
    """Positive (the schema's rule) and at most what a payment in the currency may be.
    Not the currency's minimum charge: an invoice sums quantities and lines."""
    if unit_amount > currency.max_amount:
        raise InvalidAmount(
            f"unit_amount must be at most {currency.max_amount} (minor units of {currency.code}).",
            param="unit_amount",
            code="amount_too_large",
        )


async def _require_chargeable(conn: Executor, tenant: Tenant, currency: Currency) -> None:
    """Test mode charges any of paygrid's currencies (the simulator takes them all when no
    account does); live mode needs an enabled connector account declaring the currency."""
    if not tenant.livemode:
        return
    accounts, _ = await rules_db.routing_inputs(conn, tenant.merchant_id, tenant.livemode)
    if not any(currency.code in account.currencies for account in accounts):
        raise UnsupportedCurrency(
            f"No enabled live-mode connector account processes {currency.code}; add it to "
            "an account's currencies at /v1/connector_accounts first.",
            param="currency",
        )


async def _release(
    conn: Connection, tenant: Tenant, lookup_key: str, now: datetime, *, keep: str | None
) -> None:
    released = await prices_db.release_lookup_key(
        conn, tenant.merchant_id, tenant.livemode, lookup_key, now, keep=keep
    )
    for price in released:
        await _emit(conn, price, EventType.PRICE_UPDATED)


@asynccontextmanager
async def _lookup_key_guard(lookup_key: object) -> AsyncIterator[None]:
    """Turn the unique index's refusal of a lookup key into ``lookup_key_in_use``."""
    try:
        yield
    except asyncpg.UniqueViolationError as error:
        if error.constraint_name != ACTIVE_LOOKUP_KEY_INDEX:
            raise
        raise LookupKeyInUse(
            f"An active price already has the lookup key '{lookup_key}'. Pass "
            "transfer_lookup_key=true to move it to this price, or archive that price.",
            param="lookup_key",
        ) from None


async def _emit(conn: Connection, row: PriceRow, event: EventType) -> Price:
    view = Price.from_row(row)
    await emit_object(conn, row, event, view.model_dump(mode="json"))
    return view
