"""The read replica (``PAYGRID_READ_DATABASE_URL``, a streaming standby) and the rule that
decides, per read, whether it may serve: only when it has replayed everything the primary
had made durable when the read began.

Why this rule. A client that wrote (through any API process) and then reads must see its
write, and behind a load balancer no process knows who wrote what, nor when. The primary
does: its WAL insert position (``pg_current_wal_insert_lsn()``) taken when the read begins
is at or past the commit record of every write already visible to any client. A standby
whose ``pg_last_wal_replay_lsn()`` has reached that position shows all of them. So each
gated read costs one tiny statement on the primary (no table is touched) and, only when the
replica's last known position is behind, one on the replica. What is cached, and why that
is safe:

- the replica's replay position: it only ever grows (a standby never un-replays WAL), so a
  position seen once is a lower bound for ever after, in every request;
- never the primary's position: it is what a write just moved.

The insert position rather than the flush position, because the workers commit
asynchronously (``cli._work``, ``durable=False``): their writes (a payment settled by
status sync, an invoice paid by a renewal, the events a merchant's webhook announces) are
visible on the primary, and acknowledged by the webhook, before their WAL is flushed, so a
flush position can be behind them. The price: while asynchronous commits keep arriving, the
replica can look behind for up to ``wal_writer_delay`` (200 ms), and those reads go to the
primary; a read never shows the merchant less than it was already told.

A replica that fails (refuses connections, stopped, times out) is left alone for
``RETRY_SECONDS`` (reads go to the primary meanwhile) and then tried again; ``/readyz``
probes it on every call and reports it ``degraded`` while it fails.

One URL must name one standby (not a balancer over several): the cached position belongs to
one server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum
from typing import Final

import asyncpg

from paygrid.db import engine

# How long reads skip a replica that just failed before trying it again.
RETRY_SECONDS: Final = 5.0
# A probe of the replica that takes longer than this counts as a failure: a read should
# rather go to the primary than wait for a replica in trouble.
PROBE_TIMEOUT_SECONDS: Final = 1.0

_PRIMARY_POSITION: Final = "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"
# NULL on a server that is not in recovery: not a standby, so it cannot prove it has a write.
_REPLAYED_POSITION: Final = (
    "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS paygrid_replica_position"
)


class ReplicaHealth(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"  # failing: reads go to the primary


def replica_failure(error: BaseException) -> bool:
    """Whether ``error``, raised by a read on the replica, means the replica cannot serve it
    now (it is unreachable, timed out, or cancelled the query on a recovery conflict), so
    the same read is answered from the primary instead."""
    return engine.unreachable(error) or isinstance(
        error,
        (
            OSError,
            TimeoutError,
            asyncpg.InterfaceError,
            asyncpg.PostgresConnectionError,
            # 40001 on a read-only standby: "canceling statement due to conflict with recovery"
            asyncpg.SerializationError,
            # A replica whose role lost its grants (a restore without privileges) or whose
            # schema differs from the primary's: the primary answers instead of a 500.
            asyncpg.InsufficientPrivilegeError,
            asyncpg.UndefinedTableError,
            asyncpg.UndefinedColumnError,
        ),
    )


class ReadReplica:
    """One process's view of the replica: its pool, the highest replay position seen, and
    whether it is failing. ``monotonic`` is the injected clock's."""

    def __init__(self, pool: asyncpg.Pool, monotonic: Callable[[], float]) -> None:
        self.pool = pool
        self._monotonic = monotonic
        self._replayed = -1  # the highest replay position seen (a lower bound from then on)
        self._retry_at: float | None = None  # set while failing: when to try it again

    @property
    def health(self) -> ReplicaHealth:
        return ReplicaHealth.OK if self._retry_at is None else ReplicaHealth.DEGRADED

    async def serves_read(self, primary: asyncpg.Pool) -> bool:
        """Whether a read beginning now may go to the replica: it is not failing and has
        replayed all the primary has written. Costs one statement on the primary, plus one
        on the replica when its known position is behind."""
        if self._retry_at is not None and self._monotonic() < self._retry_at:
            return False
        target: int = await primary.fetchval(_PRIMARY_POSITION)
        if self._replayed >= target and self._retry_at is None:
            return True
        replayed = await self.probe()
        return replayed is not None and replayed >= target

    async def probe(self) -> int | None:
        """Ask the replica its replay position (None: not a standby, or failing) and record
        whether it answers."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                replayed: int | None = await self.pool.fetchval(_REPLAYED_POSITION)
        except Exception as error:
            if not replica_failure(error):
                raise
            self.failed()
            return None
        self._retry_at = None
        if replayed is not None:
            self._replayed = max(self._replayed, replayed)
        return replayed

    def failed(self) -> None:
        """The replica failed a read or a probe: reads skip it for ``RETRY_SECONDS``. The
        replay position seen is forgotten: what answers next at this URL may be another
        server (a standby rebuilt from an older backup), which must prove its own."""
        self._retry_at = self._monotonic() + RETRY_SECONDS
        self._replayed = -1
