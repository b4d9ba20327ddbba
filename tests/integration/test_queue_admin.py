"""``/v1/admin/queues`` is a merchant's own view: the jobs of its webhook deliveries and
event publishes, in its key's mode, and nothing about the platform (other merchants' jobs,
worker hosts and pids). The platform-wide view is the operator's ``paygrid queues``."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from paygrid.broker import publisher
from paygrid.clock import SYSTEM_CLOCK
from paygrid.db import events as events_db
from paygrid.db import jobs as jobs_db
from paygrid.db import webhooks as webhooks_db
from paygrid.ids import new_id
from paygrid.services.merchants import NewMerchant, issue_key
from paygrid.webhooks.delivery import DELIVER
from paygrid.webhooks.delivery import QUEUE as WEBHOOKS_QUEUE
from tests.conftest import Api


async def _event(pool: asyncpg.Pool, merchant_id: str, livemode: bool = False) -> str:
    async with pool.acquire() as conn:
        return await events_db.insert_event(
            conn,
            merchant_id=merchant_id,
            livemode=livemode,
            event_type="payment.succeeded",
            object_id=new_id("pay"),
            snapshot={},
        )


async def _deliveries(pool: asyncpg.Pool, merchant_id: str, count: int) -> None:
    """``count`` pending webhook deliveries (with their jobs) for the merchant, test mode."""
    endpoint = await webhooks_db.insert_endpoint(
        pool,
        webhooks_db.NewEndpoint(
            id=new_id("we"),
            merchant_id=merchant_id,
            livemode=False,
            url="https://example.com/hooks",
            description=None,
            enabled_events=["*"],
            metadata={},
            secret_ciphertext=b"not used",
        ),
    )
    planned = [
        (new_id("whd"), merchant_id, False, endpoint.id, await _event(pool, merchant_id))
        for _ in range(count)
    ]
    await webhooks_db.insert_deliveries(
        pool, planned, job_kind=DELIVER, queue=WEBHOOKS_QUEUE, now=SYSTEM_CLOCK.now()
    )


async def _publish_job(pool: asyncpg.Pool, merchant_id: str, livemode: bool = False) -> None:
    event = await _event(pool, merchant_id, livemode)
    await jobs_db.enqueue(
        pool, publisher.PUBLISH, publisher.publish_payload(event), queue=publisher.QUEUE
    )


def _counts(overview: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {q["name"]: q["counts"] for q in overview["queues"]}


@pytest.fixture(autouse=True)
async def _remove_planted_jobs(
    pool: asyncpg.Pool, merchant: NewMerchant, other_merchant: NewMerchant
) -> AsyncIterator[None]:
    """The jobs these tests plant are due at once and name a host no test serves: remove
    them afterwards, so no later test's worker tries to deliver them."""
    yield
    owners = [merchant.id, other_merchant.id]
    await pool.execute(
        "DELETE FROM jobs WHERE payload->>'delivery_id' IN"
        " (SELECT id FROM webhook_deliveries WHERE merchant_id = ANY($1))"
        " OR payload->>'event' IN (SELECT id FROM events WHERE merchant_id = ANY($1))",
        owners,
    )


async def test_a_merchant_sees_only_its_own_jobs_and_no_workers(
    pool: asyncpg.Pool, api: Api, merchant: NewMerchant, other_merchant: NewMerchant
) -> None:
    issued = await issue_key(pool, merchant.id, "secret", False, scopes=["admin"])
    admin = Api(api.http, issued.secret)
    await _deliveries(pool, merchant.id, 3)
    await _publish_job(pool, merchant.id)
    await _publish_job(pool, merchant.id, livemode=True)  # the other mode's: not shown

    answer = await admin.get("/v1/admin/queues")
    assert answer.status_code == 200, answer.text
    overview = answer.json()
    assert overview["object"] == "queue_stats"
    assert _counts(overview) == {
        WEBHOOKS_QUEUE: {"queued": 3},
        publisher.QUEUE: {"queued": 1},
    }
    assert all(q["oldest_due_seconds"] is not None for q in overview["queues"])
    assert "workers" not in overview
    text = answer.text
    assert socket.gethostname() not in text and '"pid"' not in text

    await _deliveries(pool, other_merchant.id, 5)
    await _publish_job(pool, other_merchant.id)
    again = (await admin.get("/v1/admin/queues")).json()
    assert _counts(again) == _counts(overview)


async def test_a_merchant_without_jobs_sees_no_queues(
    pool: asyncpg.Pool, api: Api, merchant: NewMerchant
) -> None:
    issued = await issue_key(pool, merchant.id, "secret", False, scopes=["admin"])
    admin = Api(api.http, issued.secret)
    overview = (await admin.get("/v1/admin/queues")).json()
    assert overview == {"object": "queue_stats", "queues": []}


async def test_the_operator_sees_every_queue_and_the_workers_from_the_cli(
    database_url: str, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    queue = f"test_{uuid.uuid4().hex[:12]}"
    await jobs_db.enqueue(pool, "test.anything", queue=queue)
    worker, host = f"wkr_cli_{uuid.uuid4().hex[:8]}", f"host-{uuid.uuid4().hex[:8]}"
    await pool.execute(
        "INSERT INTO workers (id, hostname, pid, queues, concurrency) VALUES ($1, $2, 4242, $3, 1)",
        worker,
        host,
        [queue],
    )
    try:
        shown = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "paygrid.cli", "queues", "--json"],
            env={**os.environ, "PAYGRID_DATABASE_URL": database_url, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    finally:
        await pool.execute("UPDATE workers SET stopped_at = now() WHERE id = $1", worker)
    assert shown.returncode == 0, shown.stderr
    overview = json.loads(shown.stdout)
    assert _counts(overview)[queue] == {"queued": 1}
    listed = {w["id"]: w for w in overview["workers"]}
    assert listed[worker]["hostname"] == host and listed[worker]["pid"] == 4242
    assert isinstance(datetime.fromtimestamp(listed[worker]["heartbeat"]), datetime)
