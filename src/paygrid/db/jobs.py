"""The job queue. A worker claims due jobs with ``FOR UPDATE SKIP LOCKED`` and holds each
under a lease; every later write about a job is guarded by ``locked_by`` and
``status = 'running'``, so a worker whose lease ran out (and was taken over) changes nothing.

Due times, leases and retry times are the worker's clock (``now``, from ``deps.clock``), not
the database's, so a test clock moves them. Every caller in ``src/`` passes ``run_at`` from
its clock; a job enqueued without one (tests of workers on the system clock) is due at the
database's time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from paygrid.db.executor import Executor
from paygrid.ids import new_id

CHANNEL = "paygrid_jobs"
"""NOTIFY channel; the payload is the queue name. PostgreSQL delivers it on commit only."""

DEFAULT_QUEUE = "default"

# The predicate of the jobs_unique_live index, repeated so ON CONFLICT can infer the index.
_UNIQUE_LIVE = (
    "ON CONFLICT (unique_key)"
    " WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'running')"
)


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job, as its worker needs it."""

    id: str
    queue: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    repeat_every: timedelta | None
    reclaimed_from: str | None  # the worker whose lease ran out, when this is a takeover

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Job:
        return cls(
            id=row["id"],
            queue=row["queue"],
            kind=row["kind"],
            payload=row["payload"],
            attempts=row["attempts"],
            repeat_every=row["repeat_every"],
            reclaimed_from=row["reclaimed_from"],
        )


async def enqueue(
    conn: Executor,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    queue: str = DEFAULT_QUEUE,
    run_at: datetime | None = None,
    unique_key: str | None = None,
) -> str | None:
    """Add a job, in the caller's transaction when ``conn`` is in one: the job (and the
    NOTIFY that wakes idle workers) exists only if that transaction commits. It is due at
    ``run_at`` (the caller's clock), or at once without one. Returns the new job's id, or
    ``None`` when a live job with the same ``unique_key`` already exists."""
    row = await conn.fetchrow(
        "WITH job AS ("
        " INSERT INTO jobs (id, queue, kind, payload, unique_key, run_at)"
        " VALUES ($1, $2, $3, $4, $5, coalesce($6, now()))"
        f" {_UNIQUE_LIVE} DO NOTHING RETURNING id, queue)"
        f" SELECT id, pg_notify('{CHANNEL}', queue) FROM job",
        new_id("job"),
        queue,
        kind,
        payload or {},
        unique_key,
        run_at,
    )
    return None if row is None else str(row["id"])


async def hasten(conn: Executor, unique_key: str, run_at: datetime) -> bool:
    """Bring the live job of ``unique_key`` that waits to run forward to ``run_at`` (never
    later), waking idle workers; ``False`` when none waits past ``run_at``."""
    row = await conn.fetchrow(
        "WITH job AS (UPDATE jobs SET run_at = $2 WHERE unique_key = $1"
        " AND status IN ('queued', 'failed') AND run_at > $2 RETURNING queue)"
        f" SELECT pg_notify('{CHANNEL}', queue) FROM job",
        unique_key,
        run_at,
    )
    return row is not None


async def enqueue_many(
    conn: Executor,
    kind: str,
    payloads: Sequence[dict[str, Any]],
    *,
    queue: str,
    run_at: datetime,
) -> None:
    """Add one job of ``kind`` per payload in one statement, due at ``run_at`` (the
    caller's clock), in the caller's transaction (as ``enqueue``): the jobs, and the one
    NOTIFY that wakes idle workers of ``queue``, exist only if that transaction commits."""
    if not payloads:
        return
    await conn.execute(
        "WITH job AS (INSERT INTO jobs (id, queue, kind, payload, run_at)"
        " SELECT t.id, $2, $3, t.payload, $5"
        " FROM unnest($1::text[], $4::jsonb[]) AS t(id, payload)"
        " RETURNING 1)"
        f" SELECT pg_notify('{CHANNEL}', $2) WHERE EXISTS (SELECT 1 FROM job)",
        [new_id("job") for _ in payloads],
        queue,
        kind,
        list(payloads),
        run_at,
    )


async def ensure_periodic(
    conn: Executor, kind: str, queue: str, every: timedelta, now: datetime
) -> None:
    """Make sure the one live row of periodic job ``kind`` exists (keyed by the kind, so
    workers starting together create it once), due ``now`` if it is new."""
    await conn.execute(
        "INSERT INTO jobs (id, queue, kind, unique_key, repeat_every, run_at)"
        " VALUES ($1, $2, $3, $3, $4, $5)"
        f" {_UNIQUE_LIVE} DO UPDATE SET repeat_every = EXCLUDED.repeat_every"
        " WHERE jobs.repeat_every IS DISTINCT FROM EXCLUDED.repeat_every",
        new_id("job"),
        queue,
        kind,
        every,
        now,
    )


async def claim(
    conn: Executor,
    worker_id: str,
    queues: Sequence[str],
    limit: int,
    lease_seconds: float,
    now: datetime,
) -> list[Job]:
    """Lease up to ``limit`` jobs due at ``now`` to ``worker_id``: queued or failed jobs
    whose time has come, and running jobs whose lease ran out (their worker died). Locked
    rows are skipped, so concurrent workers never claim the same job."""
    rows = await conn.fetch(
        "WITH due AS ("
        " SELECT id, locked_by AS reclaimed_from FROM jobs"
        " WHERE queue = ANY($2::text[]) AND ("
        "  (status IN ('queued', 'failed') AND run_at <= $5)"
        "  OR (status = 'running' AND lease_expires_at < $5))"
        " ORDER BY run_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
        " UPDATE jobs j SET status = 'running', attempts = j.attempts + 1, locked_by = $1,"
        " lease_expires_at = $5::timestamptz + make_interval(secs => $4), updated_at = $5"
        " FROM due WHERE j.id = due.id"
        " RETURNING j.id, j.queue, j.kind, j.payload, j.attempts, j.repeat_every,"
        " due.reclaimed_from",
        worker_id,
        list(queues),
        limit,
        lease_seconds,
        now,
    )
    return [Job.from_row(row) for row in rows]


async def seconds_until_due(conn: Executor, queues: Sequence[str], now: datetime) -> float | None:
    """Seconds from ``now`` until the next job in ``queues`` becomes claimable (negative
    when one already is), or ``None`` when none is waiting or leased."""
    value = await conn.fetchval(
        "SELECT extract(epoch FROM least("
        " (SELECT min(run_at) FROM jobs"
        "  WHERE queue = ANY($1::text[]) AND status IN ('queued', 'failed')),"
        " (SELECT min(lease_expires_at) FROM jobs"
        "  WHERE queue = ANY($1::text[]) AND status = 'running')) - $2::timestamptz)::float8",
        list(queues),
        now,
    )
    return None if value is None else float(value)


async def renew_leases(
    conn: Executor, worker_id: str, job_ids: Sequence[str], lease_seconds: float, now: datetime
) -> set[str]:
    """Extend the leases ``worker_id`` still holds to ``lease_seconds`` from ``now``; the
    ids missing from the result were taken over by another worker."""
    rows = await conn.fetch(
        "UPDATE jobs SET lease_expires_at = $4::timestamptz + make_interval(secs => $3)"
        " WHERE id = ANY($2::text[]) AND locked_by = $1 AND status = 'running' RETURNING id",
        worker_id,
        list(job_ids),
        lease_seconds,
        now,
    )
    return {row["id"] for row in rows}


async def complete(conn: Executor, job_id: str, worker_id: str, now: datetime) -> bool:
    """Mark a job succeeded, or put a periodic job back in the queue for its next run,
    ``repeat_every`` after ``now``. False when the lease was lost."""
    return bool(
        await conn.fetchval(
            "UPDATE jobs SET"
            " status = CASE WHEN repeat_every IS NULL THEN 'succeeded' ELSE 'queued' END,"
            " run_at = CASE WHEN repeat_every IS NULL THEN run_at ELSE $3::timestamptz + repeat_every END,"
            " attempts = CASE WHEN repeat_every IS NULL THEN attempts ELSE 0 END,"
            " last_error = CASE WHEN repeat_every IS NULL THEN last_error END,"
            " locked_by = NULL, lease_expires_at = NULL, updated_at = $3"
            " WHERE id = $1 AND locked_by = $2 AND status = 'running' RETURNING true",
            job_id,
            worker_id,
            now,
        )
    )


async def reschedule(
    conn: Executor,
    job_id: str,
    worker_id: str,
    *,
    delay_seconds: float,
    error: str,
    next_period: bool,
    now: datetime,
) -> bool:
    """Record a failed attempt and run the job again ``delay_seconds`` after ``now``: as a retry
    (status ``failed``), or, for a periodic job out of retries, as its next period's first
    attempt. False when the lease was lost."""
    return bool(
        await conn.fetchval(
            "UPDATE jobs SET status = CASE WHEN $5 THEN 'queued' ELSE 'failed' END,"
            " attempts = CASE WHEN $5 THEN 0 ELSE attempts END,"
            " run_at = $6::timestamptz + make_interval(secs => $3), last_error = $4,"
            " locked_by = NULL, lease_expires_at = NULL, updated_at = $6"
            " WHERE id = $1 AND locked_by = $2 AND status = 'running' RETURNING true",
            job_id,
            worker_id,
            delay_seconds,
            error,
            next_period,
            now,
        )
    )


async def bury(conn: Executor, job_id: str, worker_id: str, error: str, now: datetime) -> bool:
    """Give up on a job: status ``dead``, kept with its last error for an operator.
    False when the lease was lost."""
    return bool(
        await conn.fetchval(
            "UPDATE jobs SET status = 'dead', last_error = $3,"
            " locked_by = NULL, lease_expires_at = NULL, updated_at = $4"
            " WHERE id = $1 AND locked_by = $2 AND status = 'running' RETURNING true",
            job_id,
            worker_id,
            error,
            now,
        )
    )


async def release(
    conn: Executor, worker_id: str, job_ids: Sequence[str], now: datetime
) -> list[str]:
    """Hand unfinished jobs back at shutdown: due ``now``, the interrupted attempt not
    counted, and other workers woken to take them."""
    rows = await conn.fetch(
        "WITH released AS ("
        " UPDATE jobs SET status = CASE WHEN last_error IS NULL THEN 'queued' ELSE 'failed' END,"
        " attempts = attempts - 1, run_at = $3,"
        " locked_by = NULL, lease_expires_at = NULL, updated_at = $3"
        " WHERE id = ANY($2::text[]) AND locked_by = $1 AND status = 'running'"
        " RETURNING id, queue)"
        f" SELECT id, pg_notify('{CHANNEL}', queue) FROM released",
        worker_id,
        list(job_ids),
        now,
    )
    return [row["id"] for row in rows]


async def purge_succeeded(conn: Executor, older_than: timedelta, now: datetime) -> int:
    """Delete succeeded jobs finished more than ``older_than`` ago. Dead jobs are kept for
    an operator to inspect."""
    deleted = await conn.fetchval(
        "WITH gone AS (DELETE FROM jobs WHERE status = 'succeeded'"
        " AND updated_at < $2::timestamptz - $1::interval RETURNING 1) SELECT count(*) FROM gone",
        older_than,
        now,
    )
    return int(deleted)


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """One queue's jobs by status, and the age in seconds of its oldest due job."""

    queue: str
    counts: dict[str, int]
    oldest_due_seconds: float | None

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> QueueCounts:
        return cls(record["queue"], dict(record["counts"]), record["oldest_due_seconds"])


async def queue_stats(conn: Executor, now: datetime) -> list[QueueCounts]:
    """Per queue: job counts by status, and the age in seconds at ``now`` (the clock that
    makes jobs due) of the oldest job due by then."""
    rows = await conn.fetch(
        "SELECT queue, jsonb_object_agg(status, jobs) AS counts,"
        " max(oldest_due) AS oldest_due_seconds FROM ("
        "  SELECT queue, status, count(*) AS jobs,"
        "  extract(epoch FROM $1::timestamptz - min(run_at) FILTER"
        "   (WHERE status IN ('queued', 'failed') AND run_at <= $1))::float AS oldest_due"
        "  FROM jobs GROUP BY queue, status) per_status"
        " GROUP BY queue ORDER BY queue",
        now,
    )
    return [QueueCounts.from_record(row) for row in rows]


async def merchant_queue_stats(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    *,
    deliver: str,
    publish: str,
    apply: str,
    now: datetime,
) -> list[QueueCounts]:
    """``queue_stats`` over one merchant's jobs in one mode: the jobs of kind ``deliver``
    (payload ``delivery_id``), ``publish`` (``event_id``) and ``apply`` (``event``, a
    provider webhook) whose object belongs to it. Other jobs are the platform's."""
    rows = await conn.fetch(
        "SELECT queue, jsonb_object_agg(status, jobs) AS counts,"
        " max(oldest_due) AS oldest_due_seconds FROM ("
        "  SELECT j.queue, j.status, count(*) AS jobs,"
        "  extract(epoch FROM $6::timestamptz - min(j.run_at) FILTER"
        "   (WHERE j.status IN ('queued', 'failed') AND j.run_at <= $6))::float AS oldest_due"
        "  FROM jobs j WHERE"
        "  (j.kind = $3 AND EXISTS (SELECT 1 FROM webhook_deliveries d"
        "    WHERE d.id = j.payload->>'delivery_id' AND d.merchant_id = $1 AND d.livemode = $2))"
        "  OR (j.kind = $4 AND EXISTS (SELECT 1 FROM events e"
        "    WHERE e.id = j.payload->>'event_id' AND e.merchant_id = $1 AND e.livemode = $2))"
        "  OR (j.kind = $5 AND EXISTS (SELECT 1 FROM provider_webhook_events p"
        "    JOIN connector_accounts a ON a.id = p.connector_account_id"
        "    WHERE p.id = j.payload->>'event' AND a.merchant_id = $1 AND a.livemode = $2))"
        "  GROUP BY j.queue, j.status) per_status"
        " GROUP BY queue ORDER BY queue",
        merchant_id,
        livemode,
        deliver,
        publish,
        apply,
        now,
    )
    return [QueueCounts.from_record(row) for row in rows]
