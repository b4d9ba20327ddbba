"""Periodic housekeeping jobs: expired idempotency keys, old finished jobs, gone workers, and
the retention of webhook attempts and provider webhook bodies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from paygrid.db import dashboard as dashboard_db
from paygrid.db import idempotency as idempotency_db
from paygrid.db import jobs as jobs_db
from paygrid.db import provider_events as provider_events_db
from paygrid.db import webhooks as webhooks_db
from paygrid.db import workers as workers_db
from paygrid.worker.registry import JobContext

log = structlog.get_logger("paygrid.worker")

PURGE_IDEMPOTENCY_KEYS = "maintenance.purge_idempotency_keys"
PURGE_JOB_HISTORY = "maintenance.purge_job_history"
PURGE_WEBHOOK_ATTEMPTS = "maintenance.purge_webhook_attempts"
PURGE_PROVIDER_EVENTS = "maintenance.purge_provider_events"
HISTORY_RETENTION = timedelta(days=7)


async def purge_idempotency_keys(_payload: dict[str, Any], context: JobContext) -> None:
    """Delete idempotency keys past ``PAYGRID_IDEMPOTENCY_TTL_HOURS``."""
    deps = context.deps
    purged = await idempotency_db.purge_expired(
        deps.pool, deps.settings.idempotency_ttl_hours, deps.clock.now()
    )
    if purged:
        log.info("idempotency_keys.purged", count=purged)


async def purge_job_history(_payload: dict[str, Any], context: JobContext) -> None:
    """Delete succeeded jobs and silent workers older than a week, so the tables stay small
    (dead jobs stay until an operator deals with them), and ended sign-in counters."""
    pool, now = context.deps.pool, context.deps.clock.now()
    jobs = await jobs_db.purge_succeeded(pool, HISTORY_RETENTION, now)
    workers = await workers_db.purge_gone(pool, HISTORY_RETENTION, now)
    # Sign-in counters whose window has ended count nothing any more.
    counters = await dashboard_db.purge_login_counters(pool, now)
    if jobs or workers or counters:
        log.info("job_history.purged", jobs=jobs, workers=workers, login_counters=counters)


async def purge_webhook_attempts(_payload: dict[str, Any], context: JobContext) -> None:
    """Delete finished deliveries' attempts past ``PAYGRID_WEBHOOK_ATTEMPT_RETENTION_DAYS``."""
    deps = context.deps
    purged = await webhooks_db.purge_attempts(
        deps.pool, deps.settings.webhook_attempt_retention_days, deps.clock.now()
    )
    if purged:
        log.info("webhook_attempts.purged", count=purged)


async def purge_provider_events(_payload: dict[str, Any], context: JobContext) -> None:
    """Delete applied and ignored provider webhooks (raw bodies) past
    ``PAYGRID_PROVIDER_EVENT_RETENTION_DAYS``; unmatched ones stay for an operator."""
    deps = context.deps
    purged = await provider_events_db.purge_processed(
        deps.pool, deps.settings.provider_event_retention_days, deps.clock.now()
    )
    if purged:
        log.info("provider_events.purged", count=purged)
