"""Customer rows."""

from __future__ import annotations

from typing import Any

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page

Row = asyncpg.Record


_SELECT = "SELECT * FROM customers WHERE id = $1 AND merchant_id = $2 AND livemode = $3"
_SELECT_FOR_UPDATE = _SELECT + " FOR UPDATE"


async def insert_customer(
    conn: Connection,
    *,
    customer_id: str,
    merchant_id: str,
    livemode: bool,
    email: str | None,
    name: str | None,
    phone: str | None,
    metadata: dict[str, str],
) -> Row:
    row = await conn.fetchrow(
        "INSERT INTO customers (id, merchant_id, livemode, email, name, phone, metadata)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        customer_id,
        merchant_id,
        livemode,
        email,
        name,
        phone,
        metadata,
    )
    assert row is not None
    return row


async def get_customer(
    conn: Executor, merchant_id: str, livemode: bool, customer_id: str, *, lock: bool = False
) -> Row | None:
    return await conn.fetchrow(
        _SELECT_FOR_UPDATE if lock else _SELECT,
        customer_id,
        merchant_id,
        livemode,
    )


async def update_customer(conn: Connection, customer_id: str, changes: dict[str, Any]) -> Row:
    allowed = {"email", "name", "phone", "metadata"}
    assert set(changes) <= allowed
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
    row = await conn.fetchrow(
        f"UPDATE customers SET {assignments} WHERE id = $1 RETURNING *",
        customer_id,
        *changes.values(),
    )
    assert row is not None
    return row


async def mark_deleted(conn: Connection, customer_id: str) -> Row:
    row = await conn.fetchrow(
        "UPDATE customers SET deleted_at = now() WHERE id = $1 RETURNING *", customer_id
    )
    assert row is not None
    return row


async def list_customers(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest, email: str | None
) -> tuple[list[Row], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.clauses.append("deleted_at IS NULL")
    filters.add_if("email = $?", email)
    return await fetch_page(conn, "customers", filters, page)


async def connector_reference(
    conn: Executor, customer_id: str, connector_account_id: str
) -> str | None:
    """The provider's id for this customer at one connector account, if made yet."""
    value = await conn.fetchval(
        "SELECT reference FROM connector_customers"
        " WHERE customer_id = $1 AND connector_account_id = $2",
        customer_id,
        connector_account_id,
    )
    return None if value is None else str(value)


async def save_connector_reference(
    conn: Executor, customer_id: str, connector_account_id: str, reference: str
) -> str:
    """Keep the first reference saved (a concurrent creator's wins; the provider's
    idempotency key made both the same customer anyway)."""
    value = await conn.fetchval(
        "INSERT INTO connector_customers (customer_id, connector_account_id, reference)"
        " VALUES ($1, $2, $3) ON CONFLICT (customer_id, connector_account_id)"
        " DO UPDATE SET reference = connector_customers.reference RETURNING reference",
        customer_id,
        connector_account_id,
        reference,
    )
    return str(value)


async def merchant_of(conn: Executor, customer_id: str) -> str | None:
    """The merchant a customer belongs to (operator tools that get only the id)."""
    value = await conn.fetchval("SELECT merchant_id FROM customers WHERE id = $1", customer_id)
    return None if value is None else str(value)
