"""Every job kind paygrid runs, in the registry each worker starts with."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from paygrid.broker import publisher
from paygrid.services import audit, provider_webhooks, status_sync
from paygrid.webhooks import delivery
from paygrid.worker import maintenance
from paygrid.worker.registry import JobContext, JobRegistry
from paygrid.worker.retry import RetryPolicy

# A failed housekeeping run is tried once more a minute later, then waits for its next period.
MAINTENANCE_RETRY = RetryPolicy((60.0,))
DELIVERY_CRASH_RETRY = RetryPolicy((1.0, 5.0, 30.0, 300.0))


def standard_registry() -> JobRegistry:
    """The handlers and schedules of a paygrid worker."""
    registry = JobRegistry()
    registry.register(
        maintenance.PURGE_IDEMPOTENCY_KEYS,
        maintenance.purge_idempotency_keys,
        retry=MAINTENANCE_RETRY,
    )
    registry.schedule(maintenance.PURGE_IDEMPOTENCY_KEYS, every=timedelta(minutes=10))
    registry.register(
        maintenance.PURGE_JOB_HISTORY, maintenance.purge_job_history, retry=MAINTENANCE_RETRY
    )
    registry.schedule(maintenance.PURGE_JOB_HISTORY, every=timedelta(hours=1))
    registry.register(
        maintenance.PURGE_WEBHOOK_ATTEMPTS,
        maintenance.purge_webhook_attempts,
        retry=MAINTENANCE_RETRY,
    )
    registry.schedule(maintenance.PURGE_WEBHOOK_ATTEMPTS, every=timedelta(hours=1))
    registry.register(
        maintenance.PURGE_PROVIDER_EVENTS,
        maintenance.purge_provider_events,
        retry=MAINTENANCE_RETRY,
    )
    registry.schedule(maintenance.PURGE_PROVIDER_EVENTS, every=timedelta(hours=1))
    # A delivery job schedules its own next attempt; this policy only covers a job that
    # crashed (e.g. the database went away mid-attempt): it is re-run, same attempt number.
    registry.register(delivery.DELIVER, delivery.deliver, retry=DELIVERY_CRASH_RETRY)
    registry.register(publisher.PUBLISH, publisher.publish, retry=publisher.PUBLISH_RETRY)
    registry.register(status_sync.SYNC, _status_sync, retry=MAINTENANCE_RETRY)
    registry.register(audit.SEAL, _seal_audit_log, retry=MAINTENANCE_RETRY)
    registry.schedule(audit.SEAL, every=timedelta(seconds=5))
    registry.schedule(status_sync.SYNC, every=timedelta(seconds=30))
    registry.register(provider_webhooks.APPLY, _apply_provider_event, retry=DELIVERY_CRASH_RETRY)
    return registry


async def _status_sync(payload: dict[str, Any], context: JobContext) -> None:
    await status_sync.job(payload, context.deps)


async def _apply_provider_event(payload: dict[str, Any], context: JobContext) -> None:
    await provider_webhooks.apply_job(payload, context.deps)


async def _seal_audit_log(payload: dict[str, Any], context: JobContext) -> None:
    await audit.seal_job(payload, context.deps)
