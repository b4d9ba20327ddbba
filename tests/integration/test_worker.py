"""The job runner against real PostgreSQL: transactional enqueue, exactly-once runs, retries,
dead jobs, competing workers, lease takeover, graceful stop, NOTIFY and periodic jobs.

Each test works on a queue of its own, so workers from different tests never see each
other's jobs. Tests about retry times and leases run their workers on a FakeClock and move
it, instead of sleeping until a lease or a retry falls due."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from paygrid.clock import FakeClock
from paygrid.db import jobs as jobs_db
from paygrid.dependencies import Deps
from paygrid.worker.registry import JobContext, JobRegistry
from paygrid.worker.retry import RetryPolicy
from paygrid.worker.runner import Worker
from tests.integration.worker_harness import (
    eventually,
    job_row,
    running,
    settled,
    worker_for,
)


@pytest.fixture
def queue() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timed(deps: Deps, clock: FakeClock) -> Deps:
    """Deps whose workers read, and wait on, the test's FakeClock."""
    return replace(deps, clock=clock)


class Recorder:
    """A handler that records each run as (job id, attempt, worker id)."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, int, str]] = []

    async def __call__(self, _payload: dict[str, Any], context: JobContext) -> None:
        self.runs.append((context.job_id, context.attempt, context.worker_id))


def registry_of(**handlers: Any) -> JobRegistry:
    registry = JobRegistry()
    for kind, handler in handlers.items():
        registry.register(f"test.{kind}", handler)
    return registry


async def test_job_enqueued_in_a_rolled_back_transaction_never_runs(
    pool: asyncpg.Pool, deps: Deps, queue: str
) -> None:
    record = Recorder()

    class Abort(Exception):
        """The caller's change failed."""

    rolled_back: str | None = None
    with pytest.raises(Abort):
        async with pool.acquire() as conn, conn.transaction():
            rolled_back = await jobs_db.enqueue(conn, "test.record", queue=queue)
            assert rolled_back is not None
            raise Abort
    committed = await jobs_db.enqueue(pool, "test.record", queue=queue)
    assert committed is not None and rolled_back is not None
    async with running(deps, registry_of(record=record), queue):
        await settled(pool, committed)
    assert [job_id for job_id, _, _ in record.runs] == [committed]
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE id = $1", rolled_back) == 0


async def test_handler_runs_exactly_once(pool: asyncpg.Pool, deps: Deps, queue: str) -> None:
    record = Recorder()
    first = await jobs_db.enqueue(pool, "test.record", {"n": 1}, queue=queue)
    assert first is not None
    async with running(deps, registry_of(record=record), queue) as worker:
        done = await settled(pool, first)
        # A later job finishing proves the worker kept claiming after the first one.
        second = await jobs_db.enqueue(pool, "test.record", {"n": 2}, queue=queue)
        assert second is not None
        await settled(pool, second)
    assert record.runs == [(first, 1, worker.id), (second, 1, worker.id)]
    assert (done["status"], done["attempts"], done["last_error"]) == ("succeeded", 1, None)
    assert done["locked_by"] is None and done["lease_expires_at"] is None


async def test_failed_attempts_are_retried_on_schedule_until_one_succeeds(
    pool: asyncpg.Pool, timed: Deps, clock: FakeClock, queue: str
) -> None:
    attempts: list[int] = []

    async def flaky(_payload: dict[str, Any], context: JobContext) -> None:
        attempts.append(context.attempt)
        if context.attempt < 3:
            raise RuntimeError(f"provider down (attempt {context.attempt})")

    registry = JobRegistry()
    registry.register("test.flaky", flaky, retry=RetryPolicy((3600.0, 0.0)))
    job = await jobs_db.enqueue(pool, "test.flaky", queue=queue, run_at=clock.now())
    assert job is not None
    async with running(timed, registry, queue) as worker:
        failed = await settled(pool, job, ("failed",))
        assert failed["attempts"] == 1
        assert failed["last_error"] == "RuntimeError: provider down (attempt 1)"
        assert failed["run_at"] == clock.now() + timedelta(hours=1)
        assert failed["locked_by"] is None
        clock.advance(timedelta(minutes=59))
        await _idle_again(worker)
        assert attempts == [1]  # not due yet
        clock.advance(timedelta(minutes=1))
        done = await settled(pool, job)
    assert attempts == [1, 2, 3]
    assert (done["status"], done["attempts"]) == ("succeeded", 3)
    assert done["last_error"] == "RuntimeError: provider down (attempt 2)"


async def test_job_is_dead_once_its_retries_are_used_up(
    pool: asyncpg.Pool, deps: Deps, queue: str
) -> None:
    attempts: list[int] = []

    async def broken(_payload: dict[str, Any], context: JobContext) -> None:
        attempts.append(context.attempt)
        raise ValueError(f"bad payload (attempt {context.attempt})")

    registry = JobRegistry()
    registry.register("test.broken", broken, retry=RetryPolicy((0.0, 0.0)))
    job = await jobs_db.enqueue(pool, "test.broken", queue=queue)
    assert job is not None
    async with running(deps, registry, queue):
        dead = await settled(pool, job, ("dead",))
    assert attempts == [1, 2, 3]
    assert (dead["attempts"], dead["last_error"]) == (3, "ValueError: bad payload (attempt 3)")
    assert dead["locked_by"] is None


async def test_job_of_an_unknown_kind_is_dead(pool: asyncpg.Pool, deps: Deps, queue: str) -> None:
    job = await jobs_db.enqueue(pool, "test.nobody_handles_this", queue=queue)
    assert job is not None
    async with running(deps, JobRegistry(), queue):
        dead = await settled(pool, job)
    assert dead["status"] == "dead" and dead["attempts"] == 1
    assert dead["last_error"] == "no handler is registered for job kind 'test.nobody_handles_this'"


async def test_unique_key_allows_one_live_job_at_a_time(
    pool: asyncpg.Pool, deps: Deps, queue: str
) -> None:
    key = f"poll:{queue}"
    first = await jobs_db.enqueue(pool, "test.record", queue=queue, unique_key=key)
    assert first is not None
    assert await jobs_db.enqueue(pool, "test.record", queue=queue, unique_key=key) is None
    async with running(deps, registry_of(record=Recorder()), queue):
        await settled(pool, first)
    again = await jobs_db.enqueue(pool, "test.record", queue=queue, unique_key=key)
    assert again is not None and again != first


async def test_two_workers_run_each_of_200_jobs_exactly_once_and_never_concurrently(
    pool: asyncpg.Pool, deps: Deps, queue: str
) -> None:
    runs: Counter[str] = Counter()
    by_worker: Counter[str] = Counter()
    in_flight: set[str] = set()
    overlaps: list[str] = []
    all_ran = asyncio.Event()

    async def work(payload: dict[str, Any], context: JobContext) -> None:
        if context.job_id in in_flight:
            overlaps.append(context.job_id)
        in_flight.add(context.job_id)
        try:
            await asyncio.sleep(0.001 * (payload["n"] % 3))  # let the two workers interleave
        finally:
            in_flight.discard(context.job_id)
        runs[context.job_id] += 1
        by_worker[context.worker_id] += 1
        if sum(runs.values()) >= 200:
            all_ran.set()

    registry = registry_of(work=work)
    async with (
        running(deps, registry, queue, concurrency=8) as one,
        running(deps, registry, queue, concurrency=8) as two,
    ):
        # Enqueued once both run: enqueued before, the first could finish all 200 while the
        # second still opens its connections on a slow machine.
        ids = [await jobs_db.enqueue(pool, "test.work", {"n": n}, queue=queue) for n in range(200)]
        await asyncio.wait_for(all_ran.wait(), 30)
        await eventually(
            lambda: _count(pool, "status = 'succeeded' AND queue = $1", queue, equals=200)
        )
    assert set(runs) == set(ids) and set(runs.values()) == {1}
    assert overlaps == []
    assert set(by_worker) == {one.id, two.id}
    assert await pool.fetchval("SELECT max(attempts) FROM jobs WHERE queue = $1", queue) == 1


async def _idle_again(worker: Worker) -> None:
    """Until the worker has read the queue again at the clock's new time and gone idle."""
    worker.waiting.clear()
    await asyncio.wait_for(worker.waiting.wait(), 10)


async def _leased_until(pool: asyncpg.Pool, job: str, until: datetime) -> bool:
    row = await job_row(pool, job)
    return bool(row["lease_expires_at"] == until)


async def _count(pool: asyncpg.Pool, where: str, *args: Any, equals: int) -> bool:
    count = await pool.fetchval(f"SELECT count(*) FROM jobs WHERE {where}", *args)  # noqa: S608 - constant fragments
    return bool(count == equals)


async def test_expired_lease_is_reclaimed_and_the_old_workers_writes_are_refused(
    pool: asyncpg.Pool, timed: Deps, clock: FakeClock, queue: str
) -> None:
    started, finish = asyncio.Event(), asyncio.Event()
    record = Recorder()

    async def slow(payload: dict[str, Any], context: JobContext) -> None:
        await record(payload, context)
        started.set()
        await finish.wait()

    job = await jobs_db.enqueue(pool, "test.slow", queue=queue, run_at=clock.now())
    assert job is not None
    # A worker claims the job with a 30 s lease and dies without a word.
    [claimed] = await jobs_db.claim(pool, "wkr_dead", [queue], 1, 30, clock.now())
    assert claimed.id == job
    async with running(timed, registry_of(slow=slow), queue) as worker:
        clock.advance(29)
        await _idle_again(worker)
        assert not started.is_set()  # the lease still holds
        clock.advance(2)
        await asyncio.wait_for(started.wait(), 10)
        taken = await job_row(pool, job)
        assert (taken["locked_by"], taken["attempts"]) == (worker.id, 2)
        # The old worker comes back to life: none of its writes may touch the job now.
        now = clock.now()
        assert not await jobs_db.complete(pool, job, "wkr_dead", now)
        assert not await jobs_db.bury(pool, job, "wkr_dead", "late", now)
        assert not await jobs_db.reschedule(
            pool, job, "wkr_dead", delay_seconds=0, error="late", next_period=False, now=now
        )
        assert await jobs_db.release(pool, "wkr_dead", [job], now) == []
        assert await jobs_db.renew_leases(pool, "wkr_dead", [job], 30, now) == set()
        untouched = await job_row(pool, job)
        assert (untouched["status"], untouched["locked_by"]) == ("running", worker.id)
        assert untouched["last_error"] is None
        finish.set()
        done = await settled(pool, job)
    assert record.runs == [(job, 2, worker.id)]
    assert (done["status"], done["attempts"]) == ("succeeded", 2)


async def test_job_whose_worker_died_on_its_last_attempt_is_dead_without_rerunning(
    pool: asyncpg.Pool, timed: Deps, clock: FakeClock, queue: str
) -> None:
    record = Recorder()
    registry = JobRegistry()
    registry.register("test.once", record, retry=RetryPolicy(()))
    job = await jobs_db.enqueue(pool, "test.once", queue=queue, run_at=clock.now())
    assert job is not None
    await jobs_db.claim(pool, "wkr_dead", [queue], 1, 30, clock.now())
    async with running(timed, registry, queue):
        clock.advance(31)
        dead = await settled(pool, job)
    assert record.runs == []
    assert (dead["status"], dead["attempts"]) == ("dead", 2)
    assert dead["last_error"] == "the worker running the last attempt stopped without finishing it"


async def test_lease_is_renewed_while_a_long_job_runs(
    pool: asyncpg.Pool, timed: Deps, clock: FakeClock, queue: str
) -> None:
    record = Recorder()
    started, finish = asyncio.Event(), asyncio.Event()

    async def long(payload: dict[str, Any], context: JobContext) -> None:
        await record(payload, context)
        started.set()
        await finish.wait()

    registry = registry_of(long=long)
    lease = 30.0  # renewed every 10 s of the clock's time (three times per lease)
    async with (
        running(timed, registry, queue, lease_seconds=lease),
        running(timed, registry, queue, lease_seconds=lease),
    ):
        job = await jobs_db.enqueue(pool, "test.long", queue=queue, run_at=clock.now())
        assert job is not None
        await asyncio.wait_for(started.wait(), 10)
        for _ in range(9):  # three leases long
            renewed_until = clock.advance(lease / 3) + timedelta(seconds=lease)
            await eventually(functools.partial(_leased_until, pool, job, renewed_until))
        finish.set()
        done = await settled(pool, job)
    assert len(record.runs) == 1
    assert (done["status"], done["attempts"]) == ("succeeded", 1)


async def test_worker_stops_running_a_job_whose_lease_was_taken_over(
    pool: asyncpg.Pool, timed: Deps, clock: FakeClock, queue: str
) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(_payload: dict[str, Any], _context: JobContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with running(timed, registry_of(stuck=stuck), queue, lease_seconds=30):
        job = await jobs_db.enqueue(pool, "test.stuck", queue=queue, run_at=clock.now())
        assert job is not None
        await asyncio.wait_for(started.wait(), 10)
        await pool.execute("UPDATE jobs SET locked_by = 'wkr_other' WHERE id = $1", job)
        clock.advance(10)  # the next heartbeat finds the lease gone
        await asyncio.wait_for(cancelled.wait(), 10)
    row = await job_row(pool, job)
    assert (row["status"], row["locked_by"]) == ("running", "wkr_other")


async def test_stop_lets_in_flight_jobs_finish_and_releases_the_rest(
    pool: asyncpg.Pool, deps: Deps, queue: str
) -> None:
    quick_started, stuck_started, proceed = asyncio.Event(), asyncio.Event(), asyncio.Event()
    interrupted: list[str] = []

    async def quick(_payload: dict[str, Any], _context: JobContext) -> None:
        quick_started.set()
        await proceed.wait()

    async def stuck(_payload: dict[str, Any], context: JobContext) -> None:
        stuck_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            interrupted.append(context.job_id)
            raise

    quick_job = await jobs_db.enqueue(pool, "test.quick", queue=queue)
    stuck_job = await jobs_db.enqueue(pool, "test.stuck", queue=queue)
    assert quick_job is not None and stuck_job is not None
    worker = worker_for(deps, registry_of(quick=quick, stuck=stuck), queue, shutdown_seconds=1.0)
    await worker.start()
    await asyncio.wait_for(asyncio.gather(quick_started.wait(), stuck_started.wait()), 10)
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0)  # one loop turn: stop() has begun, both jobs are still in flight
    proceed.set()
    await stopping

    finished = await job_row(pool, quick_job)
    assert (finished["status"], finished["attempts"]) == ("succeeded", 1)
    released = await job_row(pool, stuck_job)
    assert interrupted == [stuck_job]
    assert (released["status"], released["attempts"], released["locked_by"]) == ("queued", 0, None)
    assert await pool.fetchval("SELECT run_at <= now() FROM jobs WHERE id = $1", stuck_job)
    assert await pool.fetchval("SELECT stopped_at FROM workers WHERE id = $1", worker.id)

    # Released work is picked up by the next worker at once.
    record = Recorder()
    async with running(deps, registry_of(stuck=record), queue) as successor:
        done = await settled(pool, stuck_job)
    assert record.runs == [(stuck_job, 1, successor.id)]
    assert done["status"] == "succeeded"


async def test_notify_wakes_an_idle_worker(pool: asyncpg.Pool, deps: Deps, queue: str) -> None:
    ran = asyncio.Event()

    async def mark(_payload: dict[str, Any], _context: JobContext) -> None:
        ran.set()

    # The next poll is 30 s away, so only the NOTIFY sent on commit can wake the worker in time.
    async with running(deps, registry_of(mark=mark), queue, poll_seconds=30.0) as worker:
        await asyncio.wait_for(worker.waiting.wait(), 10)
        await jobs_db.enqueue(pool, "test.mark", queue=queue)
        await asyncio.wait_for(ran.wait(), 10)


async def test_polling_finds_jobs_written_without_notify(
    pool: asyncpg.Pool, deps: Deps, queue: str
) -> None:
    record = Recorder()
    job = f"job_{uuid.uuid4().hex}"
    async with running(deps, registry_of(record=record), queue, poll_seconds=0.1) as worker:
        await asyncio.wait_for(worker.waiting.wait(), 10)
        await pool.execute(
            "INSERT INTO jobs (id, queue, kind) VALUES ($1, $2, 'test.record')", job, queue
        )
        await settled(pool, job)
    assert record.runs == [(job, 1, worker.id)]


async def test_periodic_job_row_is_created_once_and_requeued_after_each_run(
    pool: asyncpg.Pool, deps: Deps, queue: str
) -> None:
    kind = f"test.tick.{queue}"  # a periodic row is keyed by its kind
    record = Recorder()
    registry = JobRegistry()
    registry.register(kind, record)
    registry.schedule(kind, every=timedelta(hours=1), queue=queue)
    async with running(deps, registry, queue), running(deps, registry, queue):
        await eventually(lambda: _ran_and_requeued(pool, kind))
    [row] = await pool.fetch("SELECT * FROM jobs WHERE kind = $1", kind)
    assert len(record.runs) == 1
    assert (row["status"], row["attempts"], row["repeat_every"]) == (
        "queued",
        0,
        timedelta(hours=1),
    )
    assert row["run_at"] - row["updated_at"] == timedelta(hours=1)


async def _ran_and_requeued(pool: asyncpg.Pool, kind: str) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT status = 'queued' AND run_at > now() + interval '30 minutes'"
            " FROM jobs WHERE kind = $1",
            kind,
        )
    )


async def test_failing_periodic_job_waits_for_its_next_period_instead_of_dying(
    pool: asyncpg.Pool, deps: Deps, queue: str
) -> None:
    kind = f"test.tick.{queue}"

    async def failing(_payload: dict[str, Any], _context: JobContext) -> None:
        raise RuntimeError("upstream down")

    registry = JobRegistry()
    registry.register(kind, failing, retry=RetryPolicy(()))
    registry.schedule(kind, every=timedelta(hours=1), queue=queue)
    async with running(deps, registry, queue):
        await eventually(lambda: _ran_and_requeued(pool, kind))
    row = await pool.fetchrow("SELECT * FROM jobs WHERE kind = $1", kind)
    assert row is not None
    assert (row["status"], row["attempts"]) == ("queued", 0)
    assert row["last_error"] == "RuntimeError: upstream down"
    assert row["run_at"] - row["updated_at"] == timedelta(hours=1)


async def test_a_held_worker_claims_nothing_until_released(
    pool: asyncpg.Pool, deps: Deps, queue: str
) -> None:
    """The restore's fence holds workers (``Worker.hold``): a job committed, and notified,
    while the worker is held waits through poll after poll; released, the worker runs it."""
    record = Recorder()
    async with running(deps, registry_of(record=record), queue, poll_seconds=0.05) as worker:
        worker.hold(True)
        await asyncio.wait_for(worker.waiting.wait(), 10)
        job = await jobs_db.enqueue(pool, "test.record", queue=queue)
        assert job is not None
        # Several rounds of its loop (each ends in a wait), none of which claims the job.
        for _ in range(5):
            worker.waiting.clear()
            await asyncio.wait_for(worker.waiting.wait(), 10)
        assert (await job_row(pool, job))["status"] == "queued"
        assert record.runs == []
        worker.hold(False)
        await settled(pool, job)
    assert record.runs == [(job, 1, worker.id)]
