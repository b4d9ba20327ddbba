"""The inbox of provider webhooks: one row per provider event id and account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from paygrid.db.executor import Executor
from paygrid.db.payments import AttemptRow
from paygrid.domain.provider_events import ProviderEventStatus

Row = asyncpg.Record


@dataclass(frozen=True, slots=True)
class ProviderEventRow:
    """A ``provider_webhook_events`` row: the raw body as received, with the signature
    headers needed to verify it again."""

    id: str
    connector_account_id: str
    provider_event_id: str
    type: str
    body: bytes
    headers: dict[str, str]
    status: ProviderEventStatus
    attempts: int
    last_error: str | None
    received_at: datetime
    processed_at: datetime | None

    @classmethod
    def from_record(cls, record: Row) -> ProviderEventRow:
        return cls(
            id=record["id"],
            connector_account_id=record["connector_account_id"],
            provider_event_id=record["provider_event_id"],
            type=record["type"],
            body=bytes(record["body"]),
            headers=record["headers"],
            status=ProviderEventStatus(record["status"]),
            attempts=record["attempts"],
            last_error=record["last_error"],
            received_at=record["received_at"],
            processed_at=record["processed_at"],
        )


async def insert_event(
    conn: Executor,
    *,
    event_id: str,
    connector_account_id: str,
    provider_event_id: str,
    event_type: str,
    body: bytes,
    headers: dict[str, str],
) -> ProviderEventRow | None:
    """Store an event once; ``None`` when this account already delivered that event id."""
    row = await conn.fetchrow(
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
    return None if row is None else ProviderEventRow.from_record(row)


async def get_event(conn: Executor, event_id: str) -> ProviderEventRow | None:
    row = await conn.fetchrow("SELECT * FROM provider_webhook_events WHERE id = $1", event_id)
    return None if row is None else ProviderEventRow.from_record(row)


async def mark(
    conn: Executor,
    event_id: str,
    status: ProviderEventStatus,
    error: str | None = None,
    *,
    now: datetime,
) -> None:
    """Record an apply attempt's outcome; an applied or ignored event is processed at
    ``now`` (the caller's clock), which starts its retention window (``purge_processed``)."""
    await conn.execute(
        "UPDATE provider_webhook_events SET status = $2, last_error = $3,"
        " attempts = attempts + 1,"
        " processed_at = CASE WHEN $2 IN ('applied', 'ignored') THEN $4::timestamptz END"
        " WHERE id = $1",
        event_id,
        status.value,
        error,
        now,
    )


async def find_attempt(
    conn: Executor, connector_account_id: str, attempt_id: str | None, reference: str | None
) -> AttemptRow | None:
    """The authorize attempt an event is about: by our attempt id when the provider echoes
    it, else by the provider's reference, within the account that sent the event."""
    if attempt_id is not None:
        row = await conn.fetchrow(
            "SELECT * FROM payment_attempts WHERE id = $1 AND connector_account_id = $2",
            attempt_id,
            connector_account_id,
        )
        if row is not None:
            return AttemptRow.from_record(row)
    if reference is None:
        return None
    row = await conn.fetchrow(
        "SELECT * FROM payment_attempts WHERE provider_reference = $1"
        " AND connector_account_id = $2 AND operation = 'authorize' ORDER BY id DESC LIMIT 1",
        reference,
        connector_account_id,
    )
    return None if row is None else AttemptRow.from_record(row)


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
