"""Settlement rows and their transactions (``0025_settlements``): typed rows, the idempotent
writes of an import (unique on the provider's ids), and the merchant's paged lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.domain.settlements import (
    ImportErrorCode,
    SettlementStatus,
    SettlementTransactionType,
)
from paygrid.ids import new_id


@dataclass(frozen=True, slots=True)
class SettlementRow:
    """One ``settlements`` row."""

    id: str
    merchant_id: str
    livemode: bool
    connector_account_id: str
    provider: str
    provider_settlement_id: str
    status: SettlementStatus
    currency: str
    gross: int
    fee: int
    net: int
    transaction_count: int
    period_start: datetime | None
    period_end: datetime | None
    arrival_date: datetime
    provider_created_at: datetime
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> SettlementRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        return cls(**{**values, "status": SettlementStatus(record["status"])})


@dataclass(frozen=True, slots=True)
class SettlementTransactionRow:
    """One ``settlement_transactions`` row."""

    id: str
    merchant_id: str
    livemode: bool
    connector_account_id: str
    settlement_id: str
    provider_transaction_id: str
    type: SettlementTransactionType
    provider_source_id: str | None
    provider_reference: str | None
    payment_id: str | None
    refund_id: str | None
    currency: str
    gross: int
    fee: int
    net: int
    provider_created_at: datetime
    created_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> SettlementTransactionRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        return cls(**{**values, "type": SettlementTransactionType(record["type"])})


@dataclass(frozen=True, slots=True)
class NewSettlement:
    merchant_id: str
    livemode: bool
    connector_account_id: str
    provider: str
    provider_settlement_id: str
    status: SettlementStatus
    currency: str
    gross: int
    fee: int
    net: int
    transaction_count: int
    period_start: datetime | None
    period_end: datetime | None
    arrival_date: datetime
    provider_created_at: datetime


@dataclass(frozen=True, slots=True)
class NewSettlementTransaction:
    provider_transaction_id: str
    type: SettlementTransactionType
    provider_source_id: str | None
    provider_reference: str | None
    payment_id: str | None
    refund_id: str | None
    currency: str
    gross: int
    fee: int
    net: int
    provider_created_at: datetime


async def find_settlement(
    conn: Executor, connector_account_id: str, provider_settlement_id: str
) -> SettlementRow | None:
    record = await conn.fetchrow(
        "SELECT * FROM settlements WHERE connector_account_id = $1 AND provider_settlement_id = $2",
        connector_account_id,
        provider_settlement_id,
    )
    return None if record is None else SettlementRow.from_record(record)


async def update_status(
    conn: Executor,
    settlement_id: str,
    status: SettlementStatus,
    arrival_date: datetime,
    now: datetime,
) -> bool:
    """The provider's later word on a payout (pending -> paid); a no-op when unchanged."""
    updated = await conn.fetchval(
        "UPDATE settlements SET status = $2, arrival_date = $3, updated_at = $4"
        " WHERE id = $1 AND (status, arrival_date) IS DISTINCT FROM ($2, $3) RETURNING id",
        settlement_id,
        status.value,
        arrival_date,
        now,
    )
    return updated is not None


async def insert_settlement(conn: Connection, new: NewSettlement, now: datetime) -> str | None:
    """The new settlement's id; ``None`` when a concurrent import stored it first."""
    values: dict[str, Any] = {f.name: getattr(new, f.name) for f in fields(new)}
    values["status"] = new.status.value
    columns = ["id", *values, "created_at", "updated_at"]
    args = [new_id("stl"), *values.values(), now, now]
    placeholders = ", ".join(f"${i}" for i in range(1, len(args) + 1))
    settlement_id: str | None = await conn.fetchval(
        f"INSERT INTO settlements ({', '.join(columns)}) VALUES ({placeholders})"
        " ON CONFLICT (connector_account_id, provider_settlement_id) DO NOTHING RETURNING id",
        *args,
    )
    return settlement_id


async def insert_transactions(
    conn: Connection,
    settlement: SettlementRow | NewSettlement,
    settlement_id: str,
    transactions: Sequence[NewSettlementTransaction],
    now: datetime,
) -> list[SettlementTransactionRow]:
    """Store the transactions not stored yet (unique per account and provider id); returns
    those written now."""
    if not transactions:
        return []
    records = await conn.fetch(
        "INSERT INTO settlement_transactions (id, merchant_id, livemode, connector_account_id,"
        " settlement_id, provider_transaction_id, type, provider_source_id, provider_reference,"
        " payment_id, refund_id, currency, gross, fee, net, provider_created_at, created_at)"
        " SELECT i, $1, $2, $3, $4, p, t, s, r, pay, ref, c, g, f, n, pc, $5"
        " FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::text[],"
        " $11::text[], $12::text[], $13::text[], $14::bigint[], $15::bigint[], $16::bigint[],"
        " $17::timestamptz[]) AS x(i, p, t, s, r, pay, ref, c, g, f, n, pc)"
        " ON CONFLICT (connector_account_id, provider_transaction_id) DO NOTHING RETURNING *",
        settlement.merchant_id,
        settlement.livemode,
        settlement.connector_account_id,
        settlement_id,
        now,
        [new_id("stxn") for _ in transactions],
        [t.provider_transaction_id for t in transactions],
        [t.type.value for t in transactions],
        [t.provider_source_id for t in transactions],
        [t.provider_reference for t in transactions],
        [t.payment_id for t in transactions],
        [t.refund_id for t in transactions],
        [t.currency for t in transactions],
        [t.gross for t in transactions],
        [t.fee for t in transactions],
        [t.net for t in transactions],
        [t.provider_created_at for t in transactions],
    )
    return [SettlementTransactionRow.from_record(r) for r in records]


async def unlinked(
    conn: Executor, connector_account_id: str, limit: int
) -> list[SettlementTransactionRow]:
    """Charges and refunds stored before paygrid knew their payment or refund (its provider
    reference arrived later, e.g. by status sync), oldest first
    (``settlement_transactions_unlinked``)."""
    records = await conn.fetch(
        "SELECT * FROM settlement_transactions WHERE connector_account_id = $1"
        " AND payment_id IS NULL AND refund_id IS NULL AND provider_reference IS NOT NULL"
        " AND type IN ('charge', 'refund') ORDER BY provider_reference LIMIT $2",
        connector_account_id,
        limit,
    )
    return [SettlementTransactionRow.from_record(r) for r in records]


async def link(
    conn: Connection, transaction_id: str, payment_id: str | None, refund_id: str | None
) -> SettlementTransactionRow | None:
    """Link a stored transaction to its payment or refund, once."""
    record = await conn.fetchrow(
        "UPDATE settlement_transactions SET payment_id = $2, refund_id = $3"
        " WHERE id = $1 AND payment_id IS NULL AND refund_id IS NULL RETURNING *",
        transaction_id,
        payment_id,
        refund_id,
    )
    return None if record is None else SettlementTransactionRow.from_record(record)


async def insert_import_error(
    conn: Executor,
    *,
    merchant_id: str,
    livemode: bool,
    connector_account_id: str,
    provider_object_id: str,
    code: ImportErrorCode,
    message: str,
    now: datetime,
) -> bool:
    """Record why a provider object was not stored, once per object and reason."""
    written = await conn.fetchval(
        "INSERT INTO settlement_import_errors (id, merchant_id, livemode, connector_account_id,"
        " provider_object_id, code, message, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (connector_account_id, provider_object_id, code) DO NOTHING RETURNING id",
        new_id("sie"),
        merchant_id,
        livemode,
        connector_account_id,
        provider_object_id,
        code.value,
        message[:1000],
        now,
    )
    return written is not None


async def get_settlement(
    conn: Executor, merchant_id: str, livemode: bool, settlement_id: str
) -> SettlementRow | None:
    record = await conn.fetchrow(
        "SELECT * FROM settlements WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        settlement_id,
        merchant_id,
        livemode,
    )
    return None if record is None else SettlementRow.from_record(record)


async def list_settlements(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    connector_account_id: str | None = None,
    status: SettlementStatus | None = None,
    arrival_from: datetime | None = None,
    arrival_before: datetime | None = None,
) -> tuple[list[SettlementRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("connector_account_id = $?", connector_account_id)
    filters.add_if("status = $?", None if status is None else status.value)
    filters.add_if("arrival_date >= $?", arrival_from)
    filters.add_if("arrival_date < $?", arrival_before)
    records, has_more = await fetch_page(conn, "settlements", filters, page)
    return [SettlementRow.from_record(r) for r in records], has_more


async def list_transactions(
    conn: Executor, merchant_id: str, livemode: bool, settlement_id: str, page: PageRequest
) -> tuple[list[SettlementTransactionRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add("settlement_id = $?", settlement_id)
    records, has_more = await fetch_page(conn, "settlement_transactions", filters, page)
    return [SettlementTransactionRow.from_record(r) for r in records], has_more
