"""Whether the database can serve: its schema revision and the job workers with a recent
heartbeat (for ``/readyz``), and which exceptions mean it cannot be reached right now (an
outage to answer with 503 and Retry-After, not a bug)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from paygrid.db import engine
from paygrid.db import workers as workers_db
from paygrid.db.workers import WorkerRow as WorkerRow  # what readiness lists
from paygrid.dependencies import Deps

# What fails while the database cannot be reached (stopped, restarting, refusing
# connections); ``database_unreachable`` tells which of them are such failures.
DATABASE_OUTAGES: tuple[type[Exception], ...] = engine.UNREACHABLE


def database_unreachable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached right now (retrying helps)."""
    return engine.unreachable(error)


@dataclass(frozen=True, slots=True)
class Readiness:
    """The schema revision the database is at (None before any migration) and the workers
    with a heartbeat in the window asked for, oldest first."""

    migration: str | None
    workers: tuple[WorkerRow, ...]


async def readiness(deps: Deps, live_within: timedelta) -> Readiness:
    """Ask the database; a failure to reach it propagates (the caller is not ready)."""
    migration = await engine.current_revision(deps.pool)
    live = await _live_workers(deps.pool, live_within, deps.clock.now())
    return Readiness(migration, live)


async def _live_workers(
    pool: asyncpg.Pool, within: timedelta, now: datetime
) -> tuple[WorkerRow, ...]:
    try:
        rows = await workers_db.live_workers(pool, within, now)
    except asyncpg.UndefinedTableError:  # migrations pending: no worker can have run yet
        return ()
    return tuple(WorkerRow.from_record(row) for row in rows)
