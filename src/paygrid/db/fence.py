"""The write fence of ``paygrid restore``: one row in ``paygrid_fence.fence`` (a schema that
backups leave out and a restore leaves in place), and a NOTIFY on ``CHANNEL`` in the same
transaction as every change, which every serving process hears on its LISTEN hub.

Its drain acknowledgment, in ``paygrid_fence.processes``: each serve and worker process
registers (as host, pid and a boot id drawn at start) from its LISTEN hub's own connection,
whose backend (pid and ``backend_start``, so a reused pid never matches) is the liveness
hint, and reports, for a raised fence (its ``raised_at``), how much it still has in flight
and when it drained. A row whose backend is gone is marked lost and still waited for until
the process registers again from its new connection, or swept after a grace period (it
crashed): no heartbeat needed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.listener import Notifications, NotListening

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


async def raise_fence(conn: Connection, reason: str, retry_after: int, now: datetime) -> datetime:
    """Raise (or re-raise) the fence and tell every listening process, in one transaction.
    Returns its ``raised_at``: a re-raised fence keeps its first, and the drain reports
    processes made for it."""
    async with conn.transaction():
        raised_at: datetime = await conn.fetchval(
            "INSERT INTO paygrid_fence.fence (singleton, reason, retry_after, raised_at)"
            " VALUES (true, $1, $2, $3) ON CONFLICT (singleton) DO UPDATE"
            " SET reason = EXCLUDED.reason, retry_after = EXCLUDED.retry_after"
            " RETURNING raised_at",
            reason,
            retry_after,
            now,
        )
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"raised:{retry_after}")
    return raised_at


async def lower_fence(conn: Connection) -> bool:
    """Lower the fence and tell every listening process; False when it was not raised."""
    async with conn.transaction():
        lowered = await conn.fetchval("DELETE FROM paygrid_fence.fence RETURNING true")
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, LOWERED)
    return bool(lowered)


async def ensure_table(conn: Executor) -> None:
    """Create the fence's schema and tables when the database has none yet (a restore of
    an archive older than migration 0029 or 0031, before it migrates): their DDL."""
    await conn.execute(
        "CREATE SCHEMA IF NOT EXISTS paygrid_fence;"
        " CREATE TABLE IF NOT EXISTS paygrid_fence.fence ("
        " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
        " reason text NOT NULL,"
        " retry_after integer NOT NULL CHECK (retry_after > 0),"
        " raised_at timestamptz NOT NULL);"
        " CREATE TABLE IF NOT EXISTS paygrid_fence.processes ("
        " hostname text NOT NULL,"
        " pid integer NOT NULL,"
        " boot_id text NOT NULL,"
        " role text NOT NULL CHECK (role IN ('serve', 'worker')),"
        " backend_pid integer NOT NULL,"
        " backend_start timestamptz NOT NULL,"
        " registered_at timestamptz NOT NULL,"
        " lost_at timestamptz,"
        " fence_raised_at timestamptz,"
        " in_flight integer NOT NULL DEFAULT 0 CHECK (in_flight >= 0),"
        " reported_at timestamptz,"
        " drained_at timestamptz,"
        " PRIMARY KEY (hostname, pid, boot_id),"
        " CHECK (drained_at IS NULL OR (fence_raised_at IS NOT NULL AND in_flight = 0)))"
    )


class ProcessRole(StrEnum):
    SERVE = "serve"
    WORKER = "worker"


class Unregistered(StrEnum):
    """Why ``register_process`` registered nothing."""

    NO_TABLE = "no_table"  # before migration 0031 (a restore creates it: register again)
    NOT_LISTENING = "not_listening"  # the hub has no connection now: again once it has
    NO_ROW = "no_row"  # the table is there but nothing was written: a bug to report


@dataclass(frozen=True, slots=True)
class ProcessId:
    """A serving or worker process, as the drain tells it apart: its host and pid, and a
    ``boot_id`` drawn when it starts (a pid reused after a restart, or in another container
    under the same hostname, is another process). Its row is replaced, not duplicated, when
    it registers again under a new LISTEN connection."""

    hostname: str
    pid: int
    boot_id: str


@dataclass(frozen=True, slots=True)
class Backend:
    """A database backend, as ``pg_stat_activity`` tells it apart from a later one that
    reuses its pid."""

    pid: int
    started: datetime


@dataclass(frozen=True, slots=True)
class ProcessDrain:
    """A registered process and what it last reported (``fence_raised_at``: the fence its
    ``in_flight`` is for; ``drained_at``: when that reached 0). ``lost_at``: since when its
    LISTEN backend is gone (it may have missed the raise): it is waited for until it
    registers again, or its row is swept once the grace period is over."""

    process: ProcessId
    backend: Backend
    role: ProcessRole
    fence_raised_at: datetime | None
    in_flight: int
    drained_at: datetime | None
    lost_at: datetime | None

    @property
    def hostname(self) -> str:
        return self.process.hostname

    @property
    def pid(self) -> int:
        return self.process.pid

    def drained(self, raised_at: datetime) -> bool:
        return (
            self.lost_at is None
            and self.fence_raised_at == raised_at
            and self.drained_at is not None
        )


_MISSING = (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError)
# Whether a row's backend is alive. A backend of another role than the one asking shows
# no backend_start without pg_read_all_stats (the restore's role may differ from the
# processes'): its pid alone then says it is alive, so a process is never misjudged gone
# (at worst a pid reused meanwhile keeps a crashed process's row a little longer).
_ALIVE = (
    "EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = p.backend_pid"
    " AND (a.backend_start = p.backend_start OR a.backend_start IS NULL))"
)
_KEY = "hostname = $1 AND pid = $2 AND boot_id = $3"


async def register_process(
    hub: Notifications, process: ProcessId, role: ProcessRole, now: datetime
) -> Backend | Unregistered:
    """Register ``process`` under the hub's connection, on that connection itself: its own
    ``pg_backend_pid()`` and ``backend_start`` are visible whatever its role and rights
    (another connection, of another role or behind a pooler, may see neither). Replaces the
    process's row under a previous connection, and what it reported there."""
    try:
        row = await hub.on_connection(
            "INSERT INTO paygrid_fence.processes (hostname, pid, boot_id, role, backend_pid,"
            " backend_start, registered_at)"
            " SELECT $1, $2, $3, $4, a.pid, a.backend_start, $5 FROM pg_stat_activity a"
            " WHERE a.pid = pg_backend_pid()"
            " ON CONFLICT (hostname, pid, boot_id) DO UPDATE SET role = EXCLUDED.role,"
            " backend_pid = EXCLUDED.backend_pid, backend_start = EXCLUDED.backend_start,"
            " registered_at = EXCLUDED.registered_at, lost_at = NULL, fence_raised_at = NULL,"
            " in_flight = 0, reported_at = NULL, drained_at = NULL"
            " RETURNING backend_pid, backend_start",
            process.hostname,
            process.pid,
            process.boot_id,
            role.value,
            now,
        )
    except _MISSING:
        return Unregistered.NO_TABLE
    except NotListening:
        return Unregistered.NOT_LISTENING
    if row is None:
        return Unregistered.NO_ROW
    return Backend(row["backend_pid"], row["backend_start"])


async def report_in_flight(
    conn: Executor, process: ProcessId, raised_at: datetime, in_flight: int, now: datetime
) -> bool:
    """Record what ``process`` has in flight for the fence raised at ``raised_at``
    (drained when 0; not drained any more when it rose again). Any connection will do.
    False when it is not registered (any more)."""
    try:
        reported = await conn.fetchval(
            "UPDATE paygrid_fence.processes SET fence_raised_at = $4, in_flight = $5,"
            " reported_at = $6, drained_at = CASE WHEN $5::integer = 0 THEN $6::timestamptz END"
            f" WHERE {_KEY} RETURNING true",
            process.hostname,
            process.pid,
            process.boot_id,
            raised_at,
            in_flight,
            now,
        )
    except _MISSING:
        return False
    return bool(reported)


async def unregister_process(conn: Executor, process: ProcessId) -> None:
    """Forget a process that stops."""
    try:
        await conn.execute(
            f"DELETE FROM paygrid_fence.processes WHERE {_KEY}",
            process.hostname,
            process.pid,
            process.boot_id,
        )
    except _MISSING:
        return


async def live_processes(conn: Executor, lost_grace_seconds: float) -> list[ProcessDrain]:
    """The registered processes, oldest first. A row whose backend is gone is marked lost
    (the database's ``clock_timestamp()``, the same for every restore whatever its host's
    clock) rather than dropped: its process may serve on through its pool while its hub
    reconnects. Lost for longer than ``lost_grace_seconds``, it is swept (crashed)."""
    await conn.execute(
        "DELETE FROM paygrid_fence.processes p WHERE p.lost_at"
        f" <= clock_timestamp() - make_interval(secs => $1) AND NOT {_ALIVE}",
        lost_grace_seconds,
    )
    await conn.execute(
        "UPDATE paygrid_fence.processes p"
        f" SET lost_at = CASE WHEN {_ALIVE} THEN NULL ELSE clock_timestamp() END"
        f" WHERE (p.lost_at IS NULL) <> {_ALIVE}"
    )
    rows = await conn.fetch(
        "SELECT hostname, pid, boot_id, role, backend_pid, backend_start, fence_raised_at,"
        " in_flight, drained_at, lost_at FROM paygrid_fence.processes p"
        " ORDER BY registered_at, hostname, pid"
    )
    return [
        ProcessDrain(
            ProcessId(row["hostname"], row["pid"], row["boot_id"]),
            Backend(row["backend_pid"], row["backend_start"]),
            ProcessRole(row["role"]),
            row["fence_raised_at"],
            row["in_flight"],
            row["drained_at"],
            row["lost_at"],
        )
        for row in rows
    ]
