"""The restore waits for what is in flight when its fence rises (issue 16 §5), instead of
sleeping: a request held in a slow Stripe call (the fake holds its PaymentIntent create
before it reaches localstripe) keeps the restore from emptying the database until it has
charged and answered, so the re-sync finds the charge and a retry charges nothing new; past
``drain_timeout_seconds`` the restore refuses with the data untouched and the fence up; a
dead process's row does not block it; and the fence watch reports a process's in-flight
count, under its LISTEN connection's backend, again after that connection is replaced.
Real ``paygrid serve`` and ``paygrid worker`` processes, and the ``paygrid restore``
command, go through the same.

The app runs in process with its own pools, LISTEN hub and fence watch, as ``paygrid
serve`` does (tests/integration/test_restore_drill.py)."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import structlog
from structlog.testing import LogCapture

from paygrid.bootstrap import build_deps
from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import Settings
from paygrid.db import engine
from paygrid.db import fence as fence_db
from paygrid.db import jobs as jobs_db
from paygrid.db.listener import Notifications
from paygrid.restore_cli import deps_opener
from paygrid.services.restore import fence as restore_fence
from paygrid.services.restore import restoring
from paygrid.services.restore.drain import DrainTimeout, wait_for_drain
from paygrid.services.restore.fence import FenceWatch, WriteFence
from paygrid.services.restore.restoring import RestoreOptions
from paygrid.worker.registry import JobContext, JobRegistry
from paygrid.worker.runner import Worker, WorkerConfig
from tests.conftest import Api
from tests.fakes.stripe_balance import StripeFake
from tests.integration.test_restore_drill import (
    _wait_until_open,
    drill_url,
    new_merchant,
    serving,
    take_backup,
)
from tests.integration.test_restore_stripe import _payment_intents, _purchase
from tests.integration.test_scale_out import (
    START_SECONDS,
    _free_port,
    _ready,
    _start,
    _stopped_at_exit,
)
from tests.integration.test_settlements_stripe import _pay, _stripe_account
from tests.integration.worker_harness import eventually

__all__ = ["drill_url"]

pytestmark = pytest.mark.slow

CREATE = "/v1/payment_intents"  # a payment's charge at Stripe: held by the fake


@asynccontextmanager
async def _connection(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def test_the_restore_waits_for_a_charge_in_flight_and_reimports_it(
    drill_url: str, settings: Settings, tmp_path: Path, stripe_fake: StripeFake
) -> None:
    merchant = await new_merchant(drill_url, "Drain")
    async with serving(settings, drill_url) as http:
        api = Api(http, merchant.key("secret", livemode=False))
        _account, stripe = await _stripe_account(api, stripe_fake)
        await _pay(api, 10_000)
        backup = (await take_backup(drill_url, tmp_path)).path
        key = f"drain-{uuid.uuid4().hex}"
        await stripe.hold(CREATE)
        paying = asyncio.create_task(
            api.post("/v1/payments", _purchase(31_000), **{"Idempotency-Key": key})
        )
        assert await stripe.hold_arrived(CREATE)  # in flight, nothing charged at Stripe yet

        told: list[str] = []

        async def progress(stage: str) -> None:
            told.append(stage)

        restore = asyncio.create_task(
            restoring.restore(
                drill_url,
                backup,
                deps_opener(drill_url, settings),
                SYSTEM_CLOCK,
                RestoreOptions(drain_timeout_seconds=60),
                progress,
            )
        )

        async def waiting_for_it() -> bool:
            return any("serve" in t and "(1 in flight)" in t for t in told)

        await eventually(waiting_for_it, deadline=20)
        assert not restore.done() and not paying.done()
        await stripe.release(CREATE)
        made = await paying
        assert made.status_code == 200 and made.json()["status"] == "succeeded", made.text
        report = await restore
        waited = next(i for i, t in enumerate(told) if "in flight" in t)
        assert told.index("emptying the database") > waited
        (found,) = report.accounts
        assert (found.imported, found.already_known, found.error) == (1, 1, None)

        await _wait_until_open(http)
        intents = await _payment_intents(stripe)
        again = await api.post("/v1/payments", _purchase(31_000), **{"Idempotency-Key": key})
        assert again.status_code == 200, again.text
        assert (again.json()["id"], again.json()["status"]) == (made.json()["id"], "succeeded")
        assert (
            again.json()["attempts"][-1]["provider_reference"]
            == made.json()["attempts"][-1]["provider_reference"]
        )
        assert await _payment_intents(stripe) == intents


async def test_past_the_drain_timeout_the_restore_refuses_and_touches_nothing(
    drill_url: str, settings: Settings, tmp_path: Path, stripe_fake: StripeFake
) -> None:
    merchant = await new_merchant(drill_url, "Drain")
    async with serving(settings, drill_url) as http:
        api = Api(http, merchant.key("secret", livemode=False))
        _account, stripe = await _stripe_account(api, stripe_fake)
        backup = (await take_backup(drill_url, tmp_path)).path
        made_after_backup, _ = await _pay(api, 12_000)  # a restore would lose it
        await stripe.hold(CREATE)
        paying = asyncio.create_task(api.post("/v1/payments", _purchase(32_000)))
        assert await stripe.hold_arrived(CREATE)

        with pytest.raises(DrainTimeout) as refused:
            await restoring.restore(
                drill_url,
                backup,
                deps_opener(drill_url, settings),
                SYSTEM_CLOCK,
                # The held call keeps the request in flight: the refusal is certain, and 5 s
                # leave the serve process's fence watch time to report its count.
                RestoreOptions(drain_timeout_seconds=5.0),
            )
        assert "serve" in str(refused.value) and "1 in flight" in str(refused.value)
        async with _connection(drill_url) as conn:
            assert await fence_db.current(conn) is not None  # still raised
            status = await conn.fetchval(
                "SELECT status FROM payments WHERE id = $1", made_after_backup
            )
            assert status == "succeeded"  # nothing was emptied
        assert (await http.get("/readyz")).json()["status"] == "restoring"

        await stripe.release(CREATE)
        finished = await paying  # it passed the guard before the fence: it completes
        assert finished.status_code == 200 and finished.json()["status"] == "succeeded"
        assert await restoring.reopen(drill_url)
        await _wait_until_open(http)
        for payment in (made_after_backup, finished.json()["id"]):
            assert (await api.get(f"/v1/payments/{payment}")).json()["status"] == "succeeded"


async def _insert_process(
    conn: asyncpg.Connection, hostname: str, backend_pid: int, started: datetime
) -> None:
    await conn.execute(
        "INSERT INTO paygrid_fence.processes (hostname, pid, boot_id, role, backend_pid,"
        " backend_start, registered_at, in_flight) VALUES ($1, 1, $2, 'serve', $3, $4,"
        " now(), 3)",
        hostname,
        uuid.uuid4().hex,
        backend_pid,
        started,
    )


async def test_a_dead_process_row_holds_the_restore_only_for_the_grace_period(
    drill_url: str, settings: Settings, tmp_path: Path
) -> None:
    """A crashed process's row (its backend gone), and one whose pid a live backend reuses
    (another ``backend_start``), are marked lost and waited for during the grace period (it
    may only be reconnecting), then swept."""
    backup = (await take_backup(drill_url, tmp_path)).path
    async with serving(settings, drill_url), _connection(drill_url) as conn:
        live_pid = conn.get_server_pid()
        await _insert_process(conn, "gone", 2_000_000_000, SYSTEM_CLOCK.now())
        await _insert_process(conn, "gone", live_pid, datetime(2001, 1, 1, tzinfo=UTC))
        told: list[str] = []

        async def progress(stage: str) -> None:
            told.append(stage)

        report = await restoring.restore(
            drill_url,
            backup,
            deps_opener(drill_url, settings),
            SYSTEM_CLOCK,
            RestoreOptions(drain_timeout_seconds=30, lost_grace_seconds=1.5),
            progress,
        )
        assert "reopen" in report.timings
        assert report.timings["fence"] >= 1.5
        assert any("gone:1 (LISTEN connection lost" in t for t in told)
        left = {
            row["hostname"] for row in await conn.fetch("SELECT * FROM paygrid_fence.processes")
        }
        assert left and "gone" not in left  # swept; the serving app's own row stays


async def test_the_fence_watch_reports_in_flight_work_under_its_listen_backend(
    drill_url: str, settings: Settings
) -> None:
    pool = await engine.create_pool(drill_url, 4)
    deps = build_deps(pool, settings)
    hub = Notifications(pool, owner="test")
    fence, in_flight = WriteFence(), [2]
    fence.count(lambda: in_flight[0])
    watch = FenceWatch(fence, deps, fence_db.ProcessRole.WORKER)
    try:
        await hub.start()
        await watch.start(hub)
        assert watch.backend is not None and watch.backend.pid == hub.server_pid

        async def row() -> fence_db.ProcessDrain | None:
            found = await fence_db.live_processes(pool, 60)
            return found[0] if len(found) == 1 else None

        async with _connection(drill_url) as conn:
            raised_at = await fence_db.raise_fence(conn, "restoring", 5, SYSTEM_CLOCK.now())

            async def reported(count: int, drained: bool) -> bool:
                found = await row()
                return (
                    found is not None
                    and (found.fence_raised_at, found.in_flight) == (raised_at, count)
                    and found.drained(raised_at) == drained
                )

            await eventually(lambda: reported(2, False), deadline=10)
            assert fence.raised
            with pytest.raises(DrainTimeout):
                await wait_for_drain(conn, raised_at, 0.3)
            in_flight[0] = 1
            await eventually(lambda: reported(1, False), deadline=10)
            in_flight[0] = 0
            await eventually(lambda: reported(0, True), deadline=10)
            await wait_for_drain(conn, raised_at, 5)

            # Work that starts again after it drained is reported (not drained any more),
            # and the restore waits for it again.
            in_flight[0] = 1
            await eventually(lambda: reported(1, False), deadline=10)
            with pytest.raises(DrainTimeout):
                await wait_for_drain(conn, raised_at, 0.5)
            in_flight[0] = 0
            await eventually(lambda: reported(0, True), deadline=10)
            await wait_for_drain(conn, raised_at, 5)

            # The LISTEN connection is lost: the hub reconnects, the process registers
            # again under its new backend (its row replaced) and reports again.
            old = watch.backend
            assert old is not None
            await conn.execute("SELECT pg_terminate_backend($1)", old.pid)

            async def rejoined() -> bool:
                found = await row()
                return found is not None and found.backend != old and found.drained(raised_at)

            await eventually(rejoined, deadline=20)
            assert watch.backend == getattr(await row(), "backend", None)
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM paygrid_fence.processes WHERE backend_pid = $1", old.pid
                )
                == 0
            )

            await fence_db.lower_fence(conn)

            async def lowered() -> bool:
                return not fence.raised

            await eventually(lowered, deadline=10)
        await watch.stop()
        assert await fence_db.live_processes(pool, 60) == []
    finally:
        await watch.stop()
        await hub.stop()
        await deps.connectors.aclose()
        await pool.close()


async def test_a_claim_under_way_when_the_fence_rises_is_waited_for_and_handed_back(
    drill_url: str, settings: Settings
) -> None:
    """``hold`` stops new claims, but a claim already sent returns its jobs: until it does
    it counts in flight (the restore waits), and the jobs it returns once the worker is
    held go back to the queue, unstarted; the worker runs them once the fence is lowered."""
    pool = await engine.create_pool(drill_url, 6)
    deps = build_deps(pool, settings)
    hub = Notifications(pool, owner="test")
    queue, ran = f"drain-{uuid.uuid4().hex[:8]}", asyncio.Event()

    async def handler(_payload: dict[str, Any], _context: JobContext) -> None:
        ran.set()

    registry = JobRegistry()
    registry.register("drain.claim", handler)
    worker = Worker(
        deps,
        registry,
        WorkerConfig(queues=(queue,), poll_seconds=0.05, lease_seconds=5, shutdown_seconds=1),
        notifications=hub,
    )
    fence = WriteFence()
    fence.on_change(lambda retry_after: worker.hold(retry_after is not None))
    fence.count(lambda: worker.in_flight)
    watch = FenceWatch(fence, deps, fence_db.ProcessRole.WORKER)
    job_id = await jobs_db.enqueue(pool, "drain.claim", {}, queue=queue)
    try:
        async with _connection(drill_url) as locker, _connection(drill_url) as conn:
            lock = locker.transaction()
            await lock.start()  # the worker's claim waits on this lock
            await locker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
            await hub.start()
            await watch.start(hub)
            await worker.start()

            async def claim_waiting() -> bool:
                return bool(
                    await conn.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE '%FOR UPDATE SKIP LOCKED%'"
                    )
                )

            await eventually(claim_waiting, deadline=10)
            raised_at = await fence_db.raise_fence(conn, "restoring", 5, SYSTEM_CLOCK.now())

            async def held() -> bool:
                rows = await fence_db.live_processes(conn, 60)
                return [(r.fence_raised_at, r.in_flight) for r in rows] == [(raised_at, 1)]

            await eventually(held, deadline=10)
            with pytest.raises(DrainTimeout, match="1 in flight"):
                await wait_for_drain(conn, raised_at, 0.5)
            await lock.rollback()  # the claim returns the job, to a held worker
            await wait_for_drain(conn, raised_at, 10)
            job = await conn.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
            assert job is not None
            assert (job["status"], job["locked_by"], job["attempts"]) == ("queued", None, 0)
            assert not ran.is_set()

            await fence_db.lower_fence(conn)
            await asyncio.wait_for(ran.wait(), timeout=10)
    finally:
        await worker.stop()
        await watch.stop()
        await hub.stop()
        await deps.connectors.aclose()
        await pool.close()


def _as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


async def test_a_process_of_another_role_registers_on_its_hub_once_it_connects(
    drill_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub's connection (the direct URL's role) and the pool's (another role, or a
    pooler) need not see each other's ``backend_start`` without pg_read_all_stats: the
    process registers on the hub's own connection. A hub that cannot connect at start is
    logged as an error, and the process registers as soon as it connects. The restore,
    as yet another role, does not take that process for gone (its pid says it is alive)."""
    suffix = uuid.uuid4().hex[:8]
    hub_role, pool_role, restore_role = (f"drain_{n}_{suffix}" for n in ("hub", "app", "rst"))
    async with _connection(drill_url) as admin:
        for role in (hub_role, pool_role, restore_role):
            await admin.execute(f'CREATE ROLE "{role}" NOLOGIN')
            await admin.execute(f'GRANT USAGE ON SCHEMA paygrid_fence TO "{role}"')
            await admin.execute(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA paygrid_fence"
                f' TO "{role}"'
            )
        await admin.execute(f'ALTER ROLE "{pool_role}" LOGIN')
        await admin.execute(f'ALTER ROLE "{restore_role}" LOGIN')
        pool = await engine.create_pool(_as_role(drill_url, pool_role), 2)
        hub_pool = await asyncpg.create_pool(_as_role(drill_url, hub_role), min_size=0, max_size=1)
        deps = build_deps(pool, settings)
        hub = Notifications(hub_pool, owner="test")
        watch = FenceWatch(WriteFence(), deps, fence_db.ProcessRole.SERVE)
        try:
            # The app's logging caches its loggers (structlog's capture_logs misses them).
            logs = LogCapture()
            monkeypatch.setattr(restore_fence, "log", structlog.wrap_logger(None, [logs]))
            await hub.start()  # its role may not log in yet
            await watch.start(hub)
            assert watch.backend is None
            assert any(
                e["event"] == "fence.unregistered" and e["log_level"] == "error"
                for e in logs.entries
            )
            await admin.execute(f'ALTER ROLE "{hub_role}" LOGIN')

            async def registered() -> bool:
                return watch.backend is not None

            await eventually(registered, deadline=15)
            assert watch.backend is not None and watch.backend.pid == hub.server_pid
            async with _connection(_as_role(drill_url, restore_role)) as restore:
                assert (
                    await restore.fetchval(
                        "SELECT backend_start FROM pg_stat_activity WHERE pid = $1",
                        hub.server_pid,
                    )
                    is None
                )  # hidden from the restore's role: the pid alone says alive
                (found,) = await fence_db.live_processes(restore, 60)
                assert (found.pid, found.lost_at) == (os.getpid(), None)
        finally:
            await watch.stop()
            await hub.stop()
            await hub_pool.close()
            await deps.connectors.aclose()
            await pool.close()
            for role in (hub_role, pool_role, restore_role):
                await admin.execute(f'DROP OWNED BY "{role}"')
                await admin.execute(f'DROP ROLE "{role}"')


async def test_a_process_whose_listen_connection_dropped_is_waited_for_until_it_returns(
    drill_url: str, settings: Settings
) -> None:
    """A process whose LISTEN backend is gone serves on through its pool and may have
    missed the raise: its row is marked lost and waited for (not deleted) until the
    process registers again from its new connection, which replaces its row."""
    pool = await engine.create_pool(drill_url, 4)
    deps = build_deps(pool, settings)
    hub = Notifications(pool, owner="test")
    watch = FenceWatch(WriteFence(), deps, fence_db.ProcessRole.SERVE)
    try:
        await hub.start()
        await watch.start(hub)
        async with _connection(drill_url) as conn:
            raised_at = await fence_db.raise_fence(conn, "restoring", 5, SYSTEM_CLOCK.now())
            await wait_for_drain(conn, raised_at, 10)
            # As the restore sees it while the hub is reconnecting: its backend is gone.
            old = watch.backend
            assert old is not None
            await conn.execute("UPDATE paygrid_fence.processes SET backend_pid = 2000000000")
            with pytest.raises(DrainTimeout, match="LISTEN connection lost"):
                await wait_for_drain(conn, raised_at, 0.5, lost_grace_seconds=60)
            (lost,) = await fence_db.live_processes(conn, 60)
            assert lost.lost_at is not None and lost.process == watch.process
            # Its hub reconnects: the process registers again and reports drained.
            await conn.execute("SELECT pg_terminate_backend($1)", old.pid)
            await wait_for_drain(conn, raised_at, 20, lost_grace_seconds=60)
            (back,) = await fence_db.live_processes(conn, 60)
            assert back.process == watch.process and back.lost_at is None
            assert back.backend != old and back.backend == watch.backend
            await fence_db.lower_fence(conn)
    finally:
        await watch.stop()
        await hub.stop()
        await deps.connectors.aclose()
        await pool.close()


async def test_the_restore_checks_again_that_all_is_drained_right_before_emptying(
    drill_url: str, settings: Settings, tmp_path: Path
) -> None:
    """Work that starts again after the drain (a count that rises after 0) is waited for
    once more under the migrations' lock, right before the database is emptied."""
    backup = (await take_backup(drill_url, tmp_path)).path
    merchant = await new_merchant(drill_url, "Drain")  # after the backup: a restore drops it
    pool = await engine.create_pool(drill_url, 4)
    deps = build_deps(pool, settings)
    hub = Notifications(pool, owner="test")
    fence, in_flight = WriteFence(), [0]
    fence.count(lambda: in_flight[0])
    watch = FenceWatch(fence, deps, fence_db.ProcessRole.WORKER)
    told: list[str] = []
    seen_before_empty: list[int] = []

    async def finish_later() -> None:
        await asyncio.sleep(1.0)
        async with _connection(drill_url) as conn:  # not emptied while it is in flight
            seen_before_empty.append(
                await conn.fetchval("SELECT count(*) FROM merchants WHERE id = $1", merchant.id)
            )
        in_flight[0] = 0

    async def progress(stage: str) -> None:
        told.append(stage)
        if stage == "emptying the database":  # after the drain, before the re-check
            in_flight[0] = 1
            async with _connection(drill_url) as conn:

                async def reported() -> bool:
                    rows = await fence_db.live_processes(conn, 60)
                    return [r.in_flight for r in rows] == [1]

                await eventually(reported, deadline=10)
            finishing.append(asyncio.create_task(finish_later()))

    finishing: list[asyncio.Task[None]] = []
    try:
        await hub.start()
        await watch.start(hub)
        await restoring.restore(
            drill_url,
            backup,
            deps_opener(drill_url, settings),
            SYSTEM_CLOCK,
            RestoreOptions(drain_timeout_seconds=30),
            progress,
        )
        await asyncio.gather(*finishing)
        assert seen_before_empty == [1]
        emptying = told.index("emptying the database")
        assert any("(1 in flight)" in t for t in told[emptying:])
    finally:
        await watch.stop()
        await hub.stop()
        await deps.connectors.aclose()
        await pool.close()


async def _cli_restore(archive: Path, env: dict[str, str], *flags: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "paygrid.cli",
        "restore",
        str(archive),
        "--yes",
        *flags,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=START_SECONDS)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_paygrid_restore_waits_for_running_processes_and_refuses_a_stuck_one(
    drill_url: str, tmp_path: Path
) -> None:
    """Real ``paygrid serve`` and ``paygrid worker`` processes register under their LISTEN
    connections; ``paygrid restore`` with a live process that never reports (a connection
    registered by hand) refuses after ``--drain-timeout``, exits 1 and leaves the data and
    the fence; once that connection is gone, the same command restores and reopens."""
    merchant = await new_merchant(drill_url, "Drain")
    archive = (await take_backup(drill_url, tmp_path)).path
    port = _free_port()
    env = {
        "PAYGRID_DATABASE_URL": drill_url,
        "PAYGRID_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PAYGRID_LOG_LEVEL": "WARNING",
        "PAYGRID_DATA_DIR": str(tmp_path / "data"),
    }
    serve_env = {
        **env,
        "PAYGRID_PORT": str(port),
        "PAYGRID_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PAYGRID_WORKER_IN_PROCESS": "false",
    }
    with _stopped_at_exit() as started:
        serve = _start("serve", tmp_path / "serve.log", serve_env)
        worker = _start("worker", tmp_path / "worker.log", env)
        started.extend([serve, worker])
        await _ready(f"http://127.0.0.1:{port}", serve, tmp_path / "serve.log")
        async with _connection(drill_url) as conn:

            async def registered() -> bool:
                rows = await fence_db.live_processes(conn, 60)
                return {(r.role, r.pid) for r in rows} == {
                    (fence_db.ProcessRole.SERVE, serve.pid),
                    (fence_db.ProcessRole.WORKER, worker.pid),
                }

            await eventually(registered, deadline=START_SECONDS)
            async with _connection(drill_url) as stuck:
                await stuck.execute(
                    "INSERT INTO paygrid_fence.processes (hostname, pid, boot_id, role,"
                    " backend_pid, backend_start, registered_at) SELECT 'stuck', 1, 'b',"
                    " 'serve', pid, backend_start, now() FROM pg_stat_activity"
                    " WHERE pid = pg_backend_pid()"
                )
                code, output = await _cli_restore(archive, env, "--drain-timeout", "1")
                assert code == 1, output
                assert "stuck:1 (not reported yet)" in output and "nothing was emptied" in output
                assert await fence_db.current(conn) is not None
                assert await conn.fetchval(
                    "SELECT count(*) FROM merchants WHERE id = $1", merchant.id
                )
                found = await fence_db.live_processes(conn, 60)
                busy = [p for p in found if p.hostname != "stuck"]
                assert len(busy) == 2 and all(p.in_flight == 0 for p in busy)
            # The stuck process is stopped: its row holds the restore only for the grace
            # period (it could be reconnecting), then it is swept.
            code, output = await _cli_restore(archive, env, "--drain-timeout", "30")
            assert code == 0, output
            assert await fence_db.current(conn) is None
            await _ready(f"http://127.0.0.1:{port}", serve, tmp_path / "serve.log")
            left = await fence_db.live_processes(conn, 60)
            assert "stuck" not in {p.hostname for p in left}
        for process in (serve, worker):
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 30)
    async with _connection(drill_url) as conn:  # they unregistered as they stopped
        assert await conn.fetchval("SELECT count(*) FROM paygrid_fence.processes") == 0
