"""Reconciliation runs and their discrepancies (``0027_reconciliation``): typed rows, a run's
guarded status moves, and the idempotent write of what a run found (unique per account,
mode, type and object: finding it again inserts nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.domain.reconciliation import DiscrepancyStatus, DiscrepancyType, Finding
from paygrid.domain.reconciliation_runs import RunStatus, RunTrigger, sources_of
from paygrid.ids import new_id


@dataclass(frozen=True, slots=True)
class RunRow:
    id: str
    merchant_id: str
    livemode: bool
    connector_account_id: str
    window_start: datetime
    window_end: datetime
    heal: bool
    trigger: RunTrigger
    status: RunStatus
    objects_compared: int
    counts: dict[str, int]
    healed: int
    already_known: int
    failure_message: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> RunRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        counts = record["counts"]  # decoded by the pool's jsonb codec
        return cls(
            **{
                **values,
                "trigger": RunTrigger(record["trigger"]),
                "status": RunStatus(record["status"]),
                "counts": {str(k): int(v) for k, v in dict(counts).items()},
            }
        )


@dataclass(frozen=True, slots=True)
class DiscrepancyRow:
    id: str
    merchant_id: str
    livemode: bool
    connector_account_id: str
    run_id: str
    type: DiscrepancyType
    status: DiscrepancyStatus
    object_key: str
    payment_id: str | None
    refund_id: str | None
    provider_reference: str | None
    currency: str | None
    paygrid_value: str | None
    provider_value: str | None
    description: str
    healable: bool
    resolution_note: str | None
    resolved_at: datetime | None
    healed_by_run_id: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> DiscrepancyRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        return cls(
            **{
                **values,
                "type": DiscrepancyType(record["type"]),
                "status": DiscrepancyStatus(record["status"]),
            }
        )


async def insert_run(
    conn: Executor,
    *,
    merchant_id: str,
    livemode: bool,
    connector_account_id: str,
    window: tuple[datetime, datetime],
    heal: bool,
    trigger: RunTrigger,
    now: datetime,
) -> RunRow | None:
    """A queued run; ``None`` when a scheduled run of this account and window exists."""
    record = await conn.fetchrow(
        "INSERT INTO reconciliation_runs (id, merchant_id, livemode, connector_account_id,"
        " window_start, window_end, heal, trigger, status, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $9)"
        " ON CONFLICT DO NOTHING RETURNING *",
        new_id("recon"),
        merchant_id,
        livemode,
        connector_account_id,
        window[0],
        window[1],
        heal,
        trigger.value,
        now,
    )
    return None if record is None else RunRow.from_record(record)


async def get_run(conn: Executor, merchant_id: str, livemode: bool, run_id: str) -> RunRow | None:
    record = await conn.fetchrow(
        "SELECT * FROM reconciliation_runs WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        run_id,
        merchant_id,
        livemode,
    )
    return None if record is None else RunRow.from_record(record)


async def get_run_unscoped(conn: Executor, run_id: str) -> RunRow | None:
    """For the worker, which holds only the run's id."""
    record = await conn.fetchrow("SELECT * FROM reconciliation_runs WHERE id = $1", run_id)
    return None if record is None else RunRow.from_record(record)


async def list_runs(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest
) -> tuple[list[RunRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    records, has_more = await fetch_page(conn, "reconciliation_runs", filters, page)
    return [RunRow.from_record(r) for r in records], has_more


async def move_run(
    conn: Executor,
    run_id: str,
    target: RunStatus,
    now: datetime,
    *,
    counts: dict[str, int] | None = None,
    healed: int = 0,
    already_known: int = 0,
    failure_message: str | None = None,
) -> RunRow | None:
    """Move a run to ``target`` from an allowed status; ``None`` when it was elsewhere."""
    record = await conn.fetchrow(
        "UPDATE reconciliation_runs SET status = $2, updated_at = $3,"
        " started_at = CASE WHEN $2 = 'running' THEN $3 ELSE started_at END,"
        " completed_at = CASE WHEN $2 IN ('completed', 'failed') THEN $3 ELSE completed_at END,"
        " counts = coalesce($4::jsonb, counts), healed = $5, already_known = $6,"
        " failure_message = $7"
        " WHERE id = $1 AND status = ANY($8::text[]) RETURNING *",
        run_id,
        target.value,
        now,
        counts,
        healed,
        already_known,
        failure_message,
        [s.value for s in sources_of(target)],
    )
    return None if record is None else RunRow.from_record(record)


async def record_progress(conn: Executor, run_id: str, compared: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE reconciliation_runs SET objects_compared = $2, updated_at = $3"
        " WHERE id = $1 AND status = 'running'",
        run_id,
        compared,
        now,
    )


_FINDING_COLUMNS = ("object_key", "payment_id", "refund_id", "provider_reference", "currency",
                    "paygrid_value", "provider_value", "description", "healable")  # fmt: skip


async def insert_findings(
    conn: Connection, run: RunRow, findings: Sequence[Finding], now: datetime
) -> list[DiscrepancyRow]:
    """Store what the run found; an object's discrepancy of a type already recorded (open,
    resolved or healed) is left as it is. Returns the new ones."""
    if not findings:
        return []
    columns = [[getattr(f, name) for f in findings] for name in _FINDING_COLUMNS]
    records = await conn.fetch(
        "INSERT INTO reconciliation_discrepancies (id, merchant_id, livemode,"
        " connector_account_id, run_id, type, status, object_key, payment_id, refund_id,"
        " provider_reference, currency, paygrid_value, provider_value, description, healable,"
        " created_at, updated_at)"
        " SELECT i, $1, $2, $3, $4, t, 'open', k, p, r, ref, c, pv, prv, d, h, $5, $5"
        " FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],"
        " $12::text[], $13::text[], $14::text[], $15::text[], $16::boolean[])"
        " AS f(i, t, k, p, r, ref, c, pv, prv, d, h)"
        " ON CONFLICT (connector_account_id, livemode, type, object_key) DO NOTHING"
        " RETURNING *",
        run.merchant_id,
        run.livemode,
        run.connector_account_id,
        run.id,
        now,
        [new_id("rdis") for _ in findings],
        [f.type.value for f in findings],
        *columns,
    )
    return [DiscrepancyRow.from_record(r) for r in records]


async def list_discrepancies(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    run_id: str | None = None,
    type_: DiscrepancyType | None = None,
    status: DiscrepancyStatus | None = None,
) -> tuple[list[DiscrepancyRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("run_id = $?", run_id)
    filters.add_if("type = $?", None if type_ is None else type_.value)
    filters.add_if("status = $?", None if status is None else status.value)
    records, has_more = await fetch_page(conn, "reconciliation_discrepancies", filters, page)
    return [DiscrepancyRow.from_record(r) for r in records], has_more


async def get_discrepancy(
    conn: Executor, merchant_id: str, livemode: bool, discrepancy_id: str
) -> DiscrepancyRow | None:
    record = await conn.fetchrow(
        "SELECT * FROM reconciliation_discrepancies"
        " WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        discrepancy_id,
        merchant_id,
        livemode,
    )
    return None if record is None else DiscrepancyRow.from_record(record)


async def resolve(
    conn: Executor, discrepancy_id: str, note: str, now: datetime
) -> DiscrepancyRow | None:
    """open -> resolved with the note; ``None`` when it was not open."""
    record = await conn.fetchrow(
        "UPDATE reconciliation_discrepancies SET status = 'resolved', resolution_note = $2,"
        " resolved_at = $3, updated_at = $3 WHERE id = $1 AND status = 'open' RETURNING *",
        discrepancy_id,
        note,
        now,
    )
    return None if record is None else DiscrepancyRow.from_record(record)


async def mark_healed(conn: Executor, discrepancy_id: str, run_id: str, now: datetime) -> bool:
    """open -> healed by ``run_id``; False when it was not open (healed once only)."""
    row = await conn.fetchrow(
        "UPDATE reconciliation_discrepancies SET status = 'healed', healed_by_run_id = $2,"
        " resolved_at = $3, updated_at = $3 WHERE id = $1 AND status = 'open' RETURNING id",
        discrepancy_id,
        run_id,
        now,
    )
    return row is not None


async def open_healable(conn: Executor, run: RunRow) -> list[DiscrepancyRow]:
    """The account's open discrepancies that a healing run may fix."""
    records = await conn.fetch(
        "SELECT * FROM reconciliation_discrepancies WHERE connector_account_id = $1"
        " AND merchant_id = $2 AND livemode = $3 AND status = 'open' AND healable ORDER BY id",
        run.connector_account_id,
        run.merchant_id,
        run.livemode,
    )
    return [DiscrepancyRow.from_record(r) for r in records]
