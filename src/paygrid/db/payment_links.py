"""Payment link rows and their line items. The checkout sessions opened from a link, and
the completion slots they take, are ``paygrid.db.payment_link_sessions``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.domain.catalog import RecurringInterval
from paygrid.domain.payment_links import AfterCompletion

UPDATABLE = frozenset({"active", "metadata", "after_completion", "redirect_url", "expires_at"})


@dataclass(frozen=True, slots=True)
class PaymentLinkRow:
    """One ``payment_links`` row."""

    id: str
    merchant_id: str
    livemode: bool
    slug: str
    active: bool
    currency: str
    recurring_interval: RecurringInterval | None
    completion_limit: int | None
    reserved_count: int
    completed_count: int
    expires_at: datetime | None
    after_completion: AfterCompletion
    redirect_url: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> PaymentLinkRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        interval = record["recurring_interval"]
        return cls(
            **{
                **values,
                "recurring_interval": None if interval is None else RecurringInterval(interval),
                "after_completion": AfterCompletion(record["after_completion"]),
            }
        )


@dataclass(frozen=True, slots=True)
class LineItemRow:
    """One ``payment_link_line_items`` row: a price and how many."""

    id: str
    payment_link_id: str
    merchant_id: str
    livemode: bool
    position: int
    price_id: str
    quantity: int

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> LineItemRow:
        return cls(**{f.name: record[f.name] for f in fields(cls)})


def _link(record: asyncpg.Record | None) -> PaymentLinkRow | None:
    return None if record is None else PaymentLinkRow.from_record(record)


async def insert_link(
    conn: Connection, row: PaymentLinkRow, items: Sequence[LineItemRow]
) -> PaymentLinkRow:
    columns = [f.name for f in fields(row)]
    values = [getattr(row, c) for c in columns]
    values = [
        v.value if c == "recurring_interval" and v is not None else v
        for c, v in zip(columns, values, strict=True)
    ]
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    record = await conn.fetchrow(
        f"INSERT INTO payment_links ({', '.join(columns)}) VALUES ({params}) RETURNING *",
        *values,
    )
    await conn.executemany(
        "INSERT INTO payment_link_line_items"
        " (id, payment_link_id, merchant_id, livemode, position, price_id, quantity)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            (i.id, i.payment_link_id, i.merchant_id, i.livemode, i.position, i.price_id, i.quantity)
            for i in items
        ],
    )
    assert record is not None
    return PaymentLinkRow.from_record(record)


async def get_link(
    conn: Executor, merchant_id: str, livemode: bool, link_id: str, *, lock: bool = False
) -> PaymentLinkRow | None:
    return _link(
        await conn.fetchrow(
            "SELECT * FROM payment_links WHERE id = $1 AND merchant_id = $2 AND livemode = $3"
            + (" FOR UPDATE" if lock else ""),
            link_id,
            merchant_id,
            livemode,
        )
    )


async def get_link_by_slug(conn: Executor, slug: str) -> PaymentLinkRow | None:
    """By its public slug alone: the customer's browser carries no key."""
    return _link(await conn.fetchrow("SELECT * FROM payment_links WHERE slug = $1", slug))


async def get_link_unscoped(conn: Executor, link_id: str) -> PaymentLinkRow | None:
    return _link(await conn.fetchrow("SELECT * FROM payment_links WHERE id = $1", link_id))


async def list_links(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest, active: bool | None
) -> tuple[list[PaymentLinkRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("active = $?", active)
    records, has_more = await fetch_page(conn, "payment_links", filters, page)
    return [PaymentLinkRow.from_record(r) for r in records], has_more


async def line_items(conn: Executor, link_ids: Sequence[str]) -> list[LineItemRow]:
    """The line items of these links, in each link's order."""
    records = await conn.fetch(
        "SELECT * FROM payment_link_line_items WHERE payment_link_id = ANY($1::text[])"
        " ORDER BY payment_link_id, position",
        list(link_ids),
    )
    return [LineItemRow.from_record(r) for r in records]


async def update_link(
    conn: Connection, link_id: str, changes: dict[str, Any], now: datetime
) -> PaymentLinkRow:
    assert set(changes) <= UPDATABLE
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=3))
    record = await conn.fetchrow(
        f"UPDATE payment_links SET updated_at = $2, {assignments} WHERE id = $1 RETURNING *",
        link_id,
        now,
        *changes.values(),
    )
    assert record is not None
    return PaymentLinkRow.from_record(record)
