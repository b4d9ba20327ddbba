"""Which database a read-only request reads from: the replica when one is configured and
has caught up with the primary (``paygrid.db.read_replica`` explains the rule), else the
primary; and the primary again when the replica fails in the middle of the read.

Without ``PAYGRID_READ_DATABASE_URL`` this costs nothing: ``deps`` is returned as it is.
"""

from __future__ import annotations

from dataclasses import replace

from paygrid.db.read_replica import ReplicaHealth, replica_failure
from paygrid.dependencies import Deps


async def reads_for(deps: Deps) -> Deps:
    """The ``Deps`` a read-only request runs on: its ``pool`` (and the reports' pool) is the
    replica's when the replica may serve this read, else the primary's."""
    replica = deps.read_replica
    if replica is None:
        return deps
    if await replica.serves_read(deps.pool):
        return replace(deps, pool=replica.pool, read_pool=replica.pool)
    return primary_reads(deps)


def primary_reads(deps: Deps) -> Deps:
    """``deps`` reading everything from the primary, reports included (a report must not lag
    what a list just showed)."""
    return deps if deps.read_pool is None else replace(deps, read_pool=None)


def on_replica(reads: Deps, deps: Deps) -> bool:
    """Whether ``reads`` (from ``reads_for(deps)``) reads from the replica."""
    return reads.pool is not deps.pool


def replica_failed(deps: Deps, error: BaseException) -> bool:
    """Whether ``error``, raised by a read on the replica, means the replica cannot serve it;
    if so the replica is set aside for a while and the read is to be served by the primary."""
    if deps.read_replica is None or not replica_failure(error):
        return False
    deps.read_replica.failed()
    return True


async def replica_health(deps: Deps) -> ReplicaHealth | None:
    """For ``/readyz``: ask the replica now (so a replica that came back is used again at
    once); None when none is configured."""
    replica = deps.read_replica
    if replica is None:
        return None
    await replica.probe()
    return replica.health
