"""Product rows: what a merchant sells (the catalog; prices name them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page


@dataclass(frozen=True, slots=True)
class ProductRow:
    """One ``products`` row."""

    id: str
    merchant_id: str
    livemode: bool
    name: str
    description: str | None
    active: bool
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> ProductRow:
        return cls(
            id=record["id"],
            merchant_id=record["merchant_id"],
            livemode=record["livemode"],
            name=record["name"],
            description=record["description"],
            active=record["active"],
            metadata=record["metadata"],
            created_at=record["created_at"],
            updated_at=record["updated_at"],
        )


_SELECT = "SELECT * FROM products WHERE id = $1 AND merchant_id = $2 AND livemode = $3"
# ``update``: changing or deleting it; ``key share``: a price being written names it, which
# a concurrent delete must wait for (and a deleted product is then not found).
_LOCKS = {"update": " FOR UPDATE", "key share": " FOR KEY SHARE"}
UPDATABLE = frozenset({"name", "description", "active", "metadata"})


async def insert_product(conn: Connection, row: ProductRow) -> ProductRow:
    record = await conn.fetchrow(
        "INSERT INTO products (id, merchant_id, livemode, name, description, active,"
        " metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " RETURNING *",
        row.id,
        row.merchant_id,
        row.livemode,
        row.name,
        row.description,
        row.active,
        row.metadata,
        row.created_at,
        row.updated_at,
    )
    assert record is not None
    return ProductRow.from_record(record)


async def get_product(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    product_id: str,
    *,
    lock: str | None = None,
) -> ProductRow | None:
    """A tenant's product; ``lock`` is ``"update"`` or ``"key share"``."""
    sql = _SELECT + ("" if lock is None else _LOCKS[lock])
    record = await conn.fetchrow(sql, product_id, merchant_id, livemode)
    return None if record is None else ProductRow.from_record(record)


async def update_product(
    conn: Connection, product_id: str, changes: dict[str, Any], now: datetime
) -> ProductRow:
    assert set(changes) <= UPDATABLE
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=3))
    record = await conn.fetchrow(
        f"UPDATE products SET updated_at = $2, {assignments} WHERE id = $1 RETURNING *",
        product_id,
        now,
        *changes.values(),
    )
    assert record is not None
    return ProductRow.from_record(record)


async def delete_product(conn: Connection, product_id: str) -> bool:
    """Delete a product no price names (the foreign key from ``prices`` refuses others)."""
    deleted = await conn.fetchval("DELETE FROM products WHERE id = $1 RETURNING id", product_id)
    return deleted is not None


async def has_prices(conn: Executor, product_id: str) -> bool:
    value = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM prices WHERE product_id = $1)", product_id
    )
    return bool(value)


async def list_products(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest, active: bool | None
) -> tuple[list[ProductRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("active = $?", active)
    records, has_more = await fetch_page(conn, "products", filters, page)
    return [ProductRow.from_record(r) for r in records], has_more
