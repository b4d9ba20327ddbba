"""Refund rows: append-only money movements against a payment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.domain.refunds import RefundStatus


@dataclass(frozen=True, slots=True)
class RefundRow:
    """One ``refunds`` row."""

    id: str
    merchant_id: str
    livemode: bool
    payment_id: str
    amount: int
    currency: str
    status: RefundStatus
    reason: str | None
    metadata: dict[str, str]
    failure_reason: str | None
    provider_reference: str | None
    idempotency_key: str | None
    next_sync_at: datetime | None
    created_at: datetime
    # Settlements (docs/settlements.md): signed as in the balance (a refund's net is < 0).
    fee: int | None = None
    net: int | None = None

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> RefundRow:
        return cls(
            id=record["id"],
            merchant_id=record["merchant_id"],
            livemode=record["livemode"],
            payment_id=record["payment_id"],
            amount=record["amount"],
            currency=record["currency"],
            status=RefundStatus(record["status"]),
            reason=record["reason"],
            metadata=record["metadata"],
            failure_reason=record["failure_reason"],
            provider_reference=record["provider_reference"],
            idempotency_key=record["idempotency_key"],
            next_sync_at=record["next_sync_at"],
            created_at=record["created_at"],
            fee=record.get("fee"),
            net=record.get("net"),
        )


def _row(record: asyncpg.Record | None) -> RefundRow | None:
    return None if record is None else RefundRow.from_record(record)


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
    created_at: datetime,
) -> RefundRow:
    """A new refund, ``pending`` until the provider answers, created at ``created_at`` (the
    caller's clock)."""
    record = await conn.fetchrow(
        "INSERT INTO refunds (id, merchant_id, livemode, payment_id, amount, currency, status,"
        " reason, metadata, idempotency_key, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *",
        refund_id,
        merchant_id,
        livemode,
        payment_id,
        amount,
        currency,
        RefundStatus.PENDING,
        reason,
        metadata,
        idempotency_key,
        created_at,
    )
    assert record is not None
    return RefundRow.from_record(record)


async def find_by_idempotency_key(conn: Executor, payment_id: str, key: str) -> RefundRow | None:
    return _row(
        await conn.fetchrow(
            "SELECT * FROM refunds WHERE payment_id = $1 AND idempotency_key = $2", payment_id, key
        )
    )


async def finish_refund(
    conn: Connection,
    refund_id: str,
    *,
    status: RefundStatus,
    provider_reference: str | None,
    failure_reason: str | None,
    forget_idempotency_key: bool = False,
) -> RefundRow | None:
    """pending -> ``status``; ``None`` when the refund was no longer pending."""
    return _row(
        await conn.fetchrow(
            "UPDATE refunds SET status = $2, provider_reference = coalesce($3, provider_reference),"
            " failure_reason = $4, next_sync_at = NULL,"
            " idempotency_key = CASE WHEN $5 THEN NULL ELSE idempotency_key END"
            " WHERE id = $1 AND status = $6 RETURNING *",
            refund_id,
            status,
            provider_reference,
            failure_reason,
            forget_idempotency_key,
            RefundStatus.PENDING,
        )
    )


async def mark_accepted(
    conn: Connection, refund_id: str, *, provider_reference: str | None, next_sync_at: datetime
) -> RefundRow | None:
    """A refund the provider accepted but has not settled: keep its reference and schedule
    status sync (a webhook usually settles it first)."""
    return _row(
        await conn.fetchrow(
            "UPDATE refunds SET provider_reference = $2, next_sync_at = $3"
            " WHERE id = $1 AND status = $4 RETURNING *",
            refund_id,
            provider_reference,
            next_sync_at,
            RefundStatus.PENDING,
        )
    )


async def attach_lost_reference(
    conn: Connection,
    *,
    refund_id: str,
    merchant_id: str,
    livemode: bool,
    payment_id: str,
    provider_reference: str,
    amount: int | None,
    next_sync_at: datetime,
) -> RefundRow | None:
    """Give a refund whose provider answer was lost the provider's id (found at the provider
    afterwards) and schedule status sync, as ``mark_accepted`` leaves an accepted refund.
    Only that merchant's refund of that payment, still pending without a reference (and of
    ``amount``, when given) changes; ``None`` otherwise."""
    return _row(
        await conn.fetchrow(
            "UPDATE refunds SET provider_reference = $5, next_sync_at = $7"
            " WHERE id = $1 AND merchant_id = $2 AND livemode = $3 AND payment_id = $4"
            " AND status = $8 AND provider_reference IS NULL"
            " AND ($6::bigint IS NULL OR amount = $6::bigint) RETURNING *",
            refund_id,
            merchant_id,
            livemode,
            payment_id,
            provider_reference,
            amount,
            next_sync_at,
            RefundStatus.PENDING,
        )
    )


async def find_by_provider_reference(
    conn: Executor, connector_account_id: str, refund_reference: str
) -> RefundRow | None:
    """A refund by the provider's id, among the payments of one connector account."""
    return _row(
        await conn.fetchrow(
            "SELECT r.* FROM refunds r JOIN payments p ON p.id = r.payment_id"
            " WHERE r.provider_reference = $1 AND p.connector_account_id = $2",
            refund_reference,
            connector_account_id,
        )
    )


async def get_refund(
    conn: Executor, merchant_id: str, livemode: bool, refund_id: str
) -> RefundRow | None:
    return _row(
        await conn.fetchrow(
            "SELECT * FROM refunds WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
            refund_id,
            merchant_id,
            livemode,
        )
    )


async def refund_id_taken(conn: Executor, refund_id: str) -> bool:
    """Whether any merchant has a refund with this id (nothing else about it is read)."""
    return bool(await conn.fetchval("SELECT true FROM refunds WHERE id = $1", refund_id))


async def list_refunds(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest, payment_id: str | None
) -> tuple[list[RefundRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("payment_id = $?", payment_id)
    records, has_more = await fetch_page(conn, "refunds", filters, page)
    return [RefundRow.from_record(r) for r in records], has_more
