"""Operating the background queues: statistics, pausing and resuming webhook delivery, and
retrying what was dead-lettered."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypedDict

import asyncpg

from paygrid.broker import publisher
from paygrid.db import jobs as jobs_db
from paygrid.db import webhooks as webhooks_db
from paygrid.db import workers as workers_db
from paygrid.db.jobs import QueueCounts
from paygrid.db.workers import WorkerRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import ResourceMissing
from paygrid.services import provider_webhooks
from paygrid.services.context import Tenant
from paygrid.services.webhook_deliveries import retry_dead_letters
from paygrid.webhooks.delivery import DELIVER, QUEUE
from paygrid.worker.runner import LIVE_WORKER_WINDOW


# The answers are JSON documents (the API's body, the CLI's --json), typed as such.
class QueueView(TypedDict):
    name: str
    counts: dict[str, int]
    oldest_due_seconds: float | None


class WorkerView(TypedDict):
    id: str
    hostname: str
    pid: int
    queues: list[str]
    heartbeat: int
    started: int


class MerchantQueues(TypedDict):
    object: Literal["queue_stats"]
    queues: list[QueueView]


class PlatformQueues(MerchantQueues):
    workers: list[WorkerView]


def _queues(rows: list[QueueCounts]) -> list[QueueView]:
    return [
        {"name": q.queue, "counts": q.counts, "oldest_due_seconds": q.oldest_due_seconds}
        for q in rows
    ]


def _worker(worker: WorkerRow) -> WorkerView:
    return {
        "id": worker.id,
        "hostname": worker.hostname,
        "pid": worker.pid,
        "queues": list(worker.queues),
        "heartbeat": int(worker.heartbeat_at.timestamp()),
        "started": int(worker.started_at.timestamp()),
    }


async def merchant_queue_stats(deps: Deps, tenant: Tenant) -> MerchantQueues:
    """Per queue, the merchant's own jobs in this mode (its webhook deliveries, event
    publishes and provider webhooks) by state, and the age of the oldest due one. Nothing
    about other merchants or the machines: that is the operator's ``platform_queue_stats``."""
    rows = await jobs_db.merchant_queue_stats(
        deps.pool,
        tenant.merchant_id,
        tenant.livemode,
        deliver=DELIVER,
        publish=publisher.PUBLISH,
        apply=provider_webhooks.APPLY,
        now=deps.clock.now(),
    )
    return {"object": "queue_stats", "queues": _queues(rows)}


async def platform_queue_stats(pool: asyncpg.Pool, now: datetime) -> PlatformQueues:
    """For the operator only (``paygrid queues``): every job's counts by queue and state,
    and the workers live at ``now`` with their host names, pids and last heartbeats."""
    queues = await jobs_db.queue_stats(pool, now)
    workers = await workers_db.live_workers(pool, LIVE_WORKER_WINDOW, now)
    return {
        "object": "queue_stats",
        "queues": _queues(queues),
        "workers": [_worker(WorkerRow.from_record(w)) for w in workers],
    }


async def set_delivery_paused(
    deps: Deps, tenant: Tenant, endpoint_id: str | None, *, paused: bool
) -> int:
    """Pause or resume delivery to one endpoint or all of the merchant's; resuming makes
    the held deliveries due at once. Returns how many endpoints changed."""
    async with deps.pool.acquire() as conn, conn.transaction():
        ids = await webhooks_db.endpoint_ids(conn, tenant.merchant_id, tenant.livemode, endpoint_id)
        if endpoint_id is not None and not ids:
            raise ResourceMissing(f"No such webhook endpoint: '{endpoint_id}'", param="endpoint")
        changed = await webhooks_db.set_paused(
            conn, tenant.merchant_id, tenant.livemode, endpoint_id, paused
        )
        if not paused:
            await webhooks_db.wake_deliveries(conn, ids, DELIVER, QUEUE, deps.clock.now())
    return changed


async def retry_failed(deps: Deps, tenant: Tenant) -> int:
    return await retry_dead_letters(deps, tenant)
