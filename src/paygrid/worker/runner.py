"""The worker: claims due jobs (``FOR UPDATE SKIP LOCKED``), runs up to ``concurrency`` of
them at once under leases it keeps renewing, retries failures on each kind's schedule,
records a heartbeat, and on stop lets in-flight jobs finish or releases them.

It wakes on ``NOTIFY paygrid_jobs`` and polls as a fallback, so a lost notification only
delays a job by the poll interval. The LISTEN connection (the process's one, shared through
``paygrid.db.listener.Notifications``) is reopened when the database comes back after an
outage, and an outage is logged once, not at every claim and heartbeat.

Every time it acts on (due times, leases, retries, heartbeats) and every wait between polls
and beats is ``deps.clock``'s, so a test moves a ``FakeClock`` instead of sleeping."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from paygrid.config import Settings
from paygrid.db import audit as audit_db
from paygrid.db import engine
from paygrid.db import jobs as jobs_db
from paygrid.db import workers as workers_db
from paygrid.db.jobs import CHANNEL, DEFAULT_QUEUE, Job
from paygrid.db.listener import Notifications, Subscription
from paygrid.dependencies import Deps
from paygrid.ids import new_id
from paygrid.worker.registry import JobContext, JobKind, JobRegistry
from paygrid.worker.retry import after_failure

log = structlog.get_logger("paygrid.worker")

HEARTBEAT_SECONDS = 5.0
LIVE_WORKER_WINDOW = timedelta(seconds=3 * HEARTBEAT_SECONDS)
"""A worker whose heartbeat is older than this is presumed dead."""
MAX_ERROR_CHARS = 2000
# When a due job is locked by another worker's claim in progress, look again this soon
# rather than spinning on the database.
MIN_WAIT_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    queues: tuple[str, ...] = (DEFAULT_QUEUE,)
    concurrency: int = 16
    poll_seconds: float = 1.0
    lease_seconds: float = 30.0
    shutdown_seconds: float = 5.0

    @classmethod
    def from_settings(
        cls, settings: Settings, queues: Sequence[str] = (DEFAULT_QUEUE,)
    ) -> WorkerConfig:
        """The ``PAYGRID_WORKER_*`` settings, for ``queues``."""
        return cls(
            queues=tuple(queues),
            concurrency=settings.worker_concurrency,
            poll_seconds=settings.worker_poll_seconds,
            lease_seconds=settings.worker_lease_seconds,
            shutdown_seconds=settings.worker_shutdown_seconds,
        )

    @property
    def heartbeat_seconds(self) -> float:
        # Lease renewals ride on the heartbeat, so it beats at least three times per lease.
        return min(HEARTBEAT_SECONDS, self.lease_seconds / 3)


@dataclass(slots=True)
class _InFlight:
    """The jobs this worker is running. A job is ``finishing`` once its handler returned and
    its result is being written: losing the lease then must not cancel the write."""

    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    finishing: set[str] = field(default_factory=set)

    def held(self) -> list[str]:
        return [job_id for job_id in self.tasks if job_id not in self.finishing]


@dataclass(slots=True)
class _Failures:
    """Logs each kind of failure once per database outage (a claim every poll and a
    heartbeat every few seconds would otherwise log an error each time), and any failure
    that is not an outage every time."""

    worker_id: str
    down: set[str] = field(default_factory=set)

    def failed(self, event: str, error: Exception) -> None:
        if not engine.unreachable(error):
            log.error(event, worker_id=self.worker_id, exc_info=error)
        elif event not in self.down:
            self.down.add(event)
            log.warning(event, worker_id=self.worker_id, error=type(error).__name__)

    def succeeded(self, event: str) -> None:
        self.down.discard(event)


class Worker:
    """One job worker. Any number may run side by side, in one process or many."""

    def __init__(
        self,
        deps: Deps,
        registry: JobRegistry,
        config: WorkerConfig,
        notifications: Notifications | None = None,
    ) -> None:
        """``notifications``: the process's LISTEN hub (its owner starts and stops it);
        without one, the worker holds a LISTEN connection of its own."""
        if config.concurrency < 1:
            raise ValueError("a worker needs a concurrency of at least 1")
        self.id = new_id("wkr")
        self.config = config
        self.waiting = asyncio.Event()
        """Set while the worker waits for work, a free slot or its next poll."""
        self._deps = deps
        self._clock = deps.clock
        self._registry = registry
        self._in_flight = _InFlight()
        self._wake = asyncio.Event()
        self._stopping = False
        self._held = False
        self._claim_pending = False
        self._claiming: asyncio.Task[None] | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._failures = _Failures(self.id)
        self._owns_notifications = notifications is None
        self._notifications = notifications or Notifications(deps.pool, owner=self.id)
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        """Register this worker, create its queues' periodic jobs, listen, start claiming."""
        pool = self._deps.pool
        await workers_db.register(
            pool,
            self.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            queues=self.config.queues,
            concurrency=self.config.concurrency,
            now=self._clock.now(),
        )
        for schedule in self._registry.schedules():
            if schedule.queue in self.config.queues:
                await jobs_db.ensure_periodic(
                    pool, schedule.kind, schedule.queue, schedule.every, self._clock.now()
                )
        if self._owns_notifications:
            await self._notifications.start()
        # Once it listens again after an outage, claim at once: jobs committed meanwhile
        # notified nobody.
        self._subscription = await self._notifications.subscribe(
            CHANNEL, self._on_notify, on_listening=self._wake.set
        )
        self._claiming = asyncio.create_task(self._claim_loop(), name=f"{self.id} claim")
        self._housekeeping = asyncio.create_task(self._beat_loop(), name=f"{self.id} heartbeat")
        log.info("worker.started", worker_id=self.id, queues=list(self.config.queues))

    async def stop(self) -> None:
        """Stop claiming; give in-flight jobs ``shutdown_seconds`` to finish, then cancel
        the rest and release them to other workers. Safe to call twice."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        if self._claiming is not None:
            await self._claiming
        released = await self._drain()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
        if self._subscription is not None:
            await self._subscription.stop()
        if self._owns_notifications:
            await self._notifications.stop()
        try:
            await workers_db.mark_stopped(self._deps.pool, self.id, self._clock.now())
        except Exception:  # shutting down anyway: the heartbeat simply goes stale
            log.exception("worker.stop_not_recorded", worker_id=self.id)
        log.info("worker.stopped", worker_id=self.id, released=released)

    @property
    def in_flight(self) -> int:
        """The jobs this worker is running now, plus one for a claim under way (it may
        return jobs: ``hold`` does not stop a claim already sent)."""
        return len(self._in_flight.tasks) + int(self._claim_pending)

    def hold(self, held: bool) -> None:
        """Stop claiming while ``held`` (jobs in flight run on, heartbeats go on; a claim
        under way when it is held hands its jobs back), claim again at once when released.
        Whoever embeds the worker decides when (paygrid's restore fence holds every worker
        while the database is replaced)."""
        self._held = held
        if not held:
            self._wake.set()

    async def _drain(self) -> list[str]:
        tasks = dict(self._in_flight.tasks)
        if not tasks:
            return []
        _, pending = await asyncio.wait(tasks.values(), timeout=self.config.shutdown_seconds)
        unfinished = [job_id for job_id, task in tasks.items() if task in pending]
        for job_id in unfinished:
            if job_id not in self._in_flight.finishing:
                tasks[job_id].cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if not unfinished:
            return []
        try:
            return await jobs_db.release(self._deps.pool, self.id, unfinished, self._clock.now())
        except Exception:  # their leases run out and another worker reclaims them
            log.exception("worker.release_failed", worker_id=self.id, job_ids=unfinished)
            return []

    async def _claim_loop(self) -> None:
        config = self.config
        while not self._stopping:
            self._wake.clear()
            # Waits are measured from the time the queue was read at, so a clock moved
            # meanwhile (a test's) is not missed.
            now = self._clock.now()
            timeout = config.poll_seconds
            free = config.concurrency - len(self._in_flight.tasks)
            if free > 0 and not self._held:
                try:
                    if await self._claim(free, now) == free:
                        continue  # every slot taken: wait for one to free up
                    due = await jobs_db.seconds_until_due(self._deps.pool, config.queues, now)
                except Exception as error:  # outlive database outages: try again after the
                    # poll interval, or as soon as the LISTEN connection is back
                    self._failures.failed("worker.claim_failed", error)
                else:
                    self._failures.succeeded("worker.claim_failed")
                    if due is not None:
                        timeout = max(min(MIN_WAIT_SECONDS, timeout), min(timeout, due))
            await self._idle(now, timeout)

    async def _claim(self, free: int, now: datetime) -> int:
        """Claim up to ``free`` jobs and start them; how many were started. Counted in
        flight until then: a claim that returns once the worker is held (the restore's
        fence rose meanwhile) hands its jobs back to the queue instead."""
        self._claim_pending = True
        try:
            config = self.config
            jobs = await jobs_db.claim(
                self._deps.pool, self.id, config.queues, free, config.lease_seconds, now
            )
            if self._held and jobs:
                await self._release_claimed([job.id for job in jobs])
                return 0
            for job in jobs:
                self._spawn(job)
            return len(jobs)
        finally:
            self._claim_pending = False

    async def _release_claimed(self, job_ids: list[str]) -> None:
        try:
            await jobs_db.release(self._deps.pool, self.id, job_ids, self._clock.now())
        except Exception:  # their leases run out and a worker reclaims them once released
            log.exception("worker.release_failed", worker_id=self.id, job_ids=job_ids)
        else:
            log.info("worker.claim_released", worker_id=self.id, job_ids=job_ids)

    async def _idle(self, since: datetime, seconds: float) -> None:
        """Wait until woken (a notification, a free slot, stop) or the clock reads
        ``seconds`` after ``since``."""
        left = seconds - (self._clock.now() - since).total_seconds()
        timer = asyncio.ensure_future(self._clock.sleep(left))
        self.waiting.set()
        timer.add_done_callback(self._timer_rang)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()
            self.waiting.clear()

    def _timer_rang(self, timer: asyncio.Task[None]) -> None:
        if not timer.cancelled():  # a cancelled timer belongs to a wait that already ended
            self._wake.set()

    def _spawn(self, job: Job) -> None:
        if job.id in self._in_flight.tasks:
            # Our own lease ran out (renewals failed) and we claimed the job again while its
            # first run continues: that run goes on under the renewed lease.
            log.warning("job.already_running", worker_id=self.id, job_id=job.id)
            return
        task = asyncio.create_task(self._execute(job), name=f"job {job.id}")
        self._in_flight.tasks[job.id] = task
        task.add_done_callback(functools.partial(self._forget, job.id))

    def _forget(self, job_id: str, _task: asyncio.Task[None]) -> None:
        self._in_flight.tasks.pop(job_id, None)
        self._in_flight.finishing.discard(job_id)
        self._wake.set()  # a slot is free

    async def _execute(self, job: Job) -> None:
        if job.reclaimed_from is not None:
            log.warning(
                "job.reclaimed", job_id=job.id, kind=job.kind, previous_worker=job.reclaimed_from
            )
        try:
            await self._run(job)
        except Exception:  # the result was not written: the lease runs out, the job reruns
            log.exception("job.result_not_recorded", worker_id=self.id, job_id=job.id)

    async def _run(self, job: Job) -> None:
        kind = self._registry.get(job.kind)
        if kind is None:
            error = f"no handler is registered for job kind '{job.kind}'"
            bury = jobs_db.bury(self._deps.pool, job.id, self.id, error, self._clock.now())
            await self._record(job, bury, "job.dead")
            return
        if job.attempts > kind.retry.max_attempts:
            # The last allowed attempt's worker died mid-run. It counts as a failure, so a job
            # that kills its worker every time cannot be reclaimed forever.
            error = "the worker running the last attempt stopped without finishing it"
            await self._fail(job, kind, error, attempt=job.attempts - 1)
            return
        context = JobContext(self._deps, job.id, job.attempts, self.id)
        audit_db.act_as(f"job:{job.kind}")  # changes the job makes are audited as its own
        try:
            await kind.handler(job.payload, context)
        except Exception as failure:
            log.warning("job.failed", job_id=job.id, kind=job.kind, exc_info=failure)
            await self._fail(job, kind, _describe(failure), attempt=job.attempts)
            return
        done = jobs_db.complete(self._deps.pool, job.id, self.id, self._clock.now())
        await self._record(job, done, "job.succeeded")

    async def _fail(self, job: Job, kind: JobKind, error: str, *, attempt: int) -> None:
        pool, now = self._deps.pool, self._clock.now()
        step = after_failure(kind.retry, attempt, job.repeat_every)
        if step is None:
            await self._record(job, jobs_db.bury(pool, job.id, self.id, error, now), "job.dead")
            return
        write = jobs_db.reschedule(
            pool,
            job.id,
            self.id,
            delay_seconds=step.delay_seconds,
            error=error,
            next_period=step.next_period,
            now=now,
        )
        await self._record(job, write, "job.rescheduled", delay_seconds=step.delay_seconds)

    async def _record(self, job: Job, write: Awaitable[bool], event: str, **fields: object) -> None:
        self._in_flight.finishing.add(job.id)
        if await write:
            log.info(event, job_id=job.id, kind=job.kind, attempt=job.attempts, **fields)
        else:  # another worker took the job over after our lease ran out: its word stands
            log.warning("job.lease_lost", worker_id=self.id, job_id=job.id, kind=job.kind)

    async def _beat_loop(self) -> None:
        last = self._clock.now()
        while True:
            # The next beat is due a period after the last one began, on the clock.
            period = self.config.heartbeat_seconds
            await self._clock.sleep(period - (self._clock.now() - last).total_seconds())
            last = self._clock.now()
            try:
                await self._beat(last)
            except Exception as error:  # a missed beat is retried next time; the lease has slack
                self._failures.failed("worker.heartbeat_failed", error)
            else:
                self._failures.succeeded("worker.heartbeat_failed")

    async def _beat(self, now: datetime) -> None:
        pool = self._deps.pool
        await workers_db.heartbeat(pool, self.id, now)
        held = self._in_flight.held()
        if held:
            lease = self.config.lease_seconds
            renewed = await jobs_db.renew_leases(pool, self.id, held, lease, now)
            for job_id in set(held) - renewed:
                self._abandon(job_id)

    def _abandon(self, job_id: str) -> None:
        """Stop running a job whose lease another worker took over, so it never runs twice
        at the same time for long."""
        task = self._in_flight.tasks.get(job_id)
        if task is not None and job_id not in self._in_flight.finishing:
            log.warning("job.lease_lost", worker_id=self.id, job_id=job_id)
            task.cancel()

    def _on_notify(self, payload: str) -> None:
        if payload in self.config.queues:
            self._wake.set()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
