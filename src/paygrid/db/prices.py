"""Price rows: a product's unit amount in one currency, one-time or recurring. The amount,
currency, product and recurrence are written once; only ``active``, ``nickname``,
``lookup_key`` and ``metadata`` are ever updated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.domain.catalog import PriceType, RecurringInterval

# The partial unique index on a tenant's active lookup keys (migration 0015).
ACTIVE_LOOKUP_KEY_INDEX = "prices_active_lookup_key"
UPDATABLE = frozenset({"active", "nickname", "lookup_key", "metadata"})


@dataclass(frozen=True, slots=True)
class PriceRow:
    """One ``prices`` row; both recurrence columns are set exactly when ``type`` is
    ``recurring``."""

    id: str
    merchant_id: str
    livemode: bool
    product_id: str
    currency: str
    unit_amount: int
    type: PriceType
    recurring_interval: RecurringInterval | None
    recurring_interval_count: int | None
    active: bool
    lookup_key: str | None
    nickname: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> PriceRow:
        interval = record["recurring_interval"]
        return cls(
            id=record["id"],
            merchant_id=record["merchant_id"],
            livemode=record["livemode"],
            product_id=record["product_id"],
            currency=record["currency"],
            unit_amount=record["unit_amount"],
            type=PriceType(record["type"]),
            recurring_interval=None if interval is None else RecurringInterval(interval),
            recurring_interval_count=record["recurring_interval_count"],
            active=record["active"],
            lookup_key=record["lookup_key"],
            nickname=record["nickname"],
            metadata=record["metadata"],
            created_at=record["created_at"],
            updated_at=record["updated_at"],
        )


_SELECT = "SELECT * FROM prices WHERE id = $1 AND merchant_id = $2 AND livemode = $3"


async def insert_price(conn: Connection, row: PriceRow) -> PriceRow:
    """Insert a price; a lookup key another active price holds raises
    ``asyncpg.UniqueViolationError`` on ``ACTIVE_LOOKUP_KEY_INDEX``."""
    record = await conn.fetchrow(
        "INSERT INTO prices (id, merchant_id, livemode, product_id, currency, unit_amount,"
        " type, recurring_interval, recurring_interval_count, active, lookup_key, nickname,"
        " metadata, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        " RETURNING *",
        row.id,
        row.merchant_id,
        row.livemode,
        row.product_id,
        row.currency,
        row.unit_amount,
        row.type.value,
        None if row.recurring_interval is None else row.recurring_interval.value,
        row.recurring_interval_count,
        row.active,
        row.lookup_key,
        row.nickname,
        row.metadata,
        row.created_at,
        row.updated_at,
    )
    assert record is not None
    return PriceRow.from_record(record)


async def get_price(
    conn: Executor, merchant_id: str, livemode: bool, price_id: str, *, lock: bool = False
) -> PriceRow | None:
    record = await conn.fetchrow(
        _SELECT + (" FOR UPDATE" if lock else ""), price_id, merchant_id, livemode
    )
    return None if record is None else PriceRow.from_record(record)


async def update_price(
    conn: Connection, price_id: str, changes: dict[str, Any], now: datetime
) -> PriceRow:
    """Change the mutable columns named in ``changes`` (the same unique-index error as
    ``insert_price`` when an activated price or a new lookup key collides)."""
    assert set(changes) <= UPDATABLE
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=3))
    record = await conn.fetchrow(
        f"UPDATE prices SET updated_at = $2, {assignments} WHERE id = $1 RETURNING *",
        price_id,
        now,
        *changes.values(),
    )
    assert record is not None
    return PriceRow.from_record(record)


async def release_lookup_key(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    lookup_key: str,
    now: datetime,
    *,
    keep: str | None = None,
) -> list[PriceRow]:
    """Take ``lookup_key`` off the tenant's active price that holds it (other than
    ``keep``), for a transfer; returns the prices changed."""
    records = await conn.fetch(
        "UPDATE prices SET lookup_key = NULL, updated_at = $4"
        " WHERE merchant_id = $1 AND livemode = $2 AND lookup_key = $3 AND active"
        " AND id IS DISTINCT FROM $5 RETURNING *",
        merchant_id,
        livemode,
        lookup_key,
        now,
        keep,
    )
    return [PriceRow.from_record(r) for r in records]


@dataclass(frozen=True, slots=True)
class PriceFilters:
    """What a price list may be narrowed to; ``None`` (or empty) filters nothing."""

    product_id: str | None = None
    active: bool | None = None
    currency: str | None = None
    type: PriceType | None = None
    lookup_keys: tuple[str, ...] = ()


async def list_prices(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest, wanted: PriceFilters
) -> tuple[list[PriceRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("product_id = $?", wanted.product_id)
    filters.add_if("active = $?", wanted.active)
    filters.add_if("currency = $?", wanted.currency)
    filters.add_if("type = $?", None if wanted.type is None else wanted.type.value)
    if wanted.lookup_keys:
        filters.add("lookup_key = ANY($?::text[])", list(wanted.lookup_keys))
    records, has_more = await fetch_page(conn, "prices", filters, page)
    return [PriceRow.from_record(r) for r in records], has_more
