"""paygrid behind PgBouncer 1.18 in transaction pooling mode (``tests.pgbouncer`` starts it):
the pooler really pools, asyncpg's statement cache really breaks behind it, and with
``PAYGRID_DATABASE_POOLER=transaction`` the API and a ``paygrid worker`` take, capture and
refund payments through it, the worker LISTENs directly and a webhook is delivered."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pgserver
import pytest

from paygrid.db import audit, engine
from paygrid.services.merchants import NewMerchant
from tests.conftest import DIRECT_URL, auth
from tests.integration.test_worker_process import _listening, _process, serving
from tests.integration.webhook_receiver import receiver
from tests.integration.worker_harness import eventually
from tests.pgbouncer import POOL_SIZE, SOLO, Bouncer, pgbouncer

PGSERVER_BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"
pytestmark = pytest.mark.skipif(
    shutil.which("pgbouncer", path="/usr/sbin:/usr/bin") is None,
    reason="pgbouncer is not installed (.ci/run installs it)",
)


STARTED = "SELECT count(*) FROM workers WHERE pid = $1 AND hostname = $2 AND stopped_at IS NULL"

LISTENS = "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'"


@pytest.fixture
def bouncer(server_url: str) -> Iterator[Bouncer]:
    with pgbouncer(DIRECT_URL or server_url) as running:
        yield running


def _admin(bouncer: Bouncer, command: str) -> list[dict[str, str]]:
    """A command on PgBouncer's admin console (simple query protocol only: psql, not
    asyncpg), its rows by column name."""
    psql = shutil.which("psql") or str(PGSERVER_BIN / "psql")
    address = ["-h", "127.0.0.1", "-p", str(bouncer.port), "-U", "postgres", "pgbouncer"]
    out = subprocess.run(
        [psql, *address, "-A", "-F", "\t", "-P", "footer=off", "-c", command],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    header, *rows = [line.split("\t") for line in out.splitlines()] or [[]]
    return [dict(zip(header, row, strict=True)) for row in rows]


async def test_pgbouncer_pools_transactions_and_breaks_the_statement_cache(
    bouncer: Bouncer, database_url: str
) -> None:
    settings = {row["key"]: row["value"] for row in _admin(bouncer, "SHOW CONFIG")}
    assert settings["pool_mode"] == "transaction"
    assert settings["default_pool_size"] == str(POOL_SIZE)

    # asyncpg's default: named prepared statements, cached per client connection, live on
    # the server connection that prepared them. Once PgBouncer hands the client another
    # server connection (here: after RECONNECT closed the first), they are gone.
    cached = await asyncpg.connect(bouncer.url(SOLO))
    uncached = await asyncpg.connect(bouncer.url(SOLO), statement_cache_size=0)
    try:
        for conn in (cached, uncached):
            assert await conn.fetchval("SELECT $1::int", 7) == 7
        _admin(bouncer, f"RECONNECT {SOLO}")
        with pytest.raises(asyncpg.InvalidSQLStatementNameError):
            await cached.fetchval("SELECT $1::int", 7)
        assert await uncached.fetchval("SELECT $1::int", 7) == 7
    finally:
        await cached.close()
        await uncached.close()

    # As paygrid configures its pools behind the pooler: 30 clients, at most POOL_SIZE
    # server connections, and no statement clashes.
    name = urlsplit(database_url).path[1:]
    pool = await engine.create_pool(bouncer.url(name), 30, pooler=True)
    try:

        async def one(i: int) -> int:
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT $1::int + 1", i) == i + 1
                pid: int = await conn.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.05)")
                return pid

        backends = set(await asyncio.gather(*(one(i) for i in range(30))))
        # 30 clients at once, their statements on no more server connections than the pool.
        assert len(backends) <= POOL_SIZE < 30
        pools = [row for row in _admin(bouncer, "SHOW POOLS") if row["database"] == name]
        assert pools and int(pools[0]["cl_active"]) + int(pools[0]["cl_waiting"]) == 30
        assert pool.get_size() == 30
    finally:
        await pool.close()


async def test_pooler_pools_keep_session_state_in_each_transaction(database_url: str) -> None:
    """What the pools set per session by default, they set per transaction behind a pooler
    (here straight to PostgreSQL, to see the session itself)."""
    pool = await engine.create_pool(database_url, 2, durable=False, audited=True, pooler=True)
    token = audit.current.set(("job:pooler_test", None, None))
    actor = "SELECT current_setting('paygrid.actor', true)"
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval(actor) in (None, "")  # nothing in the session
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
            async with conn.transaction():
                assert await conn.fetchval(actor) == "job:pooler_test"
                assert await conn.fetchval("SHOW synchronous_commit") == "off"
                async with conn.transaction():  # a savepoint keeps its transaction's
                    assert await conn.fetchval(actor) == "job:pooler_test"
            assert await conn.fetchval(actor) in (None, "")  # and nothing left behind
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
    finally:
        audit.current.reset(token)
        await pool.close()


@pytest.mark.slow
async def test_payments_and_webhooks_through_pgbouncer(
    bouncer: Bouncer, database_url: str, pool: asyncpg.Pool, merchant: NewMerchant, tmp_path: Path
) -> None:
    name = urlsplit(database_url).path[1:]
    env = {
        "PAYGRID_DATABASE_POOLER": "transaction",
        "PAYGRID_DATABASE_DIRECT_URL": database_url,
        "PAYGRID_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "PAYGRID_WORKER_IN_PROCESS": "false",
        # Only a notification wakes the worker within the test's time: LISTEN must work.
        "PAYGRID_WORKER_POLL_SECONDS": "60",
    }
    via = bouncer.url(name)
    # The worker shares serve's data directory: its encryption key signs the webhooks. Both
    # start at once (each takes seconds on a busy machine).
    worker_env = {**env, "PAYGRID_DATA_DIR": str(tmp_path)}
    with _process(["worker"], via, tmp_path / "worker.log", **worker_env) as worker:
        async with (
            receiver() as hooks,
            serving(["serve"], via, tmp_path, deadline=60, **env) as (url, _),
        ):

            async def started() -> bool:
                return bool(await pool.fetchval(STARTED, worker.pid, socket.gethostname()))

            await eventually(started, deadline=60)  # a loaded CI machine starts it slowly
            assert await _listening(pool, worker.pid) == 1
            # ... and directly, not on a server connection of PgBouncer's (which would lend it
            # to other clients between their transactions, and drop its notifications).
            listens = {row["pid"] for row in await pool.fetch(LISTENS, f"paygrid[{worker.pid}]")}
            lent = {int(row["remote_pid"]) for row in _admin(bouncer, "SHOW SERVERS")}
            assert len(listens) == 1 and not listens & lent, (listens, lent)
            headers = auth(merchant.key("secret", False))
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
                endpoint = await http.post(
                    "/v1/webhook_endpoints",
                    json={"url": hooks.url, "enabled_events": ["payment.succeeded"]},
                )
                assert endpoint.status_code == 200, endpoint.text
                paid = await http.post(
                    "/v1/payments",
                    json={
                        "amount": 2000,
                        "currency": "USD",
                        "confirm": True,
                        "payment_method": "pm_card_visa",
                    },
                )
                assert paid.status_code == 200, paid.text
                assert paid.json()["status"] == "succeeded"
                held = await http.post(
                    "/v1/payments",
                    json={
                        "amount": 5000,
                        "currency": "EUR",
                        "confirm": True,
                        "capture_method": "manual",
                        "payment_method": "pm_card_visa",
                    },
                )
                assert held.json()["status"] == "requires_capture", held.text
                captured = await http.post(f"/v1/payments/{held.json()['id']}/capture", json={})
                assert captured.json()["status"] == "succeeded", captured.text
                refund = await http.post(
                    "/v1/refunds", json={"payment": paid.json()["id"], "amount": 700}
                )
                assert refund.status_code == 200, refund.text
                assert refund.json()["status"] == "succeeded"

            async def delivered() -> bool:
                return len(hooks.received) >= 2

            await eventually(delivered, deadline=20)
    ids = {paid.json()["id"], held.json()["id"]}
    delivered_ids = {json.loads(r.body)["data"]["object"]["id"] for r in hooks.received}
    assert delivered_ids == ids
    # The audit context travelled with each transaction, not in a shared session.
    actors = await pool.fetch(
        "SELECT DISTINCT actor FROM audit_log WHERE object_id = ANY($1::text[])",
        [*ids, refund.json()["id"]],
    )
    assert actors and all(row["actor"] != "system" for row in actors), actors
    # Every write went through PgBouncer: its pool for the database served them.
    stats = {row["database"]: row for row in _admin(bouncer, "SHOW STATS")}
    assert int(stats[name]["total_xact_count"]) > 0, stats
