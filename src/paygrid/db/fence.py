"""The write fence of ``paygrid restore``: one row in ``paygrid_fence.fence`` (a schema that
backups leave out and a restore leaves in place), and a NOTIFY on ``CHANNEL`` in the same
transaction as every change, which every serving process hears on its LISTEN hub."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from paygrid.db.executor import Connection, Executor

CHANNEL = "paygrid_fence"
LOWERED = "lowered"
"""The payload of a NOTIFY that lowers the fence; a raise sends ``raised:<retry_after>``."""


@dataclass(frozen=True, slots=True)
class FenceRow:
    """A raised fence: why (``restoring``), the Retry-After to answer, since when."""

    reason: str
    retry_after: int
    raised_at: datetime


async def current(conn: Executor) -> FenceRow | None:
    """The raised fence, or ``None``; ``None`` too before migration 0029 made its table."""
    try:
        row = await conn.fetchrow(
            "SELECT reason, retry_after, raised_at FROM paygrid_fence.fence WHERE singleton"
        )
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return None
    if row is None:
        return None
    return FenceRow(row["reason"], row["retry_after"], row["raised_at"])


async def raise_fence(conn: Connection, reason: str, retry_after: int, now: datetime) -> None:
    """Raise (or re-raise) the fence and tell every listening process, in one transaction."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO paygrid_fence.fence (singleton, reason, retry_after, raised_at)"
            " VALUES (true, $1, $2, $3) ON CONFLICT (singleton) DO UPDATE"
            " SET reason = EXCLUDED.reason, retry_after = EXCLUDED.retry_after",
            reason,
            retry_after,
            now,
        )
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"raised:{retry_after}")


async def lower_fence(conn: Connection) -> bool:
    """Lower the fence and tell every listening process; False when it was not raised."""
    async with conn.transaction():
        lowered = await conn.fetchval("DELETE FROM paygrid_fence.fence RETURNING true")
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, LOWERED)
    return bool(lowered)


async def ensure_table(conn: Executor) -> None:
    """Create the fence's schema and table when the database has none yet (a restore of an
    archive older than migration 0029, before it migrates): the same DDL as 0029."""
    await conn.execute(
        "CREATE SCHEMA IF NOT EXISTS paygrid_fence;"
        " CREATE TABLE IF NOT EXISTS paygrid_fence.fence ("
        " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
        " reason text NOT NULL,"
        " retry_after integer NOT NULL CHECK (retry_after > 0),"
        " raised_at timestamptz NOT NULL)"
    )
