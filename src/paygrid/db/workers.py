"""Worker processes: one row per running job worker, with its heartbeat."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from paygrid.db.executor import Executor


async def register(
    conn: Executor,
    worker_id: str,
    *,
    hostname: str,
    pid: int,
    queues: Sequence[str],
    concurrency: int,
) -> None:
    await conn.execute(
        "INSERT INTO workers (id, hostname, pid, queues, concurrency) VALUES ($1, $2, $3, $4, $5)",
        worker_id,
        hostname,
        pid,
        list(queues),
        concurrency,
    )


async def heartbeat(conn: Executor, worker_id: str) -> None:
    await conn.execute("UPDATE workers SET heartbeat_at = now() WHERE id = $1", worker_id)


async def mark_stopped(conn: Executor, worker_id: str) -> None:
    await conn.execute("UPDATE workers SET stopped_at = now() WHERE id = $1", worker_id)


async def live_workers(conn: Executor, within: timedelta) -> list[asyncpg.Record]:
    """Workers not stopped whose last heartbeat is at most ``within`` old, oldest first."""
    return list(
        await conn.fetch(
            "SELECT id, hostname, pid, queues, concurrency, started_at, heartbeat_at"
            " FROM workers WHERE stopped_at IS NULL AND heartbeat_at >= now() - $1::interval"
            " ORDER BY started_at, id",
            within,
        )
    )


async def purge_gone(conn: Executor, older_than: timedelta, now: datetime) -> int:
    """Forget workers whose last heartbeat is older than ``older_than``."""
    deleted = await conn.fetchval(
        "WITH gone AS (DELETE FROM workers WHERE heartbeat_at < $2::timestamptz - $1::interval"
        " RETURNING 1) SELECT count(*) FROM gone",
        older_than,
        now,
    )
    return int(deleted)
