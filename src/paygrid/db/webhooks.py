"""Webhook endpoints, deliveries and delivery attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db.executor import Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page

Row = asyncpg.Record


async def insert_endpoint(conn: Executor, values: dict[str, Any]) -> Row:
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO webhook_endpoints ({columns}) VALUES ({params}) RETURNING *",
        *values.values(),
    )
    assert row is not None
    return row


async def get_endpoint(
    conn: Executor, merchant_id: str, livemode: bool, endpoint_id: str, *, lock: bool = False
) -> Row | None:
    return await conn.fetchrow(
        _SELECT_ENDPOINT_FOR_UPDATE if lock else _SELECT_ENDPOINT,
        endpoint_id,
        merchant_id,
        livemode,
    )


_SELECT_ENDPOINT = (
    "SELECT * FROM webhook_endpoints WHERE id = $1 AND merchant_id = $2 AND livemode = $3"
    " AND deleted_at IS NULL"
)
_SELECT_ENDPOINT_FOR_UPDATE = _SELECT_ENDPOINT + " FOR UPDATE"
_UPDATABLE = frozenset(
    {
        "url",
        "description",
        "enabled_events",
        "status",
        "disabled_reason",
        "paused",
        "metadata",
        "secret_ciphertext",
        "previous_secret_ciphertext",
        "previous_secret_expires_at",
        "deleted_at",
    }
)


async def update_endpoint(conn: Executor, endpoint_id: str, changes: dict[str, Any]) -> Row:
    assert set(changes) <= _UPDATABLE, set(changes) - _UPDATABLE
    assignments = "".join(f", {column} = ${i}" for i, column in enumerate(changes, start=2))
    row = await conn.fetchrow(
        f"UPDATE webhook_endpoints SET updated_at = now(){assignments} WHERE id = $1 RETURNING *",
        endpoint_id,
        *changes.values(),
    )
    assert row is not None
    return row


async def list_endpoints(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest
) -> tuple[list[Row], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.clauses.append("deleted_at IS NULL")
    return await fetch_page(conn, "webhook_endpoints", filters, page)


async def set_paused(
    conn: Executor, merchant_id: str, livemode: bool, endpoint_id: str | None, paused: bool
) -> int:
    """Pause or resume one endpoint, or every endpoint of the merchant and mode."""
    result = await conn.execute(
        "UPDATE webhook_endpoints SET paused = $4, updated_at = now()"
        " WHERE merchant_id = $1 AND livemode = $2 AND deleted_at IS NULL"
        " AND ($3::text IS NULL OR id = $3)",
        merchant_id,
        livemode,
        endpoint_id,
        paused,
    )
    return int(result.split()[-1])


# -- deliveries ------------------------------------------------------------------------------


async def list_deliveries(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    endpoint_id: str | None = None,
    event_id: str | None = None,
) -> tuple[list[Row], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("endpoint_id = $?", endpoint_id)
    filters.add_if("event_id = $?", event_id)
    return await fetch_page(conn, "webhook_deliveries", filters, page)


async def list_attempts(conn: Executor, delivery_ids: list[str]) -> list[Row]:
    return list(
        await conn.fetch(
            "SELECT * FROM webhook_attempts WHERE delivery_id = ANY($1::text[])"
            " ORDER BY delivery_id, id",
            delivery_ids,
        )
    )


_CONTEXT_COLUMNS = (
    "d.id, d.status, d.attempt_count, d.livemode, d.merchant_id, d.event_id,"
    " e.id AS endpoint_id, e.url, e.status AS endpoint_status, e.paused,"
    " e.deleted_at IS NOT NULL AS endpoint_deleted, e.secret_ciphertext,"
    " e.previous_secret_ciphertext, e.previous_secret_expires_at,"
    " v.type AS event_type, v.data AS event_data, v.created_at AS event_created_at"
)


async def claim_attempt(conn: Executor, delivery_id: str, number: int) -> Row | None:
    """The common case in one statement: claim attempt ``number`` of a pending delivery
    whose endpoint is enabled and not paused, and return what sending it needs. ``None``
    when anything is off; ``delivery_context`` then tells what."""
    return await conn.fetchrow(
        "WITH d AS (UPDATE webhook_deliveries d SET attempt_count = $2, updated_at = now()"
        " WHERE d.id = $1 AND d.status = 'pending' AND d.attempt_count IN ($2 - 1, $2)"
        " AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id"
        "  AND e.status = 'enabled' AND NOT e.paused AND e.deleted_at IS NULL)"
        " RETURNING d.*)"
        f" SELECT {_CONTEXT_COLUMNS} FROM d JOIN webhook_endpoints e ON e.id = d.endpoint_id"
        " JOIN events v ON v.id = d.event_id",
        delivery_id,
        number,
    )


async def delivery_context(conn: Executor, delivery_id: str) -> Row | None:
    """A delivery with what sending it needs: its endpoint and its event."""
    return await conn.fetchrow(
        f"SELECT {_CONTEXT_COLUMNS} FROM webhook_deliveries d"
        " JOIN webhook_endpoints e ON e.id = d.endpoint_id"
        " JOIN events v ON v.id = d.event_id WHERE d.id = $1",
        delivery_id,
    )


async def record_attempt(
    conn: Executor,
    *,
    attempt_id: str,
    delivery_id: str,
    attempted_at: datetime,
    status_code: int | None,
    latency_ms: int,
    response_body: str | None,
    error: str | None,
    outcome: str,
    next_attempt_at: datetime | None,
) -> None:
    """Record one attempt and move the delivery to ``outcome`` (pending, succeeded or
    failed) in one statement."""
    await conn.execute(
        "WITH attempt AS (INSERT INTO webhook_attempts (id, delivery_id, attempted_at,"
        " status_code, latency_ms, response_body, error) VALUES ($1, $2, $3, $4, $5, $6, $7))"
        " UPDATE webhook_deliveries SET status = $8, next_attempt_at = $9, updated_at = now(),"
        " completed_at = CASE WHEN $8 = 'pending' THEN NULL ELSE now() END WHERE id = $2",
        attempt_id,
        delivery_id,
        attempted_at,
        status_code,
        latency_ms,
        response_body,
        error,
        outcome,
        next_attempt_at,
    )


async def fail_delivery(conn: Executor, delivery_id: str) -> None:
    """Give up a pending delivery whose endpoint was disabled or deleted meanwhile."""
    await conn.execute(
        "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL,"
        " completed_at = now(), updated_at = now() WHERE id = $1 AND status = 'pending'",
        delivery_id,
    )


async def disable_endpoint(conn: Executor, endpoint_id: str, reason: str) -> None:
    await conn.execute(
        "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = $2,"
        " updated_at = now() WHERE id = $1",
        endpoint_id,
        reason,
    )


# -- dispatch (the outbox relay) -----------------------------------------------------------


async def claim_undispatched_events(conn: Executor, limit: int) -> list[Row]:
    """Mark up to ``limit`` committed, undispatched events as dispatched and return them.
    SKIP LOCKED lets several dispatchers share the backlog; the caller's transaction makes
    the mark and the deliveries it creates one unit."""
    return list(
        await conn.fetch(
            "UPDATE events SET dispatched_at = now() WHERE id IN ("
            " SELECT id FROM events WHERE dispatched_at IS NULL ORDER BY id"
            " LIMIT $1 FOR UPDATE SKIP LOCKED)"
            " RETURNING id, merchant_id, livemode, type, created_at",
            limit,
        )
    )


async def endpoints_for(conn: Executor, tenants: list[tuple[str, bool]]) -> list[Row]:
    """Enabled endpoints of these (merchant, mode) pairs."""
    return list(
        await conn.fetch(
            "SELECT e.id, e.merchant_id, e.livemode, e.enabled_events, e.created_at"
            " FROM webhook_endpoints e JOIN unnest($1::text[], $2::boolean[]) AS t(m, l)"
            " ON e.merchant_id = t.m AND e.livemode = t.l"
            " WHERE e.deleted_at IS NULL AND e.status = 'enabled'",
            [m for m, _ in tenants],
            [live for _, live in tenants],
        )
    )


async def insert_deliveries(
    conn: Executor, deliveries: list[tuple[str, str, bool, str, str]], *, job_kind: str, queue: str
) -> None:
    """Insert deliveries ``(id, merchant_id, livemode, endpoint_id, event_id)`` and the job
    for each one's first attempt, in one statement; idle workers are notified at commit."""
    if not deliveries:
        return
    ids, merchants, modes, endpoints, events = (
        list(column) for column in zip(*deliveries, strict=True)
    )
    await conn.execute(
        "WITH d AS (INSERT INTO webhook_deliveries (id, merchant_id, livemode, endpoint_id, event_id)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::boolean[], $4::text[], $5::text[])"
        " RETURNING id, endpoint_id),"
        " j AS (INSERT INTO jobs (id, queue, kind, payload)"
        " SELECT 'job_' || substr(d.id, 5), $6, $7,"
        " jsonb_build_object('delivery_id', d.id, 'endpoint_id', d.endpoint_id, 'attempt', 1)"
        " FROM d RETURNING 1)"
        " SELECT pg_notify('paygrid_jobs', $6) WHERE EXISTS (SELECT 1 FROM j)",
        ids,
        merchants,
        modes,
        endpoints,
        events,
        queue,
        job_kind,
    )


async def events_to_replay(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    endpoint_id: str,
    *,
    event_type: str | None,
    created_gte: datetime | None,
    created_lte: datetime | None,
    only_failed: bool,
    limit: int,
) -> list[Row]:
    """Events of a range to send again to one endpoint: every event it subscribes to, or
    (``only_failed``) those whose latest delivery to it failed."""
    filters = Filters()
    filters.add("v.merchant_id = $?", merchant_id)
    filters.add("v.livemode = $?", livemode)
    filters.add_if("v.type = $?", event_type)
    filters.add_if("v.created_at >= $?", created_gte)
    filters.add_if("v.created_at <= $?", created_lte)
    endpoint = len(filters.args) + 1
    failed = (
        f" AND (SELECT d.status FROM webhook_deliveries d WHERE d.event_id = v.id"
        f" AND d.endpoint_id = ${endpoint} ORDER BY d.id DESC LIMIT 1) = 'failed'"
        if only_failed
        else ""
    )
    # The endpoint is bound only when the query uses it: an unused parameter has no type.
    args = [*filters.args, endpoint_id] if only_failed else filters.args
    return list(
        await conn.fetch(
            f"SELECT v.id, v.type FROM events v WHERE {' AND '.join(filters.clauses)}{failed}"
            f" ORDER BY v.id LIMIT ${len(args) + 1}",
            *args,
            limit,
        )
    )


async def failed_deliveries(
    conn: Executor, merchant_id: str, livemode: bool, limit: int
) -> list[Row]:
    """Dead-lettered deliveries that no later delivery of the same event and endpoint
    superseded."""
    return list(
        await conn.fetch(
            "SELECT d.endpoint_id, d.event_id FROM webhook_deliveries d"
            " JOIN webhook_endpoints e ON e.id = d.endpoint_id"
            " WHERE d.merchant_id = $1 AND d.livemode = $2 AND d.status = 'failed'"
            " AND e.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM webhook_deliveries later"
            "  WHERE later.event_id = d.event_id AND later.endpoint_id = d.endpoint_id"
            "  AND later.id > d.id)"
            " ORDER BY d.id LIMIT $3",
            merchant_id,
            livemode,
            limit,
        )
    )


async def insert_dispatched_event(conn: Executor, values: dict[str, Any]) -> None:
    """An event that is delivered only where the caller says (a test ping): it is written
    already dispatched, so the dispatcher leaves it alone."""
    await conn.execute(
        "INSERT INTO events (id, merchant_id, livemode, type, object_id, data, dispatched_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, now())",
        values["id"],
        values["merchant_id"],
        values["livemode"],
        values["type"],
        values["object_id"],
        values["data"],
    )


async def endpoint_ids(
    conn: Executor, merchant_id: str, livemode: bool, endpoint_id: str | None
) -> list[str]:
    rows = await conn.fetch(
        "SELECT id FROM webhook_endpoints WHERE merchant_id = $1 AND livemode = $2"
        " AND deleted_at IS NULL AND ($3::text IS NULL OR id = $3)",
        merchant_id,
        livemode,
        endpoint_id,
    )
    return [r["id"] for r in rows]


async def wake_deliveries(
    conn: Executor, endpoint_ids: list[str], job_kind: str, queue: str
) -> None:
    """Make the queued delivery jobs of these endpoints due now (after a pause)."""
    await conn.execute(
        "WITH woken AS (UPDATE jobs SET run_at = now(), updated_at = now()"
        " WHERE kind = $2 AND status = 'queued' AND payload->>'endpoint_id' = ANY($1::text[])"
        " RETURNING 1) SELECT pg_notify('paygrid_jobs', $3) WHERE EXISTS (SELECT 1 FROM woken)",
        endpoint_ids,
        job_kind,
        queue,
    )


# -- retention -------------------------------------------------------------------------------

PURGE_BATCH = 5000


async def purge_attempts(pool: asyncpg.Pool, older_than_days: int, now: datetime) -> int:
    """Delete attempts older than ``older_than_days`` of deliveries that are finished (the
    endpoint's response bodies go with them), in batches so no statement runs long. A
    delivery keeps its status and ``attempt_count``."""
    total = 0
    while True:
        deleted = await pool.fetchval(
            "WITH gone AS (DELETE FROM webhook_attempts WHERE id IN ("
            " SELECT a.id FROM webhook_attempts a JOIN webhook_deliveries d"
            " ON d.id = a.delivery_id WHERE d.status <> 'pending'"
            " AND a.attempted_at < $3::timestamptz - make_interval(days => $1) LIMIT $2)"
            " RETURNING 1) SELECT count(*) FROM gone",
            older_than_days,
            PURGE_BATCH,
            now,
        )
        total += int(deleted)
        if deleted < PURGE_BATCH:
            return total
