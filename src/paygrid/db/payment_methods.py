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


async def set_customer(conn: Executor, pm_id: str, customer_id: str | None) -> Row:
    row = await conn.fetchrow(
        "UPDATE payment_methods SET customer_id = $2 WHERE id = $1 RETURNING *", pm_id, customer_id
    )
    assert row is not None
    return row


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
