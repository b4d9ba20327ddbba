"""Worker processes: one row per running job worker, with its heartbeat."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
    now: datetime,
) -> None:
    """A worker starting at ``now`` (its clock: heartbeats are judged on the same one)."""
    await conn.execute(
        "INSERT INTO workers (id, hostname, pid, queues, concurrency, started_at, heartbeat_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $6)",
        worker_id,
        hostname,
        pid,
        list(queues),
        concurrency,
        now,
    )


async def heartbeat(conn: Executor, worker_id: str, now: datetime) -> None:
    await conn.execute("UPDATE workers SET heartbeat_at = $2 WHERE id = $1", worker_id, now)


async def mark_stopped(conn: Executor, worker_id: str, now: datetime) -> None:
    await conn.execute("UPDATE workers SET stopped_at = $2 WHERE id = $1", worker_id, now)


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """A row of ``live_workers``."""

    id: str
    hostname: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> WorkerRow:
        return cls(
            id=row["id"],
            hostname=row["hostname"],
            pid=row["pid"],
            queues=tuple(row["queues"]),
            concurrency=row["concurrency"],
            started_at=row["started_at"],
            heartbeat_at=row["heartbeat_at"],
        )


async def live_workers(conn: Executor, within: timedelta, now: datetime) -> list[asyncpg.Record]:
    """Workers not stopped whose last heartbeat is at most ``within`` before ``now``, oldest
    first."""
    return list(
        await conn.fetch(
            "SELECT id, hostname, pid, queues, concurrency, started_at, heartbeat_at"
            " FROM workers WHERE stopped_at IS NULL"
            " AND heartbeat_at >= $2::timestamptz - $1::interval"
            " ORDER BY started_at, id",
            within,
            now,
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
