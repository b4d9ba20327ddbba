"""The job registry and the kinds every paygrid worker runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from paygrid.bootstrap import QUEUES, standard_registry
from paygrid.broker import publisher
from paygrid.db.jobs import DEFAULT_QUEUE
from paygrid.domain import emails
from paygrid.services import audit, maintenance, status_sync
from paygrid.services.billing import clock_advance, hosted_invoice_pdfs
from paygrid.services.billing.retries import jobs as dunning_jobs
from paygrid.services.billing.subscriptions import schedule as subscription_schedule
from paygrid.services.reconciliation import jobs as reconciliation_jobs
from paygrid.services.settlements import jobs as settlement_jobs
from paygrid.worker.registry import JobContext, JobRegistry, Schedule
from paygrid.worker.retry import DEFAULT_RETRY, RetryPolicy


async def _noop(_payload: dict[str, Any], _context: JobContext) -> None:
    return None


def test_register_and_look_up() -> None:
    registry = JobRegistry()
    policy = RetryPolicy((1.0,))
    registry.register("test.one", _noop, retry=policy)
    registry.register("test.two", _noop)
    one, two = registry.get("test.one"), registry.get("test.two")
    assert one is not None and one.handler is _noop and one.retry == policy
    assert two is not None and two.retry == DEFAULT_RETRY
    assert registry.get("test.unknown") is None


def test_a_kind_is_registered_once() -> None:
    registry = JobRegistry()
    registry.register("test.one", _noop)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("test.one", _noop)


def test_only_registered_kinds_are_scheduled_at_positive_intervals() -> None:
    registry = JobRegistry()
    with pytest.raises(ValueError, match="before scheduling"):
        registry.schedule("test.tick", every=timedelta(minutes=1))
    registry.register("test.tick", _noop)
    with pytest.raises(ValueError, match="positive"):
        registry.schedule("test.tick", every=timedelta(0))
    registry.schedule("test.tick", every=timedelta(minutes=1), queue="slow")
    assert registry.schedules() == [Schedule("test.tick", timedelta(minutes=1), "slow")]


def test_standard_registry_runs_housekeeping_periodically() -> None:
    registry = standard_registry()
    assert registry.schedules() == [
        Schedule(maintenance.PURGE_IDEMPOTENCY_KEYS, timedelta(minutes=10), DEFAULT_QUEUE),
        Schedule(maintenance.PURGE_JOB_HISTORY, timedelta(hours=1), DEFAULT_QUEUE),
        Schedule(maintenance.PURGE_WEBHOOK_ATTEMPTS, timedelta(hours=1), DEFAULT_QUEUE),
        Schedule(maintenance.PURGE_PROVIDER_EVENTS, timedelta(hours=1), DEFAULT_QUEUE),
        Schedule(audit.SEAL, timedelta(seconds=5), DEFAULT_QUEUE),
        Schedule(status_sync.SYNC, timedelta(seconds=30), DEFAULT_QUEUE),
        Schedule(clock_advance.RECOVER, timedelta(minutes=1), clock_advance.QUEUE),
        Schedule(subscription_schedule.SCHEDULE, timedelta(minutes=1), clock_advance.QUEUE),
        Schedule(dunning_jobs.RETRIES, timedelta(minutes=1), clock_advance.QUEUE),
        Schedule(emails.CARD_EXPIRY, timedelta(days=1), emails.QUEUE),
        Schedule(settlement_jobs.IMPORT_DUE, timedelta(hours=1), DEFAULT_QUEUE),
        Schedule(reconciliation_jobs.DAILY_DUE, reconciliation_jobs.DAILY_EVERY, DEFAULT_QUEUE),
    ]
    purge = registry.get(maintenance.PURGE_IDEMPOTENCY_KEYS)
    assert purge is not None and purge.handler is maintenance.purge_idempotency_keys


def test_workers_publish_events_to_the_broker_by_default() -> None:
    publish = standard_registry().get(publisher.PUBLISH)
    assert publish is not None and publish.handler is publisher.publish
    assert publish.retry == publisher.PUBLISH_RETRY
    # Retried for well over a day, so a broker outage short of that loses no event.
    assert sum(publish.retry.delays) > 36 * 3600
    assert publisher.QUEUE in QUEUES


def test_workers_send_emails_on_their_queue_by_default() -> None:
    for kind in (emails.PREPARE, emails.SEND, emails.CARD_EXPIRY):
        assert standard_registry().get(kind) is not None
    assert emails.QUEUE in QUEUES


def test_workers_store_invoice_pdfs_on_their_queue_by_default() -> None:
    render = standard_registry().get(hosted_invoice_pdfs.RENDER_PDFS)
    assert render is not None
    assert hosted_invoice_pdfs.QUEUE in QUEUES


def test_workers_advance_test_clocks_on_the_billing_queue_by_default() -> None:
    advance = standard_registry().get(clock_advance.ADVANCE)
    assert advance is not None and advance.retry == clock_advance.ADVANCE_RETRY
    assert clock_advance.QUEUE in QUEUES
