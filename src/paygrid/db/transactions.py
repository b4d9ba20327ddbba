"""Transactions that Postgres may abort for concurrency reasons, run again a bounded number
of times.

A deadlock (SQLSTATE 40P01) or a serialization failure (40001) means Postgres rolled the
whole transaction back and nothing of it was written, so running the same work again is
safe. The work must not call out of the database (no provider calls): only its SQL repeats.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import asyncpg
import structlog

from paygrid.db.executor import Connection
from paygrid.domain.errors import LockTimeout

T = TypeVar("T")
Work = Callable[[Connection], Awaitable[T]]

RUNS: Final = 4  # the first run and three retries
RETRYABLE: Final = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)

log = structlog.get_logger("paygrid.db.transactions")


async def run(pool: asyncpg.Pool, work: Work[T], *, runs: int = RUNS) -> T:
    """Run ``work`` in a transaction on a pooled connection; when Postgres aborts it as a
    deadlock victim or for a serialization failure, run it again (up to ``runs`` times in
    all, after a short random pause). Any other error propagates; the last abort becomes
    ``LockTimeout`` (409 ``lock_timeout``), never a 500."""
    for run_number in range(1, runs + 1):
        try:
            async with pool.acquire() as conn, conn.transaction():
                return await work(conn)
        except RETRYABLE as error:
            if run_number == runs:
                raise LockTimeout(
                    "Other requests changed this object at the same moment; nothing was "
                    "changed by this one. Retry the request."
                ) from error
            log.info("transaction.retried", sqlstate=error.sqlstate, run=run_number)
            # A random pause, growing a little, lets the surviving transaction finish.
            await asyncio.sleep(random.uniform(0, 0.01 * run_number))  # noqa: S311 - jitter
    raise AssertionError("unreachable")  # pragma: no cover
