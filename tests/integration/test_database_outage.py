"""A database outage: requests answer 503 ``service_unavailable`` with Retry-After (never
500), ``/readyz`` says ``database: unavailable``, the worker and the event dispatcher LISTEN
again once PostgreSQL is back (so jobs and webhooks are woken by NOTIFY, not by the poll),
and ``paygrid serve`` restarts its embedded PostgreSQL when it dies.

The restarts happen on embedded servers of these tests' own (pgserver, in a temporary
directory), never on the shared test server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from paygrid import logs
from paygrid.app import create_app
from paygrid.bootstrap import build_deps
from paygrid.config import Settings
from paygrid.db import engine
from paygrid.db import events as events_db
from paygrid.db import jobs as jobs_db
from paygrid.db.embedded import EmbeddedPostgres
from paygrid.db.listener import Notifications
from paygrid.dependencies import Deps
from paygrid.services.merchants import create_merchant
from paygrid.webhooks.dispatcher import EventDispatcher
from paygrid.worker.registry import JobContext, JobRegistry
from paygrid.worker.runner import Worker, WorkerConfig
from tests.conftest import ERROR_FIELDS, TEST_BASE_URL, auth
from tests.integration.worker_harness import eventually

# Far longer than any wait below: a job or event handled within NOTIFIED seconds was woken
# by its notification, not found by a poll.
# NOTIFIED leaves a loaded CI machine room for a stall (a wake-up takes milliseconds).
POLL_SECONDS = 60.0
NOTIFIED = 10.0
RECOVERY_DEADLINE = 40.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- 503 while the database is unreachable ---------------------------------------------------


@pytest.fixture
async def unreachable(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a pool whose server is not running (nothing listens on its port)."""
    pool = await asyncpg.create_pool(
        f"postgresql://postgres@127.0.0.1:{_free_port()}/paygrid", min_size=0, max_size=2
    )
    deps = build_deps(pool, settings)
    app = create_app(settings, deps=deps)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
            yield http
    finally:
        await deps.connectors.aclose()
        await pool.close()


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    error = response.json()["error"]
    assert set(error) >= ERROR_FIELDS
    assert error["type"] == "api_error" and error["code"] == "service_unavailable"
    assert error["request_id"] == response.headers["x-request-id"]


async def test_requests_answer_503_with_retry_after_while_the_database_is_unreachable(
    unreachable: httpx.AsyncClient,
) -> None:
    key = "sk_test_" + "a" * 40
    # Authentication reads the key in middleware, before any route runs.
    _assert_unavailable(await unreachable.get("/v1/payments", headers=auth(key)))
    _assert_unavailable(
        await unreachable.post(
            "/v1/payments", json={"amount": 1000, "currency": "USD"}, headers=auth(key)
        )
    )
    # A route's own query (the dashboard reads the session inside its handler).
    unreachable.cookies.set("paygrid_dashboard", "a-session-token")
    _assert_unavailable(await unreachable.get("/dashboard"))


async def test_readyz_says_the_database_is_unavailable_without_naming_exceptions(
    unreachable: httpx.AsyncClient,
) -> None:
    answer = await unreachable.get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "database": "unavailable"}
    assert "Error" not in answer.text and "OSError" not in answer.text


# -- LISTEN again after a restart --------------------------------------------------------------


@pytest.fixture(scope="module")
def restartable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedPostgres, str]]:
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("outage"))
    url = embedded.start()
    try:
        engine.upgrade(url)
        yield embedded, url
    finally:
        embedded.release()


async def _kill_and_restart(embedded: EmbeddedPostgres) -> None:
    """SIGKILL the postmaster (as the OOM killer would), then start it again."""
    pid = embedded.postmaster_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await asyncio.to_thread(psutil.Process(pid).wait, 10)
    await asyncio.sleep(1.0)  # the outage: clients see their connections die meanwhile

    async def started() -> bool:
        try:
            await asyncio.to_thread(embedded.ensure_running)
        except subprocess.SubprocessError:  # its old backends still hold shared memory
            await asyncio.sleep(0.2)
            return False
        return embedded.running()

    await eventually(started, deadline=30)


async def _load(pool: asyncpg.Pool, queue: str) -> None:
    """Keep enqueueing jobs, through the outage too."""
    while True:
        with contextlib.suppress(Exception):
            await jobs_db.enqueue(pool, "test.mark", queue=queue)
        await asyncio.sleep(0.02)


async def _notified(check: Callable[[], Awaitable[bool]]) -> bool:
    """Whether ``check`` becomes true within NOTIFIED seconds."""
    try:
        await eventually(check, deadline=NOTIFIED)
    except TimeoutError:
        return False
    return True


def _logged(text: str, event: str) -> int:
    count = 0
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            count += json.loads(line).get("event") == event
    return count


async def test_worker_and_dispatcher_are_woken_by_notify_again_soon_after_a_restart(
    restartable: tuple[EmbeddedPostgres, str],
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("INFO")  # JSON lines on stderr, as the app and the worker log
    embedded, url = restartable
    pool = await engine.create_pool(url, 24)
    deps: Deps = build_deps(pool, settings)
    merchant = await create_merchant(pool, "Outage test")
    queue = f"test_{uuid.uuid4().hex[:12]}"
    ran: set[str] = set()

    async def mark(_payload: dict[str, Any], context: JobContext) -> None:
        ran.add(context.job_id)

    registry = JobRegistry()
    registry.register("test.mark", mark)
    config = WorkerConfig(
        queues=(queue,), poll_seconds=POLL_SECONDS, lease_seconds=6.0, shutdown_seconds=1.0
    )
    # As in `paygrid serve` and `paygrid worker`: both wake on the process's one LISTEN.
    notifications = Notifications(pool, owner="test")
    worker = Worker(deps, registry, config, notifications=notifications)
    dispatcher = EventDispatcher(deps, poll_seconds=POLL_SECONDS, notifications=notifications)
    stopping = asyncio.Event()

    async def job_woken() -> bool:
        job = await jobs_db.enqueue(pool, "test.mark", queue=queue)

        async def done() -> bool:
            return job in ran

        return await _notified(done)

    async def event_woken() -> bool:
        async with pool.acquire() as conn:
            event = await events_db.insert_event(
                conn,
                merchant_id=merchant.id,
                livemode=False,
                event_type="payment.succeeded",
                object_id=f"pay_{uuid.uuid4().hex}",
                snapshot={},
            )

        async def dispatched() -> bool:
            return bool(
                await pool.fetchval(
                    "SELECT dispatched_at IS NOT NULL FROM events WHERE id = $1", event
                )
            )

        return await _notified(dispatched)

    async def both_woken() -> bool:
        try:
            return await job_woken() and await event_woken()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False  # the test's own pool is reconnecting too

    await notifications.start()
    await worker.start()
    dispatching = asyncio.create_task(dispatcher.run(stopping))
    try:
        await asyncio.wait_for(worker.waiting.wait(), 10)
        assert await job_woken() and await event_woken()
        load = asyncio.create_task(_load(pool, queue))
        await _kill_and_restart(embedded)
        restarted = asyncio.get_running_loop().time()
        load.cancel()
        await asyncio.gather(load, return_exceptions=True)
        while not await both_woken():
            elapsed = asyncio.get_running_loop().time() - restarted
            assert elapsed < RECOVERY_DEADLINE, "not woken by NOTIFY 40 s after the restart"
    finally:
        stopping.set()
        await asyncio.wait_for(dispatching, 10)
        await worker.stop()
        await notifications.stop()
        await deps.connectors.aclose()
        await pool.close()
    logged = capsys.readouterr().err
    # One line when the outage begins and one when it ends, per LISTEN connection: the
    # worker and the dispatcher share one.
    assert _logged(logged, "database.listen_lost") == 1, logged[-3000:]
    assert _logged(logged, "database.listen_restored") == 1
    assert _logged(logged, "worker.claim_failed") <= 1
    assert _logged(logged, "worker.heartbeat_failed") <= 1


# -- paygrid serve keeps its embedded PostgreSQL running -----------------------------------------


def _postmaster_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return None
    return int(pid_file.read_text().splitlines()[0])


def _serve(environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "paygrid.cli", "serve"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


@pytest.mark.slow
async def test_paygrid_serve_restarts_its_embedded_postgres_and_recovers(tmp_path: Path) -> None:
    port = _free_port()
    data_dir = tmp_path / "data"
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PAYGRID_")
    }
    environment |= {
        "PAYGRID_DATA_DIR": str(data_dir),
        "PAYGRID_PORT": str(port),
        "PAYGRID_LOG_LEVEL": "INFO",
        "PAYGRID_WORKER_POLL_SECONDS": "0.5",
    }
    log = tmp_path / "serve.log"
    process = _serve(environment, log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz", timeout=2)).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, deadline=60)
            first = _postmaster_pid(data_dir)
            assert first is not None
            beat_before_kill = max(
                w["heartbeat"] for w in (await http.get("/readyz")).json()["workers"]
            )
            os.kill(first, signal.SIGKILL)

            async def restarted() -> bool:
                pid = _postmaster_pid(data_dir)
                return pid is not None and pid != first and await ready()

            await eventually(restarted, deadline=30)

            # The in-process worker (the only one on this private database) beats again.
            async def worker_beats() -> bool:
                workers = (await http.get("/readyz")).json()["workers"]
                return any(w["heartbeat"] > beat_before_kill for w in workers)

            await eventually(worker_beats, deadline=20)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 128 + signal.SIGTERM
        assert '"event":"embedded_postgres.restarted"' in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        leftover = _postmaster_pid(data_dir)
        if leftover is not None and psutil.pid_exists(leftover):
            os.kill(leftover, signal.SIGQUIT)
