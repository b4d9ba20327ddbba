"""The restore's wait for what is in flight when it raises the write fence (issue 16 §5):
a request waiting on a provider when the fence rose may still charge it, and a charge made
after the re-sync listed the account would be lost from the restored database (and made
again on retry). So the restore waits until every live serve and worker process reported
it drained for this fence (services/restore/fence.py ``FenceWatch``; ``db.fence``), or
refuses after a timeout with nothing emptied.

A process whose LISTEN connection is gone may have lost it only for a moment (a network
blip, ``idle_session_timeout``, ``pg_terminate_backend``) and serve on through its pool,
maybe without having heard the raise: its row is marked lost and waited for until the
process registers again from its new connection (which replaces its row and reports), or
for ``LOST_GRACE_SECONDS``, well above the hub's longest reconnect delay
(``db.listener.MAX_RETRY_SECONDS``); after that it is taken for crashed and its row is
swept. Where the restore's role cannot see another role's ``backend_start`` (without
pg_read_all_stats), the backend's pid alone says it is alive (``db.fence``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from paygrid.db import fence as fence_db
from paygrid.db.executor import Connection
from paygrid.db.fence import ProcessDrain
from paygrid.services.backups.archive import BackupError

POLL_SECONDS = 0.2
LOST_GRACE_SECONDS = 10.0

Progress = Callable[[str], Awaitable[None]]


class DrainTimeout(BackupError):
    """Processes still had requests or jobs in flight when the drain timeout ran out:
    nothing was emptied, and the fence stays raised."""

    def __init__(self, seconds: float, raised_at: datetime, busy: list[ProcessDrain]) -> None:
        self.busy = busy
        super().__init__(
            f"after {seconds:g} s, {_listed(busy, raised_at)} still had requests or jobs "
            "in flight; nothing was emptied and the fence stays raised: stop the stuck process (or "
            "wait for it) and run the restore again, or lower the fence with "
            "`paygrid restore --reopen`"
        )


async def wait_for_drain(
    conn: Connection,
    raised_at: datetime,
    timeout_seconds: float,
    progress: Progress | None = None,
    lost_grace_seconds: float = LOST_GRACE_SECONDS,
) -> None:
    """Return once every registered process reported it drained for the fence raised at
    ``raised_at`` (a lost one: once it registers again, or after ``lost_grace_seconds``);
    raise ``DrainTimeout`` after ``timeout_seconds``. ``progress`` hears
    which processes are still busy, each time that changes."""
    deadline = time.monotonic() + timeout_seconds
    told = ""
    while True:
        processes = await fence_db.live_processes(conn, lost_grace_seconds)
        busy = [p for p in processes if not p.drained(raised_at)]
        if not busy:
            return
        if time.monotonic() >= deadline:
            raise DrainTimeout(timeout_seconds, raised_at, busy)
        waiting = f"waiting for {_listed(busy, raised_at)} to finish what is in flight"
        if progress is not None and waiting != told:
            await progress(waiting)
        told = waiting
        await asyncio.sleep(POLL_SECONDS)


def _listed(busy: list[ProcessDrain], raised_at: datetime) -> str:
    return ", ".join(f"{p.role} {p.hostname}:{p.pid} ({_state(p, raised_at)})" for p in busy)


def _state(process: ProcessDrain, raised_at: datetime) -> str:
    if process.lost_at is not None:
        return "LISTEN connection lost, waiting for it to register again"
    if process.fence_raised_at != raised_at:
        return "not reported yet"
    return f"{process.in_flight} in flight"
