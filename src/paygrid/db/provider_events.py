"""The inbox of provider webhooks: one row per provider event id and account."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from paygrid.db.executor import Executor

Row = asyncpg.Record


async def insert_event(
    conn: Executor,
    *,
    event_id: str,
    connector_account_id: str,
    provider_event_id: str,
    event_type: str,
    body: bytes,
    headers: dict[str, str],
) -> Row | None:
    """Store an event once; ``None`` when this account already delivered that event id."""
    return await conn.fetchrow(
        "INSERT INTO provider_webhook_events"
        " (id, connector_account_id, provider_event_id, type, body, headers)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (connector_account_id, provider_event_id) DO NOTHING RETURNING *",
        event_id,
        connector_account_id,
        provider_event_id,
        event_type,
        body,
        headers,
    )


async def get_event(conn: Executor, event_id: str) -> Row | None:
    return await conn.fetchrow("SELECT * FROM provider_webhook_events WHERE id = $1", event_id)


async def mark(conn: Executor, event_id: str, status: str, error: str | None = None) -> None:
    await conn.execute(
        "UPDATE provider_webhook_events SET status = $2, last_error = $3,"
        " attempts = attempts + 1,"
        " processed_at = CASE WHEN $2 IN ('applied', 'ignored') THEN now() END"
        " WHERE id = $1",
        event_id,
        status,
        error,
    )


async def find_attempt(
    conn: Executor, connector_account_id: str, attempt_id: str | None, reference: str | None
) -> Row | None:
    """The authorize attempt an event is about: by our attempt id when the provider echoes
    it, else by the provider's reference, within the account that sent the event."""
    if attempt_id is not None:
        row = await conn.fetchrow(
            "SELECT * FROM payment_attempts WHERE id = $1 AND connector_account_id = $2",
            attempt_id,
            connector_account_id,
        )
        if row is not None:
            return row
    if reference is None:
        return None
    return await conn.fetchrow(
        "SELECT * FROM payment_attempts WHERE provider_reference = $1"
        " AND connector_account_id = $2 AND operation = 'authorize' ORDER BY id DESC LIMIT 1",
        reference,
        connector_account_id,
    )


PURGE_BATCH = 5000


async def purge_processed(pool: asyncpg.Pool, older_than_days: int, now: datetime) -> int:
    """Delete applied or ignored events processed more than ``older_than_days`` ago, with
    their raw bodies, in batches. Pending and unmatched events stay for an operator."""
    total = 0
    while True:
        deleted = await pool.fetchval(
            "WITH gone AS (DELETE FROM provider_webhook_events WHERE id IN ("
            " SELECT id FROM provider_webhook_events WHERE status IN ('applied', 'ignored')"
            " AND processed_at < $3::timestamptz - make_interval(days => $1) LIMIT $2)"
            " RETURNING 1) SELECT count(*) FROM gone",
            older_than_days,
            PURGE_BATCH,
            now,
        )
        total += int(deleted)
        if deleted < PURGE_BATCH:
            return total
