"""Run job workers in tests and wait for jobs to reach a state.

Every wait has a generous deadline: it bounds how long a broken worker can hang the suite,
and says nothing about how fast a working one is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from paygrid.dependencies import Deps
from paygrid.worker.registry import JobRegistry
from paygrid.worker.runner import Worker, WorkerConfig

DEADLINE_SECONDS = 10.0
# Short enough that a test never waits long for a poll; the lease leaves room for a busy
# event loop before a renewal is late.
FAST = {"poll_seconds": 0.05, "lease_seconds": 5.0, "shutdown_seconds": 1.0}


def worker_for(deps: Deps, registry: JobRegistry, queue: str, **config: Any) -> Worker:
    return Worker(deps, registry, WorkerConfig(queues=(queue,), **{**FAST, **config}))


@asynccontextmanager
async def running(
    deps: Deps, registry: JobRegistry, queue: str, **config: Any
) -> AsyncIterator[Worker]:
    """A started worker on ``queue``, stopped gracefully afterwards."""
    worker = worker_for(deps, registry, queue, **config)
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


async def job_row(pool: asyncpg.Pool, job_id: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
    assert row is not None, f"no job {job_id}"
    return row


async def eventually(
    check: Callable[[], Awaitable[bool]], deadline: float = DEADLINE_SECONDS
) -> None:
    """Wait until ``check`` holds."""
    async with asyncio.timeout(deadline):
        while not await check():  # noqa: ASYNC110 - polls the database: no event to wait on
            await asyncio.sleep(0.02)


async def settled(
    pool: asyncpg.Pool,
    job_id: str,
    statuses: tuple[str, ...] = ("succeeded", "dead"),
    deadline: float = DEADLINE_SECONDS,
) -> asyncpg.Record:
    """The job's row once its status is one of ``statuses``."""
    rows: list[asyncpg.Record] = []

    async def reached() -> bool:
        rows.append(await job_row(pool, job_id))
        return str(rows[-1]["status"]) in statuses

    await eventually(reached, deadline)
    return rows[-1]
