"""Refund rows: append-only money movements against a payment."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page

Row = asyncpg.Record


async def insert_refund(
    conn: Connection,
    *,
    refund_id: str,
    merchant_id: str,
    livemode: bool,
    payment_id: str,
    amount: int,
    currency: str,
    reason: str | None,
    metadata: dict[str, str],
    idempotency_key: str | None,
) -> Row:
    row = await conn.fetchrow(
        "INSERT INTO refunds (id, merchant_id, livemode, payment_id, amount, currency, status,"
        " reason, metadata, idempotency_key)"
        " VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9) RETURNING *",
        refund_id,
        merchant_id,
        livemode,
        payment_id,
        amount,
        currency,
        reason,
        metadata,
        idempotency_key,
    )
    assert row is not None
    return row


async def find_by_idempotency_key(conn: Executor, payment_id: str, key: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM refunds WHERE payment_id = $1 AND idempotency_key = $2", payment_id, key
    )


async def finish_refund(
    conn: Connection,
    refund_id: str,
    *,
    status: str,
    provider_reference: str | None,
    failure_reason: str | None,
    forget_idempotency_key: bool = False,
) -> Row | None:
    return await conn.fetchrow(
        "UPDATE refunds SET status = $2, provider_reference = coalesce($3, provider_reference),"
        " failure_reason = $4, next_sync_at = NULL,"
        " idempotency_key = CASE WHEN $5 THEN NULL ELSE idempotency_key END"
        " WHERE id = $1 AND status = 'pending' RETURNING *",
        refund_id,
        status,
        provider_reference,
        failure_reason,
        forget_idempotency_key,
    )


async def mark_accepted(
    conn: Connection, refund_id: str, *, provider_reference: str | None, next_sync_at: datetime
) -> Row | None:
    """A refund the provider accepted but has not settled: keep its reference and schedule
    status sync (a webhook usually settles it first)."""
    return await conn.fetchrow(
        "UPDATE refunds SET provider_reference = $2, next_sync_at = $3"
        " WHERE id = $1 AND status = 'pending' RETURNING *",
        refund_id,
        provider_reference,
        next_sync_at,
    )


async def find_by_provider_reference(
    conn: Executor, connector_account_id: str, refund_reference: str
) -> Row | None:
    """A refund by the provider's id, among the payments of one connector account."""
    return await conn.fetchrow(
        "SELECT r.* FROM refunds r JOIN payments p ON p.id = r.payment_id"
        " WHERE r.provider_reference = $1 AND p.connector_account_id = $2",
        refund_reference,
        connector_account_id,
    )


async def get_refund(
    conn: Executor, merchant_id: str, livemode: bool, refund_id: str
) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM refunds WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        refund_id,
        merchant_id,
        livemode,
    )


async def list_refunds(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest, payment_id: str | None
) -> tuple[list[Row], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("payment_id = $?", payment_id)
    return await fetch_page(conn, "refunds", filters, page)
