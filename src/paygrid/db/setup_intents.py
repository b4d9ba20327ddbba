"""Setup intents as typed rows; every status write guarded by its allowed sources."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db.executor import Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.db.rows import column_values
from paygrid.db.statements import Statement
from paygrid.domain.setup_intents import SetupIntentStatus


@dataclass(frozen=True, slots=True)
class SetupIntentRow:
    """One ``setup_intents`` row."""

    id: str
    merchant_id: str
    livemode: bool
    status: SetupIntentStatus
    customer_id: str | None
    payment_method_id: str | None
    usage: str
    description: str | None
    metadata: dict[str, str]
    return_url: str | None
    connector: str | None
    connector_account_id: str | None
    attempt_key: str | None  # the provider's idempotency key of the current confirm
    provider_reference: str | None
    last_setup_error: dict[str, Any] | None
    next_action: dict[str, Any] | None
    mandate_id: str | None
    cancellation_reason: str | None
    created_at: datetime
    updated_at: datetime
    mandate_data: dict[str, Any] | None = None  # the acceptance sent with the confirm

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> SetupIntentRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        return cls(**{**values, "status": SetupIntentStatus(record["status"])})


async def insert(conn: Executor, row: SetupIntentRow) -> None:
    statement = Statement()
    values = column_values(row)
    statement.insert("s", "setup_intents", values)
    await conn.execute(statement.sql("SELECT 1"), *statement.args)


async def get(
    conn: Executor, merchant_id: str, livemode: bool, setup_intent_id: str
) -> SetupIntentRow | None:
    record = await conn.fetchrow(
        "SELECT * FROM setup_intents WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        setup_intent_id,
        merchant_id,
        livemode,
    )
    return None if record is None else SetupIntentRow.from_record(record)


async def transition(
    conn: Executor,
    setup_intent_id: str,
    sources: frozenset[SetupIntentStatus],
    target: SetupIntentStatus,
    now: datetime,
    changes: dict[str, Any],
) -> SetupIntentRow | None:
    """Move to ``target`` only from ``sources`` (``None`` when another change won)."""
    assignments = "".join(f", {column} = ${i}" for i, column in enumerate(changes, start=5))
    record = await conn.fetchrow(
        f"UPDATE setup_intents SET status = $2, updated_at = $4{assignments}"
        " WHERE id = $1 AND status = ANY($3::text[]) RETURNING *",
        setup_intent_id,
        target.value,
        [status.value for status in sources],
        now,
        *changes.values(),
    )
    return None if record is None else SetupIntentRow.from_record(record)


async def set_mandate(conn: Executor, setup_intent_id: str, mandate_id: str) -> SetupIntentRow:
    record = await conn.fetchrow(
        "UPDATE setup_intents SET mandate_id = $2 WHERE id = $1 RETURNING *",
        setup_intent_id,
        mandate_id,
    )
    assert record is not None
    return SetupIntentRow.from_record(record)


async def list_setup_intents(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest, customer_id: str | None
) -> tuple[list[SetupIntentRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("customer_id = $?", customer_id)
    records, has_more = await fetch_page(conn, "setup_intents", filters, page)
    return [SetupIntentRow.from_record(r) for r in records], has_more
