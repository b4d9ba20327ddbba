"""Customer rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """One ``customers`` row; ``deleted_at`` is set once it is (softly) deleted."""

    id: str
    merchant_id: str
    livemode: bool
    email: str | None
    name: str | None
    phone: str | None
    metadata: dict[str, str]
    created_at: datetime
    deleted_at: datetime | None
    test_clock_id: str | None  # the test clock it runs on, set only at creation
    # What invoices charge off-session (docs/billing.md); cleared when it is detached.
    default_payment_method_id: str | None = None

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> CustomerRow:
        return cls(
            id=record["id"],
            merchant_id=record["merchant_id"],
            livemode=record["livemode"],
            email=record["email"],
            name=record["name"],
            phone=record["phone"],
            metadata=record["metadata"],
            created_at=record["created_at"],
            deleted_at=record["deleted_at"],
            test_clock_id=record["test_clock_id"],
            default_payment_method_id=record["default_payment_method_id"],
        )

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


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
    test_clock_id: str | None = None,
) -> CustomerRow:
    record = await conn.fetchrow(
        "INSERT INTO customers"
        " (id, merchant_id, livemode, email, name, phone, metadata, test_clock_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        customer_id,
        merchant_id,
        livemode,
        email,
        name,
        phone,
        metadata,
        test_clock_id,
    )
    assert record is not None
    return CustomerRow.from_record(record)


async def get_customer(
    conn: Executor, merchant_id: str, livemode: bool, customer_id: str, *, lock: bool = False
) -> CustomerRow | None:
    record = await conn.fetchrow(
        _SELECT_FOR_UPDATE if lock else _SELECT,
        customer_id,
        merchant_id,
        livemode,
    )
    return None if record is None else CustomerRow.from_record(record)


async def update_customer(
    conn: Connection, customer_id: str, changes: dict[str, Any]
) -> CustomerRow:
    allowed = {"email", "name", "phone", "metadata", "default_payment_method_id"}
    assert set(changes) <= allowed
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
    record = await conn.fetchrow(
        f"UPDATE customers SET {assignments} WHERE id = $1 RETURNING *",
        customer_id,
        *changes.values(),
    )
    assert record is not None
    return CustomerRow.from_record(record)


async def clear_default_method(conn: Connection, pm_id: str) -> CustomerRow | None:
    """Stop ``pm_id`` being its customer's default; the customer if it was."""
    record = await conn.fetchrow(
        "UPDATE customers SET default_payment_method_id = NULL"
        " WHERE default_payment_method_id = $1 RETURNING *",
        pm_id,
    )
    return None if record is None else CustomerRow.from_record(record)


async def mark_deleted(conn: Connection, customer_id: str, now: datetime) -> CustomerRow:
    """Soft delete at ``now`` (the caller's clock)."""
    record = await conn.fetchrow(
        "UPDATE customers SET deleted_at = $2 WHERE id = $1 RETURNING *", customer_id, now
    )
    assert record is not None
    return CustomerRow.from_record(record)


async def list_customers(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest, email: str | None
) -> tuple[list[CustomerRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.clauses.append("deleted_at IS NULL")
    filters.add_if("email = $?", email)
    records, has_more = await fetch_page(conn, "customers", filters, page)
    return [CustomerRow.from_record(r) for r in records], has_more


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
