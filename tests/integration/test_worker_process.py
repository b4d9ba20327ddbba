"""Workers as deployed: heartbeats and /readyz, the ``paygrid worker`` command, the worker
inside ``paygrid serve``, and the housekeeping jobs they run."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from paygrid.app import create_app
from paygrid.clock import FakeClock
from paygrid.config import Settings
from paygrid.db import jobs as jobs_db
from paygrid.dependencies import Deps
from paygrid.services import maintenance
from paygrid.services.merchants import NewMerchant
from paygrid.worker.registry import JobContext, JobRegistry
from tests.integration.worker_harness import eventually, running, settled


async def _insert_key(pool: asyncpg.Pool, merchant_id: str, key: str, age: timedelta) -> None:
    await pool.execute(
        "INSERT INTO idempotency_keys (merchant_id, livemode, key, request_method, request_path,"
        " request_hash, response_status, response_body, created_at)"
        " VALUES ($1, false, $2, 'POST', '/v1/customers', '\\x00', 200, '\\x7b7d', now() - $3::interval)",
        merchant_id,
        key,
        age,
    )


async def _keys(pool: asyncpg.Pool, merchant_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT key FROM idempotency_keys WHERE merchant_id = $1 ORDER BY key", merchant_id
    )
    return [row["key"] for row in rows]


async def test_heartbeat_is_recorded_and_readyz_lists_live_workers(
    pool: asyncpg.Pool, deps: Deps, client: httpx.AsyncClient
) -> None:
    queue = f"test_{uuid.uuid4().hex[:12]}"
    silent = f"wkr_silent_{uuid.uuid4().hex[:8]}"
    await pool.execute(
        "INSERT INTO workers (id, hostname, pid, queues, concurrency, heartbeat_at)"
        " VALUES ($1, 'gone', 1, '{default}', 1, now() - interval '1 hour')",
        silent,
    )
    clock = FakeClock()  # the worker beats when the test moves its clock, not on a timer
    timed = replace(deps, clock=clock)
    async with running(timed, JobRegistry(), queue) as worker:
        row = await pool.fetchrow("SELECT * FROM workers WHERE id = $1", worker.id)
        assert row is not None
        assert (row["hostname"], row["pid"], row["queues"]) == (
            socket.gethostname(),
            os.getpid(),
            [queue],
        )
        assert row["stopped_at"] is None

        async def beat_again() -> bool:
            latest = await pool.fetchval(
                "SELECT heartbeat_at FROM workers WHERE id = $1", worker.id
            )
            return bool(latest == row["heartbeat_at"] + timedelta(seconds=5))

        clock.advance(5)  # past the next heartbeat: it is stamped with the moved clock
        await eventually(beat_again)
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
        listed = {w["id"]: w for w in ready.json()["workers"]}
        assert listed[worker.id]["queues"] == [queue]
        # An unauthenticated probe names no host or process.
        assert not {"hostname", "pid"} & set(listed[worker.id])
        assert silent not in listed
    assert await pool.fetchval("SELECT stopped_at FROM workers WHERE id = $1", worker.id)
    after = await client.get("/readyz")
    assert after.status_code == 200
    assert worker.id not in {w["id"] for w in after.json()["workers"]}


async def test_app_on_shared_deps_runs_no_worker(
    pool: asyncpg.Pool, deps: Deps, settings: Settings
) -> None:
    app = create_app(settings, deps=deps)
    live = "SELECT count(*) FROM workers WHERE pid = $1 AND stopped_at IS NULL"
    before = await pool.fetchval(live, os.getpid())
    async with app.router.lifespan_context(app):
        assert await pool.fetchval(live, os.getpid()) == before


async def test_purge_idempotency_keys_job_deletes_only_expired_keys(
    pool: asyncpg.Pool, deps: Deps, merchant: NewMerchant
) -> None:
    await _insert_key(pool, merchant.id, "expired", timedelta(hours=25))
    await _insert_key(pool, merchant.id, "fresh", timedelta(hours=1))
    context = JobContext(deps, "job_direct", 1, "wkr_direct")
    await maintenance.purge_idempotency_keys({}, context)
    assert await _keys(pool, merchant.id) == ["fresh"]


async def test_purge_job_history_keeps_dead_and_recent_jobs(pool: asyncpg.Pool, deps: Deps) -> None:
    queue = f"test_{uuid.uuid4().hex[:12]}"
    old = timedelta(days=8)
    jobs = {name: f"job_{name}_{uuid.uuid4().hex[:8]}" for name in ("old", "recent", "dead")}
    for name, status, age in (
        ("old", "succeeded", old),
        ("recent", "succeeded", timedelta(hours=1)),
        ("dead", "dead", old),
    ):
        await pool.execute(
            "INSERT INTO jobs (id, queue, kind, status, updated_at) VALUES ($1, $2, 'test', $3,"
            " now() - $4::interval)",
            jobs[name],
            queue,
            status,
            age,
        )
    gone_worker = f"wkr_gone_{uuid.uuid4().hex[:8]}"
    await pool.execute(
        "INSERT INTO workers (id, hostname, pid, queues, concurrency, heartbeat_at)"
        " VALUES ($1, 'gone', 1, '{default}', 1, now() - interval '8 days')",
        gone_worker,
    )
    counters = {name: uuid.uuid4().bytes for name in ("ended", "open")}
    for name, ends in (("ended", timedelta(minutes=-1)), ("open", timedelta(minutes=10))):
        await pool.execute(
            "INSERT INTO dashboard_login_counters (email_hash, attempts, window_ends_at)"
            " VALUES ($1, 3, now() + $2::interval)",
            counters[name],
            ends,
        )
    await maintenance.purge_job_history({}, JobContext(deps, "job_direct", 1, "wkr_direct"))
    left = await pool.fetch("SELECT id FROM jobs WHERE queue = $1", queue)
    assert {row["id"] for row in left} == {jobs["recent"], jobs["dead"]}
    assert await pool.fetchval("SELECT count(*) FROM workers WHERE id = $1", gone_worker) == 0
    kept = await pool.fetch(
        "SELECT email_hash FROM dashboard_login_counters WHERE email_hash = ANY($1)",
        list(counters.values()),
    )
    assert [bytes(row["email_hash"]) for row in kept] == [counters["open"]]


@contextmanager
def _process(
    args: list[str], database_url: str, log: Path, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    environment = {
        **os.environ,
        "PAYGRID_DATABASE_URL": database_url,
        "PAYGRID_LOG_LEVEL": "INFO",
        "PAYGRID_WORKER_POLL_SECONDS": "0.1",
        **env,
    }
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "paygrid.cli", *args],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


async def wait_until_ready(
    url: str, process: subprocess.Popen[bytes], log: Path, *, deadline: float
) -> None:
    """Wait until the ``paygrid serve`` ``process`` answers ``/readyz`` at ``url`` with 200;
    fail with its log if it exits first."""
    async with httpx.AsyncClient(base_url=url) as http:

        async def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"serve exited:\n{await asyncio.to_thread(log.read_text)}")
            try:
                return (await http.get("/readyz", timeout=1)).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, deadline=deadline)


# A test makes many requests from one IP and key: never let a rate limit decide it.
NO_RATE_LIMITS = {
    "PAYGRID_RATE_LIMIT_PER_KEY": "1000000/second",
    "PAYGRID_RATE_LIMIT_PER_IP": "1000000/second",
    "PAYGRID_RATE_LIMIT_PAYMENTS_PER_CUSTOMER": "1000000/second",
}


@asynccontextmanager
async def serving(
    args: list[str], database_url: str, data_dir: Path, *, deadline: float, **env: str
) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """``paygrid serve`` (``args``) on a free port with its own data directory and no rate
    limits, once ready; yields its URL and process. Its log is ``data_dir/serve.log``."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {
        "PAYGRID_DATA_DIR": str(data_dir),
        "PAYGRID_PORT": str(port),
        "PAYGRID_PUBLIC_URL": url,
        **NO_RATE_LIMITS,
        **env,
    }
    log = data_dir / "serve.log"
    with _process(args, database_url, log, **environment) as process:
        await wait_until_ready(url, process, log, deadline=deadline)
        yield url, process


async def _worker_of(pool: asyncpg.Pool, pid: int, since: datetime) -> asyncpg.Record | None:
    """The worker row a process started after ``since`` (pids get reused)."""
    return await pool.fetchrow(
        "SELECT * FROM workers WHERE pid = $1 AND hostname = $2 AND started_at >= $3",
        pid,
        socket.gethostname(),
        since,
    )


async def _listening(pool: asyncpg.Pool, pid: int) -> int:
    """How many of process ``pid``'s database connections LISTEN (their last statement), a
    moment after the first one did: its subscribers start listening within milliseconds.
    Connections name their process (``application_name``), over TCP or a Unix socket."""
    names = [
        f"paygrid[{process.pid}]"
        for process in (psutil.Process(pid), *psutil.Process(pid).children(recursive=True))
    ]
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = ANY($1::text[]) AND query LIKE 'LISTEN%'"
    )

    async def subscribed() -> bool:
        return bool(await pool.fetchval(query, names))

    await eventually(subscribed, deadline=10)
    await asyncio.sleep(0.5)
    listening: int = await pool.fetchval(query, names)
    return listening


async def _terminate(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return await asyncio.to_thread(process.wait, 30)


@pytest.mark.slow
async def test_paygrid_worker_runs_jobs_and_exits_cleanly_on_sigterm(
    database_url: str, pool: asyncpg.Pool, merchant: NewMerchant, tmp_path: Path
) -> None:
    await _insert_key(pool, merchant.id, "expired", timedelta(hours=30))
    job = await jobs_db.enqueue(pool, maintenance.PURGE_IDEMPOTENCY_KEYS)
    assert job is not None
    log = tmp_path / "worker.log"
    since = await pool.fetchval("SELECT now()")
    metrics_port = _free_port()
    env = {"PAYGRID_WORKER_METRICS_PORT": str(metrics_port)}
    with _process(["worker"], database_url, log, **env) as process:
        done = await settled(pool, job, deadline=30)
        assert done["status"] == "succeeded", log.read_text()
        async with httpx.AsyncClient() as http:
            scraped = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert scraped.status_code == 200
        assert "paygrid_connector_call_duration_seconds" in scraped.text
        assert await _keys(pool, merchant.id) == []
        worker = await _worker_of(pool, process.pid, since)
        assert worker is not None and worker["stopped_at"] is None
        assert done["updated_at"] >= worker["started_at"]
        # The job worker and the event dispatcher share one LISTEN connection: PostgreSQL
        # wakes every listening connection on every notifying commit.
        assert await _listening(pool, process.pid) == 1
        assert await _terminate(process) == 0, log.read_text()
    stopped = await _worker_of(pool, process.pid, since)
    assert stopped is not None and isinstance(stopped["stopped_at"], datetime)
    assert '"event":"worker.stopped"' in log.read_text()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("in_process", [True, False])
async def test_paygrid_serve_runs_a_worker_in_process_unless_told_not_to(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path, in_process: bool
) -> None:
    port = _free_port()
    env = {"PAYGRID_PORT": str(port), "PAYGRID_WORKER_IN_PROCESS": str(in_process).lower()}
    log = tmp_path / "serve.log"
    since = await pool.fetchval("SELECT now()")
    with _process(["serve"], database_url, log, **env) as process:
        url = f"http://127.0.0.1:{port}"
        await wait_until_ready(url, process, log, deadline=30)
        async with httpx.AsyncClient(base_url=url) as http:
            listed = {w["id"] for w in (await http.get("/readyz")).json()["workers"]}
            serving = await _worker_of(pool, process.pid, since)
        assert (serving is not None and serving["id"] in listed) is in_process, log.read_text()
        # One LISTEN connection for the lookup caches, the worker and the event dispatcher.
        assert await _listening(pool, process.pid) == 1
        # serve shuts uvicorn down gracefully, then exits with the shell's code for SIGTERM.
        assert await _terminate(process) == 128 + signal.SIGTERM, log.read_text()
    worker = await _worker_of(pool, process.pid, since)
    if in_process:
        assert worker is not None and worker["stopped_at"] is not None
    else:
        assert worker is None
