"""The composition root: builds what ``serve``, ``worker`` and the CLI run on, and wires
paygrid's jobs into the job framework (``paygrid.worker``), which knows none of them.

Nothing below this module chooses an implementation: use cases, jobs and routes receive a
``Deps`` (``paygrid.dependencies``) built here once per process, and tests build theirs here
too, swapping the clock, DNS or metrics at those seams only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final

import asyncpg
import structlog

from paygrid.broker import publisher
from paygrid.broker.connection import EventBroker
from paygrid.clock import SYSTEM_CLOCK, Clock
from paygrid.config import FAILURE_MODES, Settings
from paygrid.connectors.registry import ConnectorRegistry
from paygrid.connectors.simulator import SimulatorConnector
from paygrid.db import engine
from paygrid.db.jobs import DEFAULT_QUEUE
from paygrid.db.listener import Notifications
from paygrid.db.read_replica import ReadReplica
from paygrid.dependencies import Deps
from paygrid.domain import emails
from paygrid.lookup_cache import Lookups
from paygrid.observability.metrics import Metrics
from paygrid.services import audit, maintenance, provider_webhooks, status_sync
from paygrid.services.billing import clock_advance, hosted_invoice_pdfs
from paygrid.services.billing.clock_advance import ClockAdvanceStep
from paygrid.services.billing.retries import jobs as dunning_jobs
from paygrid.services.billing.subscriptions import schedule as subscription_schedule
from paygrid.services.emails import card_expiry, prepare, sending
from paygrid.services.reconciliation import jobs as reconciliation_jobs
from paygrid.services.reconciliation import runs as reconciliation_runs
from paygrid.services.reports import run_job as report_runs
from paygrid.services.settlements import jobs as settlement_jobs
from paygrid.web.invoice_pdf import render_pdf
from paygrid.webhooks import delivery
from paygrid.webhooks.destinations import SYSTEM_RESOLVER
from paygrid.webhooks.dispatcher import EventDispatcher
from paygrid.worker.registry import JobContext, JobRegistry
from paygrid.worker.retry import RetryPolicy
from paygrid.worker.runner import Worker, WorkerConfig

log = structlog.get_logger("paygrid.worker")

# The broker queue is always worked: without PAYGRID_AMQP_URL no job is ever put on it.
QUEUES = (
    DEFAULT_QUEUE,
    delivery.QUEUE,
    publisher.QUEUE,
    clock_advance.QUEUE,
    emails.QUEUE,
    hosted_invoice_pdfs.QUEUE,
)
# A failed housekeeping run is tried once more a minute later, then waits for its next period.
MAINTENANCE_RETRY = RetryPolicy((60.0,))
DELIVERY_CRASH_RETRY = RetryPolicy((1.0, 5.0, 30.0, 300.0))
# The billing work a test clock's advance runs at each moment it stops at, in this order
# (services/billing/clock_advance.py's ClockAdvanceStep). Subscriptions plug in here.
CLOCK_ADVANCE_STEPS: Final[tuple[ClockAdvanceStep, ...]] = (
    subscription_schedule.STEP,
    card_expiry.STEP,
    dunning_jobs.STEP,
)


def build_deps(
    pool: asyncpg.Pool,
    settings: Settings,
    bookkeeping_pool: asyncpg.Pool | None = None,
    app_metrics: Metrics | None = None,
    clock: Clock = SYSTEM_CLOCK,
    read_pool: asyncpg.Pool | None = None,
) -> Deps:
    """The dependencies of one process, on its open pools (``read_pool``: reports' reads,
    from ``open_read_pool``)."""
    bookkeeping = bookkeeping_pool or pool
    app_metrics = app_metrics or Metrics()
    keys = settings.key_ring()

    def simulator(failure_mode: str) -> SimulatorConnector:
        return SimulatorConnector(
            bookkeeping,
            base_url=settings.base_url(),
            latency_ms=settings.simulator_latency_ms,
            request_latency_ms=settings.simulator_request_latency_ms,
            failure_mode=failure_mode if failure_mode in FAILURE_MODES else "none",  # type: ignore[arg-type]
            clock=clock,
        )

    registry = ConnectorRegistry(
        simulator(settings.simulator_failure_mode),
        keys,
        simulator_factory=simulator,
        timeout_seconds=settings.connector_timeout_seconds,
        breaker_threshold=settings.circuit_breaker_threshold,
        breaker_cooldown=settings.circuit_breaker_cooldown_seconds,
        clock=clock.monotonic,
        observer=app_metrics,
    )
    amqp_url = settings.amqp_url
    return Deps(
        pool=pool,
        settings=settings,
        connectors=registry,
        bookkeeping_pool=bookkeeping,
        keys=keys,
        resolver=SYSTEM_RESOLVER,
        broker=None if amqp_url is None else EventBroker(amqp_url.get_secret_value()),
        metrics=app_metrics,
        clock=clock,
        lookups=Lookups(clock),
        read_pool=read_pool,
        read_replica=None if read_pool is None else ReadReplica(read_pool, clock.monotonic),
    )


async def open_read_pool(settings: Settings) -> asyncpg.Pool | None:
    """The read replica's pool for reports when ``PAYGRID_READ_DATABASE_URL`` is set; the
    caller closes it. Unset: ``None``, and reports read from the primary."""
    url = settings.read_database_url
    if url is None:
        return None
    return await engine.create_read_pool(url.get_secret_value(), settings.read_db_pool_size)


def standard_registry(
    clock_steps: Sequence[ClockAdvanceStep] = CLOCK_ADVANCE_STEPS,
) -> JobRegistry:
    """The handlers and schedules of a paygrid worker; ``clock_steps`` are what a test
    clock's advance runs (tests pass their own)."""
    registry = JobRegistry()
    for kind, handler, every in (
        (maintenance.PURGE_IDEMPOTENCY_KEYS, maintenance.purge_idempotency_keys, 10 * 60),
        (maintenance.PURGE_JOB_HISTORY, maintenance.purge_job_history, 3600),
        (maintenance.PURGE_WEBHOOK_ATTEMPTS, maintenance.purge_webhook_attempts, 3600),
        (maintenance.PURGE_PROVIDER_EVENTS, maintenance.purge_provider_events, 3600),
    ):
        registry.register(kind, handler, retry=MAINTENANCE_RETRY)
        registry.schedule(kind, every=timedelta(seconds=every))
    # A delivery job schedules its own next attempt; this policy only covers a job that
    # crashed (e.g. the database went away mid-attempt): it is re-run, same attempt number.
    registry.register(delivery.DELIVER, delivery.deliver, retry=DELIVERY_CRASH_RETRY)
    registry.register(publisher.PUBLISH, publisher.publish, retry=publisher.PUBLISH_RETRY)
    registry.register(status_sync.SYNC, _status_sync, retry=MAINTENANCE_RETRY)
    registry.register(audit.SEAL, _seal_audit_log, retry=MAINTENANCE_RETRY)
    registry.schedule(audit.SEAL, every=timedelta(seconds=5))
    registry.schedule(status_sync.SYNC, every=timedelta(seconds=30))
    registry.register(provider_webhooks.APPLY, _apply_provider_event, retry=DELIVERY_CRASH_RETRY)
    registry.register(
        clock_advance.ADVANCE,
        clock_advance.handler(clock_steps),
        retry=clock_advance.ADVANCE_RETRY,
    )
    registry.register(clock_advance.RECOVER, clock_advance.recover, retry=MAINTENANCE_RETRY)
    registry.register(report_runs.RUN, report_runs.run, retry=report_runs.RUN_RETRY)
    registry.schedule(clock_advance.RECOVER, every=timedelta(seconds=60), queue=clock_advance.QUEUE)
    # Renewals of customers on the system clock (test clocks' run in their advance job).
    registry.register(
        subscription_schedule.SCHEDULE, subscription_schedule.job, retry=MAINTENANCE_RETRY
    )
    registry.schedule(
        subscription_schedule.SCHEDULE, every=timedelta(seconds=60), queue=clock_advance.QUEUE
    )
    # Dunning: due retries and expired authentications of customers on the system clock
    # (test clocks' run in their advance job), and retries after a new default method.
    registry.register(dunning_jobs.RETRIES, dunning_jobs.retries_job, retry=MAINTENANCE_RETRY)
    registry.schedule(dunning_jobs.RETRIES, every=timedelta(seconds=60), queue=clock_advance.QUEUE)
    registry.register(
        dunning_jobs.METHOD_UPDATED, dunning_jobs.method_updated_job, retry=DELIVERY_CRASH_RETRY
    )
    # Emails to customers: prepared from outbox events, sent with retries, and the daily
    # card expiry notices of customers on the system clock (test clocks': card_expiry.STEP).
    registry.register(emails.PREPARE, prepare.job, retry=prepare.PREPARE_RETRY)
    registry.register(emails.SEND, sending.job, retry=sending.SEND_RETRY)
    registry.register(emails.CARD_EXPIRY, card_expiry.job, retry=MAINTENANCE_RETRY)
    registry.schedule(emails.CARD_EXPIRY, every=timedelta(days=1), queue=emails.QUEUE)
    # Invoice PDFs, rendered and stored just after finalize (a download may beat it).
    registry.register(hosted_invoice_pdfs.RENDER_PDFS, _render_pdfs, retry=DELIVERY_CRASH_RETRY)
    # Settlements: an hourly pass queues one import per Stripe/Paystack account.
    registry.register(settlement_jobs.IMPORT_DUE, _settlements_due, retry=MAINTENANCE_RETRY)
    registry.schedule(settlement_jobs.IMPORT_DUE, every=settlement_jobs.IMPORT_EVERY)
    registry.register(settlement_jobs.IMPORT, _import_settlements, retry=DELIVERY_CRASH_RETRY)
    # Reconciliation: runs queued by the API, and each live account's daily run.
    registry.register(reconciliation_runs.RUN, _reconciliation_run, retry=DELIVERY_CRASH_RETRY)
    registry.register(reconciliation_jobs.DAILY_DUE, _reconciliation_due, retry=MAINTENANCE_RETRY)
    registry.schedule(reconciliation_jobs.DAILY_DUE, every=reconciliation_jobs.DAILY_EVERY)
    registry.register(reconciliation_jobs.DAILY, _reconciliation_daily, retry=DELIVERY_CRASH_RETRY)
    return registry


async def _status_sync(payload: dict[str, Any], context: JobContext) -> None:
    await status_sync.job(payload, context.deps)


async def _apply_provider_event(payload: dict[str, Any], context: JobContext) -> None:
    await provider_webhooks.apply_job(payload, context.deps)


async def _seal_audit_log(payload: dict[str, Any], context: JobContext) -> None:
    await audit.seal_job(payload, context.deps)


async def _settlements_due(payload: dict[str, Any], context: JobContext) -> None:
    await settlement_jobs.import_due(payload, context.deps)


async def _render_pdfs(payload: dict[str, Any], context: JobContext) -> None:
    await hosted_invoice_pdfs.render_pdfs(context.deps, payload["invoices"], render_pdf)


async def _import_settlements(payload: dict[str, Any], context: JobContext) -> None:
    await settlement_jobs.import_one(payload, context.deps)


async def _reconciliation_run(payload: dict[str, Any], context: JobContext) -> None:
    await reconciliation_jobs.run_job(payload, context.deps)


async def _reconciliation_due(payload: dict[str, Any], context: JobContext) -> None:
    await reconciliation_jobs.daily_due(payload, context.deps)


async def _reconciliation_daily(payload: dict[str, Any], context: JobContext) -> None:
    await reconciliation_jobs.daily(payload, context.deps)


class Background:
    """Everything a worker process runs, started and stopped together: the job worker (on
    the default, webhooks, broker and billing queues) and the outbox dispatcher that turns
    committed events into webhook deliveries and broker publishes.

    Both wake on the process's one LISTEN connection: ``notifications`` when the process
    has one (``serve``, whose lookup caches listen on it too), else one of its own."""

    def __init__(
        self,
        deps: Deps,
        settings: Settings,
        queues: tuple[str, ...] = QUEUES,
        notifications: Notifications | None = None,
    ) -> None:
        self._deps = deps
        self._owns_notifications = notifications is None
        self._notifications = notifications or Notifications(deps.pool, owner="worker")
        self.worker = Worker(
            deps,
            standard_registry(),
            WorkerConfig.from_settings(settings, queues),
            notifications=self._notifications,
        )
        self._dispatcher = EventDispatcher(
            deps, poll_seconds=settings.worker_poll_seconds, notifications=self._notifications
        )
        self._stopping = asyncio.Event()
        self._dispatching: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._owns_notifications:
            await self._notifications.start()
        await self.worker.start()
        self._dispatching = asyncio.create_task(self._dispatcher.run(self._stopping))

    @property
    def notifications(self) -> Notifications:
        """The LISTEN hub the worker and the dispatcher wake on."""
        return self._notifications

    def hold(self, retry_after: int | None) -> None:
        """A ``WriteFence`` observer: while the restore's fence is raised (``retry_after``
        set), the worker claims no job, so nothing is charged or delivered from a database
        being replaced, nor from the restored one before its re-sync with the providers."""
        self.worker.hold(retry_after is not None)

    def jobs_in_flight(self) -> int:
        """A ``WriteFence`` counter: the jobs still running (the restore waits for 0)."""
        return self.worker.in_flight

    async def stop(self) -> None:
        """Stop dispatching (a batch in progress commits or rolls back whole), stop the
        worker gracefully, then close the broker connection its publish jobs used."""
        self._stopping.set()
        if self._dispatching is not None:
            await self._dispatching
        await self.worker.stop()
        if self._owns_notifications:
            await self._notifications.stop()
        await delivery.close_sessions()
        if self._deps.broker is not None:
            try:
                await self._deps.broker.close()
            except Exception:  # shutting down anyway: the broker notices the socket close
                log.exception("broker.close_failed")
