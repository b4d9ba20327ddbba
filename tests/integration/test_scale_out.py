"""Scale-out on one PostgreSQL (issue 16 §3): two ``paygrid serve`` and two ``paygrid worker``
processes on one scratch database, as a deployment runs them behind a load balancer.

* payments sent round-robin to both API processes, retries of an Idempotency-Key sent to the
  other one: each payment exists once, each of its events reaches the receiver once;
* 500 subscriptions on one test clock renew at the same instant: each gets exactly one
  renewal invoice, paid by exactly one charge at the simulator, and each renewal's
  ``invoice.paid`` reaches the receiver once;
* the same with the worker running the advance SIGKILLed mid-batch (after some charges,
  before the batch marks them paid): its claim is reaped after the shortened lease and the
  other worker finishes the advance: every renewal is paid once and nothing is charged
  twice;
* a rate limit counted in Redis is shared by both API processes (skipped without
  ``PAYGRID_TEST_REDIS_URL``, as in ``test_rate_limits.py``).

The API processes run no job worker (``PAYGRID_WORKER_IN_PROCESS=false``): the two
``paygrid worker`` processes do all the jobs and deliveries. All four share one encryption
key, as a deployment must (a key generated per data directory would leave each process
unable to read the cards another saved).
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.db import engine
from paygrid.services.merchants import NewMerchant, create_merchant
from tests.conftest import LOCAL_WEBHOOK_HOSTS, SUCCESS_CARD, auth, card, scratch_database
from tests.integration.webhook_receiver import Receiver, receiver
from tests.integration.worker_harness import eventually

pytestmark = pytest.mark.slow

REDIS_URL = os.environ.get("PAYGRID_TEST_REDIS_URL", "")
PAYMENTS = 40
RETRIED = 12  # of them, sent again with the same Idempotency-Key to the other process
SUBSCRIPTIONS = 500
CUSTOMER_LIMIT = 10  # payments per customer per minute, counted in Redis
LEASE_SECONDS = 3
T0 = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp())
PERIOD_END = int(datetime(2030, 2, 1, tzinfo=UTC).timestamp())
UNLIMITED = "1000000/second"
START_SECONDS = 240.0  # a bound: importing paygrid took 16 s of wall time on a loaded machine
PURCHASE = {"amount": 2500, "currency": "USD", "confirm": True}

# Copies of one subscription (its customer, items and period), so that all renew at the same
# instant; ``bench/renewals.py`` does the same. Built from the row as JSON, so a column added
# by a later migration is copied too.
CLONE = """
WITH made AS (
    INSERT INTO subscriptions
    SELECT (jsonb_populate_record(NULL::subscriptions, to_jsonb(s) || jsonb_build_object(
        'id', s.id || 'x' || n, 'latest_invoice_id', NULL))).*
    FROM subscriptions s, generate_series(1, $2) AS n WHERE s.id = $1
    RETURNING id)
INSERT INTO subscription_items
SELECT (jsonb_populate_record(NULL::subscription_items, to_jsonb(i) || jsonb_build_object(
    'id', 'si_' || substr(made.id, 5), 'subscription_id', made.id))).*
FROM made, subscription_items i WHERE i.subscription_id = $1
"""


@dataclass(frozen=True)
class Cluster:
    """The four processes' addresses and handles, and a pool on their database."""

    apis: tuple[str, str]
    workers: tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]
    pool: asyncpg.Pool
    logs: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(command: str, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "paygrid.cli", command],
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def _stopped_at_exit() -> Iterator[list[subprocess.Popen[bytes]]]:
    """A list to put started processes in; all get SIGTERM at once at the end (killed if
    they take longer than 20 s to stop)."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        yield processes
    finally:
        running = [process for process in processes if process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


async def _ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    last: list[str] = ["no answer"]
    async with httpx.AsyncClient(base_url=url) as http:

        async def answered() -> bool:
            if process.poll() is not None:
                pytest.fail(f"serve exited:\n{await asyncio.to_thread(log.read_text)}")
            try:
                reply = await http.get("/readyz", timeout=2)
            except httpx.TransportError as error:
                last[0] = repr(error)
                return False
            last[0] = f"{reply.status_code} {reply.text}"
            return reply.status_code == 200

        try:
            await eventually(answered, deadline=START_SECONDS)
        except TimeoutError:
            pytest.fail(f"{url} not ready; /readyz: {last[0]}")


async def _worker_started(pool: asyncpg.Pool, process: subprocess.Popen[bytes], log: Path) -> None:
    async def registered() -> bool:
        if process.poll() is not None:
            pytest.fail(f"worker exited:\n{await asyncio.to_thread(log.read_text)}")
        found = await pool.fetchval(
            "SELECT count(*) FROM workers WHERE pid = $1 AND stopped_at IS NULL", process.pid
        )
        return bool(found)

    await eventually(registered, deadline=START_SECONDS)


@pytest.fixture(scope="module")
def scale_database(server_url: str) -> Iterator[str]:
    """A database of this module's own: the workers run every job in it."""
    with scratch_database(server_url, "paygrid_scaleout") as url:
        engine.upgrade(url)
        yield url


@pytest.fixture(scope="module")
async def cluster(
    scale_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cluster]:
    logs = tmp_path_factory.mktemp("scale_out")
    with _stopped_at_exit() as started:
        common = {
            "PAYGRID_DATABASE_URL": scale_database,
            "PAYGRID_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "PAYGRID_LOG_LEVEL": "WARNING",
            "PAYGRID_DB_POOL_SIZE": "8",
            "PAYGRID_WEBHOOK_ALLOWED_HOSTS": LOCAL_WEBHOOK_HOSTS,
            "PAYGRID_INVOICE_FINALIZE_DELAY_SECONDS": "0",
        }
        api_env = {
            **common,
            "PAYGRID_WORKER_IN_PROCESS": "false",
            "PAYGRID_RATE_LIMIT_PER_KEY": UNLIMITED,
            "PAYGRID_RATE_LIMIT_PER_IP": UNLIMITED,
            "PAYGRID_RATE_LIMIT_PAYMENTS_PER_CUSTOMER": f"{CUSTOMER_LIMIT}/minute",
        }
        if REDIS_URL:  # a prefix of this run's own: the counts start at zero
            api_env["PAYGRID_REDIS_URL"] = REDIS_URL
            api_env["PAYGRID_REDIS_KEY_PREFIX"] = f"paygrid-scaleout-{uuid.uuid4().hex[:12]}"
        worker_env = {
            **common,
            "PAYGRID_WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
            "PAYGRID_WORKER_POLL_SECONDS": "0.2",
            "PAYGRID_WORKER_CONCURRENCY": "8",
            # Each renewal charge takes 50 ms to come back: the kill lands mid-batch.
            "PAYGRID_SIMULATOR_LATENCY_MS": "50",
        }
        apis: list[str] = []
        serving: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        for number in (1, 2):
            port = _free_port()
            env = {
                **api_env,
                "PAYGRID_PORT": str(port),
                "PAYGRID_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "PAYGRID_DATA_DIR": str(logs / f"serve{number}"),
            }
            log = logs / f"serve{number}.log"
            process = _start("serve", log, env)
            started.append(process)
            serving.append((f"http://127.0.0.1:{port}", process, log))
        workers = []
        for number in (1, 2):
            env = {**worker_env, "PAYGRID_DATA_DIR": str(logs / f"worker{number}")}
            log = logs / f"worker{number}.log"
            workers.append((_start("worker", log, env), log))
            started.append(workers[-1][0])
        pool = await engine.create_pool(scale_database, 4)
        try:
            for api, process, log in serving:
                await _ready(api, process, log)
                apis.append(api)
            for process, log in workers:
                await _worker_started(pool, process, log)
            yield Cluster(
                apis=(apis[0], apis[1]),
                workers=(workers[0][0], workers[1][0]),
                pool=pool,
                logs=logs,
            )
        finally:
            await pool.close()


@pytest.fixture
async def hooks() -> AsyncIterator[Receiver]:
    async with receiver() as started:
        yield started


async def _endpoint(http: httpx.AsyncClient, key: str, url: str, events: list[str]) -> str:
    reply = await http.post(
        "/v1/webhook_endpoints", json={"url": url, "enabled_events": events}, headers=auth(key)
    )
    assert reply.status_code == 200, reply.text
    endpoint_id: str = reply.json()["id"]
    return endpoint_id


async def _deliveries_settled(
    pool: asyncpg.Pool, endpoint_id: str, expected: set[str]
) -> list[str]:
    """The event ids of the endpoint's deliveries, once every ``expected`` event has one and
    none is pending any more (the last events may still be waiting to be dispatched when the
    earlier deliveries have all succeeded)."""
    rows: list[asyncpg.Record] = []

    async def settled() -> bool:
        rows[:] = await pool.fetch(
            "SELECT event_id, status FROM webhook_deliveries WHERE endpoint_id = $1", endpoint_id
        )
        return expected <= {row["event_id"] for row in rows} and all(
            row["status"] == "succeeded" for row in rows
        )

    await eventually(settled, deadline=120)
    return [row["event_id"] for row in rows]


async def _merchant(cluster: Cluster, name: str) -> tuple[NewMerchant, str]:
    merchant = await create_merchant(cluster.pool, name)
    return merchant, merchant.key("secret", livemode=False)


async def test_payments_round_robin_exist_and_are_delivered_once(
    cluster: Cluster, hooks: Receiver
) -> None:
    merchant, key = await _merchant(cluster, "Scale-out payments")
    clients = [httpx.AsyncClient(base_url=api, timeout=60) for api in cluster.apis]
    try:
        endpoint = await _endpoint(clients[0], key, hooks.url, ["*"])
        body = {**PURCHASE, "payment_method_data": card(SUCCESS_CARD)}
        gate = asyncio.Semaphore(8)

        async def pay(number: int) -> tuple[str, str | None]:
            headers = auth(key, **{"Idempotency-Key": f"order-{number}"})
            async with gate:
                first = await clients[number % 2].post("/v1/payments", json=body, headers=headers)
                assert first.status_code == 200, first.text
                assert first.json()["status"] == "succeeded"
                if number >= RETRIED:
                    return first.json()["id"], None
                again = await clients[(number + 1) % 2].post(
                    "/v1/payments", json=body, headers=headers
                )
            assert again.status_code == 200, again.text
            assert again.headers["idempotent-replayed"] == "true"
            return first.json()["id"], again.json()["id"]

        answers = await asyncio.gather(*(pay(number) for number in range(PAYMENTS)))
    finally:
        for client in clients:
            await client.aclose()
    assert all(replayed in (None, paid) for paid, replayed in answers)
    paid_ids = {paid for paid, _ in answers}
    assert len(paid_ids) == PAYMENTS
    stored = await cluster.pool.fetch(
        "SELECT id, status FROM payments WHERE merchant_id = $1", merchant.id
    )
    assert {row["id"] for row in stored} == paid_ids
    assert {row["status"] for row in stored} == {"succeeded"}
    charges = await cluster.pool.fetchval(
        "SELECT count(*) FROM simulator.charges c JOIN payment_attempts a"
        " ON a.id = c.idempotency_key WHERE a.payment_id = ANY($1::text[])",
        list(paid_ids),
    )
    assert charges == PAYMENTS

    events = {
        row["id"]
        for row in await cluster.pool.fetch(
            "SELECT id FROM events WHERE merchant_id = $1", merchant.id
        )
    }
    assert len(events) >= PAYMENTS  # at least payment.succeeded for each
    delivered = await _deliveries_settled(cluster.pool, endpoint, events)
    assert sorted(delivered) == sorted(events)  # one delivery per event

    async def all_arrived() -> bool:
        return events <= set(hooks.event_ids())

    await eventually(all_arrived, deadline=30)
    await asyncio.sleep(1)  # a duplicate would arrive now
    assert Counter(hooks.event_ids()) == Counter(dict.fromkeys(events, 1))
    assert hooks.overlaps == []


async def _setup_subscription(http: httpx.AsyncClient, key: str) -> tuple[str, str]:
    """A test clock and one subscription on it, charged to a saved card, over the API."""

    async def ok(path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await http.post(path, json=body, headers=auth(key))
        assert reply.status_code == 200, reply.text
        answer: dict[str, Any] = reply.json()
        return answer

    product = await ok("/v1/products", {"name": "Scale-out plan"})
    price = await ok(
        "/v1/prices",
        {
            "product": product["id"],
            "currency": "USD",
            "unit_amount": 1500,
            "recurring": {"interval": "month"},
        },
    )
    clock = await ok("/v1/test_clocks", {"frozen_time": T0})
    customer = await ok("/v1/customers", {"test_clock": clock["id"]})
    method = await ok(
        "/v1/payment_methods",
        {"type": "card", "customer": customer["id"], "card": card(SUCCESS_CARD)["card"]},
    )
    defaults = {"invoice_settings": {"default_payment_method": method["id"]}}
    await ok(f"/v1/customers/{customer['id']}", defaults)
    body = {"customer": customer["id"], "items": [{"price": price["id"]}]}
    subscription = await ok("/v1/subscriptions", body)
    return clock["id"], subscription["id"]


async def _advancing_worker(cluster: Cluster, merchant_id: str) -> subprocess.Popen[bytes]:
    """The worker process that holds the clock's advance job, once it has charged some of
    the renewal invoices at the simulator (it makes and finalizes them all, charges them,
    then marks those paid that were, in one transaction)."""
    found: list[subprocess.Popen[bytes]] = []

    async def charging() -> bool:
        pid = await cluster.pool.fetchval(
            "SELECT w.pid FROM jobs j JOIN workers w ON w.id = j.locked_by"
            " WHERE j.kind = 'test_clocks.advance' AND j.status = 'running'"
        )
        found[:] = [w for w in cluster.workers if w.pid == pid]
        return bool(found) and await _charges(cluster.pool, merchant_id) > 50

    await eventually(charging, deadline=120)
    return found[0]


async def _charges(pool: asyncpg.Pool, merchant_id: str) -> int:
    """Charges made at the simulator for the merchant's payments."""
    charges: int = await pool.fetchval(
        "SELECT count(*) FROM simulator.charges c JOIN payment_attempts a"
        " ON a.id = c.idempotency_key JOIN payments p ON p.id = a.payment_id"
        " WHERE p.merchant_id = $1",
        merchant_id,
    )
    return charges


async def _paid_renewals(pool: asyncpg.Pool, merchant_id: str) -> int:
    paid: int = await pool.fetchval(
        "SELECT count(*) FROM invoices WHERE merchant_id = $1"
        " AND billing_reason = 'subscription_cycle' AND status = 'paid'",
        merchant_id,
    )
    return paid


@dataclass(frozen=True)
class Renewing:
    """500 subscriptions of a merchant of their own on one test clock, its advance asked."""

    merchant_id: str
    key: str
    clock: str
    endpoint: str


async def _start_renewals(
    cluster: Cluster, http: httpx.AsyncClient, name: str, url: str
) -> Renewing:
    """Make the subscriptions and an endpoint for ``invoice.paid``, then advance the clock
    once past the period's end (the renewal invoices are finalized and charged at once)."""
    merchant, key = await _merchant(cluster, name)
    clock, first = await _setup_subscription(http, key)
    await cluster.pool.execute(CLONE, first, SUBSCRIPTIONS - 1)
    endpoint = await _endpoint(http, key, url, ["invoice.paid"])
    advance = {"frozen_time": PERIOD_END + 60}
    reply = await http.post(f"/v1/test_clocks/{clock}/advance", json=advance, headers=auth(key))
    assert reply.status_code == 200, reply.text
    return Renewing(merchant.id, key, clock, endpoint)


async def _clock_ready(http: httpx.AsyncClient, renewing: Renewing) -> None:
    async def ready() -> bool:
        state = await http.get(f"/v1/test_clocks/{renewing.clock}", headers=auth(renewing.key))
        assert state.json()["status"] in ("advancing", "ready"), state.text
        return bool(state.json()["status"] == "ready")

    await eventually(ready, deadline=180)


async def _assert_each_renewed_once(pool: asyncpg.Pool, merchant_id: str) -> None:
    """One renewal invoice per subscription, paid by a payment of its own; the merchant's
    payments and simulator charges: the first invoice's, then one per renewal, none twice."""
    renewals = await pool.fetch(
        "SELECT s.id, count(i.id) AS invoices, count(i.id) FILTER (WHERE i.status = 'paid')"
        " AS paid, min(i.payment_id) AS payment FROM subscriptions s LEFT JOIN invoices i"
        " ON i.subscription_id = s.id AND i.billing_reason = 'subscription_cycle'"
        " WHERE s.merchant_id = $1 GROUP BY s.id",
        merchant_id,
    )
    assert len(renewals) == SUBSCRIPTIONS
    wrong = [dict(r) for r in renewals if (r["invoices"], r["paid"]) != (1, 1)]
    assert wrong == [], f"{len(wrong)} not renewed and paid once, first: {wrong[:3]}"
    assert len({r["payment"] for r in renewals}) == SUBSCRIPTIONS
    totals = await pool.fetchrow(
        "SELECT count(DISTINCT p.id) AS payments, count(c.id) AS charges,"
        " count(DISTINCT p.id) FILTER (WHERE p.status = 'succeeded') AS succeeded"
        " FROM payments p LEFT JOIN payment_attempts a ON a.payment_id = p.id"
        " LEFT JOIN simulator.charges c ON c.idempotency_key = a.id WHERE p.merchant_id = $1",
        merchant_id,
    )
    assert totals is not None
    expected = SUBSCRIPTIONS + 1
    assert dict(totals) == {"payments": expected, "charges": expected, "succeeded": expected}


async def _assert_paid_events_delivered(
    pool: asyncpg.Pool, renewing: Renewing, hooks: Receiver, duplicates: int
) -> None:
    """Every renewal's ``invoice.paid`` has one delivery, and reached the receiver; at most
    ``duplicates`` requests arrived twice (same webhook-id)."""
    paid_events = {
        row["id"]
        for row in await pool.fetch(
            "SELECT e.id FROM events e JOIN invoices i ON i.id = e.object_id"
            " WHERE e.merchant_id = $1 AND e.type = 'invoice.paid'"
            " AND i.billing_reason = 'subscription_cycle'",
            renewing.merchant_id,
        )
    }
    assert len(paid_events) == SUBSCRIPTIONS
    delivered = await _deliveries_settled(pool, renewing.endpoint, paid_events)
    assert len(delivered) == len(set(delivered))  # one delivery per event
    assert paid_events <= set(delivered)

    async def all_arrived() -> bool:
        return set(delivered) <= set(hooks.event_ids())

    await eventually(all_arrived, deadline=60)
    await asyncio.sleep(1)  # a duplicate would arrive now
    arrivals = Counter(hooks.event_ids())
    assert set(arrivals) == set(delivered)
    assert sum(arrivals.values()) - len(arrivals) <= duplicates
    assert hooks.overlaps == []


async def test_500_renewals_at_one_instant_are_each_invoiced_and_charged_once(
    cluster: Cluster, hooks: Receiver
) -> None:
    async with httpx.AsyncClient(base_url=cluster.apis[0], timeout=60) as http:
        renewing = await _start_renewals(cluster, http, "Scale-out renewals", hooks.url)
        await _clock_ready(http, renewing)
    await _assert_each_renewed_once(cluster.pool, renewing.merchant_id)
    await _assert_paid_events_delivered(cluster.pool, renewing, hooks, duplicates=0)


# A worker killed after the renewal charges and before the batch marks their invoices paid
# leaves them ``open`` with no attempt recorded: the reclaimed advance finds them due
# (``db.subscriptions.COLLECT_DUE``) and charges them with the same keys, which find the
# payments already made (found by this test; it failed until migration 0030).
async def test_a_worker_killed_mid_renewal_batch_is_reaped_and_nothing_is_charged_twice(
    cluster: Cluster, hooks: Receiver
) -> None:
    async with httpx.AsyncClient(base_url=cluster.apis[0], timeout=60) as http:
        renewing = await _start_renewals(cluster, http, "Scale-out renewals killed", hooks.url)
        victim = await _advancing_worker(cluster, renewing.merchant_id)
        victim.send_signal(signal.SIGKILL)
        await asyncio.to_thread(victim.wait, 10)
        # Mid-batch: some charged, none marked paid yet.
        assert await _charges(cluster.pool, renewing.merchant_id) <= SUBSCRIPTIONS
        assert await _paid_renewals(cluster.pool, renewing.merchant_id) < SUBSCRIPTIONS
        await _clock_ready(http, renewing)
    jobs: list[asyncpg.Record] = []

    async def job_settled() -> bool:  # the clock is ready a moment before its job is done
        jobs[:] = await cluster.pool.fetch(
            "SELECT status, attempts FROM jobs WHERE kind = 'test_clocks.advance'"
            " AND payload->>'test_clock' = $1",
            renewing.clock,
        )
        return bool(jobs) and jobs[0]["status"] != "running"

    await eventually(job_settled, deadline=30)
    # Reclaimed from the dead worker after its lease, and finished by the other one.
    assert [(job["status"], job["attempts"] >= 2) for job in jobs] == [("succeeded", True)]
    # Nothing charged twice, whatever else went wrong.
    assert await _charges(cluster.pool, renewing.merchant_id) <= SUBSCRIPTIONS + 1
    await _assert_each_renewed_once(cluster.pool, renewing.merchant_id)
    # A request in flight when the worker died may arrive twice, with the same webhook-id
    # (receivers deduplicate by it); at most one per job the dead worker ran.
    await _assert_paid_events_delivered(cluster.pool, renewing, hooks, duplicates=8)


@pytest.mark.skipif(
    not REDIS_URL,
    reason="PAYGRID_TEST_REDIS_URL is unset: no Redis to share counts in (.ci/run sets it to "
    "redis://127.0.0.1:6379/0)",
)
async def test_a_rate_limit_in_redis_is_shared_by_both_api_processes(cluster: Cluster) -> None:
    merchant, key = await _merchant(cluster, "Scale-out limits")
    clients = [httpx.AsyncClient(base_url=api, timeout=60) for api in cluster.apis]
    try:
        made = await clients[0].post("/v1/customers", json={}, headers=auth(key))
        assert made.status_code == 200, made.text
        body = {
            **PURCHASE,
            "customer": made.json()["id"],
            "payment_method_data": card(SUCCESS_CARD),
        }
        extra = 6
        replies = await asyncio.gather(
            *(
                clients[number % 2].post("/v1/payments", json=body, headers=auth(key))
                for number in range(CUSTOMER_LIMIT + extra)
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    statuses = Counter(reply.status_code for reply in replies)
    assert statuses == {200: CUSTOMER_LIMIT, 429: extra}, [r.text for r in replies]
    # Each process was sent 8 requests, fewer than the limit: only a shared count refuses any.
    assert (
        await cluster.pool.fetchval(
            "SELECT count(*) FROM payments WHERE merchant_id = $1", merchant.id
        )
        == CUSTOMER_LIMIT
    )
