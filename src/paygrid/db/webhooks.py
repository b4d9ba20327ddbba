"""Webhook endpoints, deliveries and delivery attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg

from paygrid.db.events import NewEvent
from paygrid.db.executor import Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.domain.webhooks import DeliveryStatus, DisabledReason, EndpointStatus

Row = asyncpg.Record


@dataclass(frozen=True, slots=True)
class WebhookEndpointRow:
    """A ``webhook_endpoints`` row."""

    id: str
    merchant_id: str
    livemode: bool
    url: str
    description: str | None
    enabled_events: tuple[str, ...]
    status: EndpointStatus
    disabled_reason: str | None
    paused: bool
    metadata: dict[str, str]
    secret_ciphertext: bytes
    previous_secret_ciphertext: bytes | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    deleted_at: datetime | None

    @classmethod
    def from_record(cls, record: Row) -> WebhookEndpointRow:
        return cls(
            id=record["id"],
            merchant_id=record["merchant_id"],
            livemode=record["livemode"],
            url=record["url"],
            description=record["description"],
            enabled_events=tuple(record["enabled_events"]),
            status=EndpointStatus(record["status"]),
            disabled_reason=record["disabled_reason"],
            paused=record["paused"],
            metadata=record["metadata"],
            secret_ciphertext=record["secret_ciphertext"],
            previous_secret_ciphertext=record["previous_secret_ciphertext"],
            previous_secret_expires_at=record["previous_secret_expires_at"],
            created_at=record["created_at"],
            deleted_at=record["deleted_at"],
        )


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    """The columns of an endpoint the caller chooses; the rest are the table's defaults."""

    id: str
    merchant_id: str
    livemode: bool
    url: str
    description: str | None
    enabled_events: list[str]
    metadata: dict[str, str]
    secret_ciphertext: bytes


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """A ``webhook_deliveries`` row."""

    id: str
    merchant_id: str
    livemode: bool
    endpoint_id: str
    event_id: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    created_at: datetime

    @classmethod
    def from_record(cls, record: Row) -> DeliveryRow:
        return cls(
            id=record["id"],
            merchant_id=record["merchant_id"],
            livemode=record["livemode"],
            endpoint_id=record["endpoint_id"],
            event_id=record["event_id"],
            status=DeliveryStatus(record["status"]),
            attempt_count=record["attempt_count"],
            next_attempt_at=record["next_attempt_at"],
            created_at=record["created_at"],
        )


@dataclass(frozen=True, slots=True)
class DeliveryAttemptRow:
    """A ``webhook_attempts`` row: one POST of a delivery and its answer."""

    id: str
    delivery_id: str
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_body: str | None
    error: str | None

    @classmethod
    def from_record(cls, record: Row) -> DeliveryAttemptRow:
        return cls(
            id=record["id"],
            delivery_id=record["delivery_id"],
            attempted_at=record["attempted_at"],
            status_code=record["status_code"],
            latency_ms=record["latency_ms"],
            response_body=record["response_body"],
            error=record["error"],
        )


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """A delivery with what sending it needs: its endpoint (address, state and secrets) and
    its event."""

    id: str
    status: DeliveryStatus
    attempt_count: int
    livemode: bool
    merchant_id: str
    endpoint_id: str
    url: str
    endpoint_status: EndpointStatus
    paused: bool
    endpoint_deleted: bool
    secret_ciphertext: bytes
    previous_secret_ciphertext: bytes | None
    previous_secret_expires_at: datetime | None
    event_id: str
    event_type: str
    event_object: dict[str, Any]
    event_created_at: datetime

    @classmethod
    def from_record(cls, record: Row) -> DeliveryContext:
        return cls(
            id=record["id"],
            status=DeliveryStatus(record["status"]),
            attempt_count=record["attempt_count"],
            livemode=record["livemode"],
            merchant_id=record["merchant_id"],
            endpoint_id=record["endpoint_id"],
            url=record["url"],
            endpoint_status=EndpointStatus(record["endpoint_status"]),
            paused=record["paused"],
            endpoint_deleted=record["endpoint_deleted"],
            secret_ciphertext=record["secret_ciphertext"],
            previous_secret_ciphertext=record["previous_secret_ciphertext"],
            previous_secret_expires_at=record["previous_secret_expires_at"],
            event_id=record["event_id"],
            event_type=record["event_type"],
            event_object=record["event_data"]["object"],
            event_created_at=record["event_created_at"],
        )


@dataclass(frozen=True, slots=True)
class EventRef:
    """An event to send again: its id and type."""

    id: str
    type: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """The event and endpoint of a dead-lettered delivery."""

    endpoint_id: str
    event_id: str


async def insert_endpoint(conn: Executor, new: NewEndpoint) -> WebhookEndpointRow:
    row = await conn.fetchrow(
        "INSERT INTO webhook_endpoints (id, merchant_id, livemode, url, description,"
        " enabled_events, metadata, secret_ciphertext) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " RETURNING *",
        new.id,
        new.merchant_id,
        new.livemode,
        new.url,
        new.description,
        new.enabled_events,
        new.metadata,
        new.secret_ciphertext,
    )
    assert row is not None
    return WebhookEndpointRow.from_record(row)


async def get_endpoint(
    conn: Executor, merchant_id: str, livemode: bool, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpointRow | None:
    row = await conn.fetchrow(
        _SELECT_ENDPOINT_FOR_UPDATE if lock else _SELECT_ENDPOINT,
        endpoint_id,
        merchant_id,
        livemode,
    )
    return None if row is None else WebhookEndpointRow.from_record(row)


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


async def update_endpoint(
    conn: Executor, endpoint_id: str, changes: dict[str, Any]
) -> WebhookEndpointRow:
    """Set the columns in ``changes`` (a partial update: only what the merchant sent)."""
    assert set(changes) <= _UPDATABLE, set(changes) - _UPDATABLE
    assignments = "".join(f", {column} = ${i}" for i, column in enumerate(changes, start=2))
    row = await conn.fetchrow(
        f"UPDATE webhook_endpoints SET updated_at = now(){assignments} WHERE id = $1 RETURNING *",
        endpoint_id,
        *changes.values(),
    )
    assert row is not None
    return WebhookEndpointRow.from_record(row)


async def list_endpoints(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest
) -> tuple[list[WebhookEndpointRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.clauses.append("deleted_at IS NULL")
    rows, has_more = await fetch_page(conn, "webhook_endpoints", filters, page)
    return [WebhookEndpointRow.from_record(row) for row in rows], has_more


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


@dataclass(frozen=True, slots=True)
class SealedSecrets:
    """An endpoint's signing secrets as stored (encrypted with the key ring)."""

    endpoint_id: str
    current: bytes
    previous: bytes | None


async def every_endpoint_id(conn: Executor) -> list[str]:
    """Every endpoint, deleted ones included (for re-encrypting their secrets)."""
    return [row["id"] for row in await conn.fetch("SELECT id FROM webhook_endpoints ORDER BY id")]


async def lock_secrets(conn: Executor, endpoint_id: str) -> SealedSecrets | None:
    """The endpoint's sealed secrets, its row locked until the caller's transaction ends."""
    row = await conn.fetchrow(
        "SELECT secret_ciphertext, previous_secret_ciphertext"
        " FROM webhook_endpoints WHERE id = $1 FOR UPDATE",
        endpoint_id,
    )
    if row is None:
        return None
    return SealedSecrets(endpoint_id, row["secret_ciphertext"], row["previous_secret_ciphertext"])


async def store_secrets(conn: Executor, sealed: SealedSecrets) -> None:
    await conn.execute(
        "UPDATE webhook_endpoints SET secret_ciphertext = $2, previous_secret_ciphertext = $3"
        " WHERE id = $1",
        sealed.endpoint_id,
        sealed.current,
        sealed.previous,
    )


# -- deliveries ------------------------------------------------------------------------------


async def list_deliveries(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    endpoint_id: str | None = None,
    event_id: str | None = None,
) -> tuple[list[DeliveryRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("endpoint_id = $?", endpoint_id)
    filters.add_if("event_id = $?", event_id)
    rows, has_more = await fetch_page(conn, "webhook_deliveries", filters, page)
    return [DeliveryRow.from_record(row) for row in rows], has_more


async def attempts_by_delivery(
    conn: Executor, delivery_ids: list[str]
) -> dict[str, list[DeliveryAttemptRow]]:
    """The attempts of these deliveries, oldest first, by delivery id."""
    rows = await conn.fetch(
        "SELECT * FROM webhook_attempts WHERE delivery_id = ANY($1::text[])"
        " ORDER BY delivery_id, id",
        delivery_ids,
    )
    grouped: dict[str, list[DeliveryAttemptRow]] = {}
    for row in rows:
        attempt = DeliveryAttemptRow.from_record(row)
        grouped.setdefault(attempt.delivery_id, []).append(attempt)
    return grouped


_CONTEXT_COLUMNS = (
    "d.id, d.status, d.attempt_count, d.livemode, d.merchant_id, d.event_id,"
    " e.id AS endpoint_id, e.url, e.status AS endpoint_status, e.paused,"
    " e.deleted_at IS NOT NULL AS endpoint_deleted, e.secret_ciphertext,"
    " e.previous_secret_ciphertext, e.previous_secret_expires_at,"
    " v.type AS event_type, v.data AS event_data, v.created_at AS event_created_at"
)


async def claim_attempt(conn: Executor, delivery_id: str, number: int) -> DeliveryContext | None:
    """The common case in one statement: claim attempt ``number`` of a pending delivery
    whose endpoint is enabled and not paused, and return what sending it needs. ``None``
    when anything is off; ``delivery_context`` then tells what (``waits_for_earlier``:
    a first attempt waits for the first attempts of the object's earlier events)."""
    row = await conn.fetchrow(
        "WITH d AS (UPDATE webhook_deliveries d SET attempt_count = $2, updated_at = now()"
        " WHERE d.id = $1 AND d.status = 'pending' AND d.attempt_count IN ($2 - 1, $2)"
        " AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id"
        "  AND e.status = 'enabled' AND NOT e.paused AND e.deleted_at IS NULL)"
        f" AND ($2 > 1 OR NOT {_EARLIER_UNSENT})"
        " RETURNING d.*)"
        f" SELECT {_CONTEXT_COLUMNS} FROM d JOIN webhook_endpoints e ON e.id = d.endpoint_id"
        " JOIN events v ON v.id = d.event_id",
        delivery_id,
        number,
    )
    return None if row is None else DeliveryContext.from_record(row)


# Causal order, per object and endpoint: an earlier event (ids are in write order,
# ``new_ordered_id``) of delivery ``d``'s object that is not dispatched yet, or whose
# delivery to ``d``'s endpoint has not made its first attempt. Retries do not wait.
_EARLIER_UNSENT: Final = (
    "EXISTS (SELECT 1 FROM events mine JOIN events earlier"
    "  ON earlier.object_id = mine.object_id AND earlier.id < mine.id"
    "  WHERE mine.id = d.event_id AND (earlier.dispatched_at IS NULL OR EXISTS ("
    "   SELECT 1 FROM webhook_deliveries p WHERE p.event_id = earlier.id"
    "   AND p.endpoint_id = d.endpoint_id AND p.status = 'pending' AND NOT EXISTS ("
    "    SELECT 1 FROM webhook_attempts a WHERE a.delivery_id = p.id))))"
)


async def waits_for_earlier(conn: Executor, delivery_id: str) -> bool:
    """Whether the first attempt of a delivery must wait for an earlier event of the same
    object to reach the same endpoint first (``claim_attempt`` refused it for that)."""
    return bool(
        await conn.fetchval(
            f"SELECT {_EARLIER_UNSENT} FROM webhook_deliveries d WHERE d.id = $1", delivery_id
        )
    )


async def delivery_context(conn: Executor, delivery_id: str) -> DeliveryContext | None:
    """A delivery with what sending it needs: its endpoint and its event."""
    row = await conn.fetchrow(
        f"SELECT {_CONTEXT_COLUMNS} FROM webhook_deliveries d"
        " JOIN webhook_endpoints e ON e.id = d.endpoint_id"
        " JOIN events v ON v.id = d.event_id WHERE d.id = $1",
        delivery_id,
    )
    return None if row is None else DeliveryContext.from_record(row)


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
    outcome: DeliveryStatus,
    next_attempt_at: datetime | None,
) -> None:
    """Record one attempt and move the delivery to ``outcome`` (pending, succeeded or
    failed) in one statement."""
    await conn.execute(
        "WITH attempt AS (INSERT INTO webhook_attempts (id, delivery_id, attempted_at,"
        " status_code, latency_ms, response_body, error) VALUES ($1, $2, $3, $4, $5, $6, $7))"
        " UPDATE webhook_deliveries SET status = $8, next_attempt_at = $9, updated_at = $3,"
        " completed_at = CASE WHEN $8 = 'pending' THEN NULL ELSE $3 END WHERE id = $2",
        attempt_id,
        delivery_id,
        attempted_at,
        status_code,
        latency_ms,
        response_body,
        error,
        outcome.value,
        next_attempt_at,
    )


async def fail_delivery(conn: Executor, delivery_id: str, now: datetime) -> None:
    """Give up, at ``now``, a pending delivery whose endpoint was disabled or deleted
    meanwhile."""
    await conn.execute(
        "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL,"
        " completed_at = $2, updated_at = $2 WHERE id = $1 AND status = 'pending'",
        delivery_id,
        now,
    )


async def disable_endpoint(conn: Executor, endpoint_id: str, reason: DisabledReason) -> None:
    await conn.execute(
        "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = $2,"
        " updated_at = now() WHERE id = $1",
        endpoint_id,
        reason.value,
    )


# -- dispatch (the outbox relay) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UndispatchedEvent:
    """An event as dispatching needs it: whose it is, its type, and when it happened."""

    id: str
    merchant_id: str
    livemode: bool
    type: str
    created_at: datetime


async def claim_undispatched_events(conn: Executor, limit: int) -> list[UndispatchedEvent]:
    """Mark up to ``limit`` committed, undispatched events as dispatched and return them.
    SKIP LOCKED lets several dispatchers share the backlog; the caller's transaction makes
    the mark and the deliveries it creates one unit. (``dispatched_at`` is the database's
    time: only whether it is set decides anything.)"""
    records = await conn.fetch(
        "UPDATE events SET dispatched_at = now() WHERE id IN ("
        " SELECT id FROM events WHERE dispatched_at IS NULL ORDER BY id"
        " LIMIT $1 FOR UPDATE SKIP LOCKED)"
        " RETURNING id, merchant_id, livemode, type, created_at",
        limit,
    )
    return [UndispatchedEvent(**dict(r.items())) for r in records]


@dataclass(frozen=True, slots=True)
class EndpointTarget:
    """An enabled endpoint as dispatching needs it: whose it is, what it subscribes to, and
    since when (it gets no event older than itself)."""

    id: str
    merchant_id: str
    livemode: bool
    enabled_events: tuple[str, ...]
    created_at: datetime

    @classmethod
    def from_record(cls, record: Row) -> EndpointTarget:
        return cls(
            id=record["id"],
            merchant_id=record["merchant_id"],
            livemode=record["livemode"],
            enabled_events=tuple(record["enabled_events"]),
            created_at=record["created_at"],
        )


async def endpoint_targets(conn: Executor, tenants: list[tuple[str, bool]]) -> list[EndpointTarget]:
    """Enabled endpoints of these (merchant, mode) pairs."""
    records = await conn.fetch(
        "SELECT e.id, e.merchant_id, e.livemode, e.enabled_events, e.created_at"
        " FROM webhook_endpoints e JOIN unnest($1::text[], $2::boolean[]) AS t(m, l)"
        " ON e.merchant_id = t.m AND e.livemode = t.l"
        " WHERE e.deleted_at IS NULL AND e.status = 'enabled'",
        [m for m, _ in tenants],
        [live for _, live in tenants],
    )
    return [EndpointTarget.from_record(row) for row in records]


async def insert_deliveries(
    conn: Executor,
    deliveries: list[tuple[str, str, bool, str, str]],
    *,
    job_kind: str,
    queue: str,
    now: datetime,
) -> None:
    """Insert deliveries ``(id, merchant_id, livemode, endpoint_id, event_id)`` created at
    ``now`` (the caller's clock) and the job for each one's first attempt, due then, in one
    statement; idle workers are notified at commit."""
    if not deliveries:
        return
    ids, merchants, modes, endpoints, events = (
        list(column) for column in zip(*deliveries, strict=True)
    )
    await conn.execute(
        "WITH d AS (INSERT INTO webhook_deliveries"
        " (id, merchant_id, livemode, endpoint_id, event_id, created_at, updated_at)"
        " SELECT *, $8::timestamptz, $8::timestamptz"
        " FROM unnest($1::text[], $2::text[], $3::boolean[], $4::text[], $5::text[])"
        " RETURNING id, endpoint_id),"
        " j AS (INSERT INTO jobs (id, queue, kind, payload, run_at)"
        " SELECT 'job_' || substr(d.id, 5), $6, $7,"
        " jsonb_build_object('delivery_id', d.id, 'endpoint_id', d.endpoint_id, 'attempt', 1),"
        " $8 FROM d RETURNING 1)"
        " SELECT pg_notify('paygrid_jobs', $6) WHERE EXISTS (SELECT 1 FROM j)",
        ids,
        merchants,
        modes,
        endpoints,
        events,
        queue,
        job_kind,
        now,
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
) -> list[EventRef]:
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
    rows = await conn.fetch(
        f"SELECT v.id, v.type FROM events v WHERE {' AND '.join(filters.clauses)}{failed}"
        f" ORDER BY v.id LIMIT ${len(args) + 1}",
        *args,
        limit,
    )
    return [EventRef(id=row["id"], type=row["type"]) for row in rows]


async def failed_deliveries(
    conn: Executor, merchant_id: str, livemode: bool, limit: int
) -> list[DeadLetter]:
    """Dead-lettered deliveries that no later delivery of the same event and endpoint
    superseded."""
    rows = await conn.fetch(
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
    return [DeadLetter(endpoint_id=row["endpoint_id"], event_id=row["event_id"]) for row in rows]


async def insert_dispatched_event(conn: Executor, event: NewEvent) -> None:
    """An event that is delivered only where the caller says (a test ping): it is written
    already dispatched, so the dispatcher leaves it alone."""
    await conn.execute(
        "INSERT INTO events (id, merchant_id, livemode, type, object_id, data, dispatched_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, now())",
        event.id,
        event.merchant_id,
        event.livemode,
        event.type,
        event.object_id,
        event.data,
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
    conn: Executor, endpoint_ids: list[str], job_kind: str, queue: str, now: datetime
) -> None:
    """Make the queued delivery jobs of these endpoints due at ``now`` (after a pause)."""
    await conn.execute(
        "WITH woken AS (UPDATE jobs SET run_at = $4, updated_at = $4"
        " WHERE kind = $2 AND status = 'queued' AND payload->>'endpoint_id' = ANY($1::text[])"
        " RETURNING 1) SELECT pg_notify('paygrid_jobs', $3) WHERE EXISTS (SELECT 1 FROM woken)",
        endpoint_ids,
        job_kind,
        queue,
        now,
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
