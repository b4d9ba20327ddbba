"""Mandates: a customer's acceptance of later off-session charges of one saved method."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from paygrid.db.executor import Connection, Executor


@dataclass(frozen=True, slots=True)
class MandateRow:
    """One ``mandates`` row."""

    id: str
    merchant_id: str
    livemode: bool
    payment_method_id: str
    customer_id: str
    source_id: str  # the payment or setup intent that set the method up
    acceptance_type: str  # online | offline
    ip_address: str | None
    user_agent: str | None
    accepted_at: datetime
    created_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> MandateRow:
        return cls(**{f.name: record[f.name] for f in fields(cls)})


async def insert_for_method(conn: Connection, row: MandateRow) -> MandateRow | None:
    """Record the mandate and make it the method's (the latest acceptance wins); ``None``
    when its payment or setup intent already recorded one."""
    record = await conn.fetchrow(
        "WITH m AS (INSERT INTO mandates (id, merchant_id, livemode, payment_method_id,"
        " customer_id, source_id, acceptance_type, ip_address, user_agent, accepted_at,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " ON CONFLICT (source_id) DO NOTHING RETURNING *),"
        " pm AS (UPDATE payment_methods SET mandate_id = $1"
        "  WHERE id = $4 AND EXISTS (SELECT 1 FROM m))"
        " SELECT * FROM m",
        row.id,
        row.merchant_id,
        row.livemode,
        row.payment_method_id,
        row.customer_id,
        row.source_id,
        row.acceptance_type,
        row.ip_address,
        row.user_agent,
        row.accepted_at,
        row.created_at,
    )
    return None if record is None else MandateRow.from_record(record)


async def find_by_source(conn: Executor, source_id: str) -> MandateRow | None:
    """The mandate a payment or setup intent recorded, if it did (at most one each)."""
    record = await conn.fetchrow("SELECT * FROM mandates WHERE source_id = $1", source_id)
    return None if record is None else MandateRow.from_record(record)


async def get_mandate(
    conn: Executor, merchant_id: str, livemode: bool, mandate_id: str
) -> MandateRow | None:
    record = await conn.fetchrow(
        "SELECT * FROM mandates WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        mandate_id,
        merchant_id,
        livemode,
    )
    return None if record is None else MandateRow.from_record(record)


async def redact_for_customer(conn: Connection, customer_id: str) -> None:
    """GDPR erasure: blank the IP addresses and user agents the customer's mandates hold,
    and the acceptance their payments and setup intents kept to record one. The mandates
    stay (that they accepted, and when)."""
    await conn.execute(
        "UPDATE mandates SET ip_address = NULL, user_agent = NULL WHERE customer_id = $1",
        customer_id,
    )
    await conn.execute(
        "UPDATE payments SET mandate_data = NULL"
        " WHERE customer_id = $1 AND mandate_data IS NOT NULL",
        customer_id,
    )
    await conn.execute(
        "UPDATE setup_intents SET mandate_data = NULL"
        " WHERE customer_id = $1 AND mandate_data IS NOT NULL",
        customer_id,
    )
