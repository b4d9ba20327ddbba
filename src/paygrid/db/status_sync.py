"""What status sync works on: attempts and refunds whose outcome is due to be asked again."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from paygrid.db.executor import Executor
from paygrid.db.payments import AttemptRow
from paygrid.db.refunds import RefundRow

Row = asyncpg.Record


async def claim_due_attempts(conn: Executor, now: datetime, limit: int) -> list[AttemptRow]:
    """Open authorize attempts due for a sync. Each is claimed by clearing its due time in
    the same statement (``SKIP LOCKED``), so two workers never sync the same attempt; the
    caller sets the next time."""
    records = await conn.fetch(
        "UPDATE payment_attempts SET next_sync_at = NULL, sync_count = sync_count + 1"
        " WHERE id IN (SELECT id FROM payment_attempts WHERE next_sync_at <= $1"
        "  AND operation = 'authorize'"
        "  AND status IN ('pending', 'unknown', 'requires_action')"
        "  ORDER BY next_sync_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " RETURNING *",
        now,
        limit,
    )
    return [AttemptRow.from_record(r) for r in records]


async def set_next_sync(conn: Executor, attempt_id: str, when: datetime | None) -> None:
    await conn.execute(
        "UPDATE payment_attempts SET next_sync_at = $2 WHERE id = $1"
        " AND status IN ('pending', 'unknown', 'requires_action')",
        attempt_id,
        when,
    )


async def claim_due_refunds(conn: Executor, now: datetime, limit: int) -> list[RefundRow]:
    records = await conn.fetch(
        "UPDATE refunds SET next_sync_at = NULL"
        " WHERE id IN (SELECT id FROM refunds WHERE next_sync_at <= $1 AND status = 'pending'"
        "  ORDER BY next_sync_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " RETURNING *",
        now,
        limit,
    )
    return [RefundRow.from_record(r) for r in records]


async def set_refund_next_sync(conn: Executor, refund_id: str, when: datetime) -> None:
    await conn.execute(
        "UPDATE refunds SET next_sync_at = $2 WHERE id = $1 AND status = 'pending'",
        refund_id,
        when,
    )


async def stale_pending_attempts(
    conn: Executor, before: datetime, now: datetime, limit: int
) -> None:
    """Authorize attempts still ``pending`` long after they started: the process that made
    the call died before recording anything. They are synced like unknown outcomes."""
    await conn.execute(
        "UPDATE payment_attempts SET status = 'unknown', next_sync_at = $3::timestamptz"
        " WHERE id IN (SELECT id FROM payment_attempts WHERE status = 'pending'"
        "  AND operation = 'authorize' AND created_at < $1 AND next_sync_at IS NULL"
        "  LIMIT $2 FOR UPDATE SKIP LOCKED)",
        before,
        limit,
        now,
    )


async def claim_stale_operations(
    conn: Executor, before: datetime, now: datetime, lease_until: datetime, limit: int
) -> list[AttemptRow]:
    """Capture, void and refund attempts still open (``pending`` or ``unknown``) that
    started before ``before``: their process died mid-call, or the outcome was never
    learned. Each is claimed until ``lease_until`` (``SKIP LOCKED``), which is also when it
    is asked again if this pass cannot settle it."""
    records = list(
        await conn.fetch(
            "UPDATE payment_attempts SET next_sync_at = $3, sync_count = sync_count + 1"
            " WHERE id IN (SELECT id FROM payment_attempts"
            "  WHERE status IN ('pending', 'unknown') AND operation <> 'authorize'"
            "  AND created_at < $1 AND (next_sync_at IS NULL OR next_sync_at <= $2)"
            "  ORDER BY created_at LIMIT $4 FOR UPDATE SKIP LOCKED)"
            " RETURNING *",
            before,
            now,
            lease_until,
            limit,
        )
    )
    return [AttemptRow.from_record(r) for r in records]
