"""Saved payment methods: tokens from a connector plus display details (never the PAN)."""

from __future__ import annotations

from typing import Any

import asyncpg

from paygrid.db.executor import Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.db.statements import Statement

Row = asyncpg.Record


async def insert_payment_method(
    conn: Executor,
    *,
    pm_id: str,
    merchant_id: str,
    livemode: bool,
    customer_id: str | None,
    brand: str,
    last4: str,
    exp_month: int,
    exp_year: int,
    connector: str,
    reference: str,
    metadata: dict[str, str],
) -> Row:
    row = await conn.fetchrow(
        "INSERT INTO payment_methods (id, merchant_id, livemode, customer_id, type, card_brand,"
        " card_last4, card_exp_month, card_exp_year, connector, connector_reference, metadata)"
        " VALUES ($1, $2, $3, $4, 'card', $5, $6, $7, $8, $9, $10, $11) RETURNING *",
        pm_id,
        merchant_id,
        livemode,
        customer_id,
        brand,
        last4,
        exp_month,
        exp_year,
        connector,
        reference,
        metadata,
    )
    assert row is not None
    return row


async def get_payment_method(
    conn: Executor, merchant_id: str, livemode: bool, pm_id: str
) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM payment_methods WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        pm_id,
        merchant_id,
        livemode,
    )


async def get_for_payment(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    pm_id: str,
    *,
    payment_id: str | None,
    idempotency_key: str | None,
) -> Row | None:
    """The method a payment is to use, with ``used_by_other_payment``: it is unattached and
    another payment already holds it or made an attempt with it. "Another" is any payment
    but ``payment_id`` (a confirm) or the one created with ``idempotency_key`` (a create
    resumed after a crash). The same one query as before, so the payment path pays no extra
    round trip."""
    return await conn.fetchrow(
        "SELECT pm.*, pm.customer_id IS NULL AND EXISTS (SELECT 1 FROM payments p"
        "  WHERE p.id IN (SELECT x.id FROM payments x WHERE x.payment_method_id = pm.id"
        "   UNION SELECT a.payment_id FROM payment_attempts a WHERE a.payment_method_id = pm.id)"
        "  AND p.id IS DISTINCT FROM $4"
        "  AND ($5::text IS NULL OR p.idempotency_key IS DISTINCT FROM $5))"
        " AS used_by_other_payment"
        " FROM payment_methods pm WHERE pm.id = $1 AND pm.merchant_id = $2 AND pm.livemode = $3",
        pm_id,
        merchant_id,
        livemode,
        payment_id,
        idempotency_key,
    )


async def attach(conn: Executor, pm_id: str, customer_id: str) -> Row | None:
    """Attach to ``customer_id`` unless another customer holds it (``None`` then)."""
    return await conn.fetchrow(
        "UPDATE payment_methods SET customer_id = $2, detached_at = NULL"
        " WHERE id = $1 AND (customer_id IS NULL OR customer_id = $2) RETURNING *",
        pm_id,
        customer_id,
    )


async def detach(conn: Executor, pm_id: str) -> Row | None:
    """Detach from its customer; ``None`` when it was not attached."""
    return await conn.fetchrow(
        "UPDATE payment_methods SET customer_id = NULL, detached_at = now()"
        " WHERE id = $1 AND customer_id IS NOT NULL RETURNING *",
        pm_id,
    )


async def detach_all(conn: Executor, customer_id: str) -> list[Row]:
    """Detach every method of a customer (deleted or erased), in the caller's transaction."""
    return list(
        await conn.fetch(
            "UPDATE payment_methods SET customer_id = NULL, detached_at = now()"
            " WHERE customer_id = $1 RETURNING *",
            customer_id,
        )
    )


async def list_payment_methods(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest, customer_id: str | None
) -> tuple[list[Row], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("customer_id = $?", customer_id)
    return await fetch_page(conn, "payment_methods", filters, page)


async def insert_row(conn: Executor, row: dict[str, Any]) -> None:
    """Insert a payment method built in Python (``services.payment_methods.new_method_row``)."""
    statement = Statement()
    statement.insert("m", "payment_methods", row)
    await conn.execute(statement.sql("SELECT 1"), *statement.args)
