"""The outbox relay: turn committed events into deliveries.

Events are written in the same transaction as the change they describe, with
``dispatched_at`` unset. The dispatcher claims a batch (``FOR UPDATE SKIP LOCKED``, so any
number of dispatchers share the work), creates one delivery per subscribed endpoint plus the
job for its first attempt (and, when ``PAYGRID_AMQP_URL`` is set, one ``events.publish`` job
per event: see ``paygrid.broker.publisher``; one ``emails.prepare`` job per event that may
call for an email to a customer: see ``paygrid.services.emails.prepare``), and marks the
batch dispatched, all in one
transaction: an event is dispatched exactly once and never lost. It wakes on the
``paygrid_events`` NOTIFY that a trigger sends when events commit (listening again after a
database outage), a few milliseconds later so that one drain takes a burst of commits, and
polls as a fallback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Final

import structlog

from paygrid.broker import publisher
from paygrid.db import engine
from paygrid.db import jobs as jobs_db
from paygrid.db import webhooks as webhooks_db
from paygrid.db.listener import Notifications
from paygrid.db.webhooks import EndpointTarget, UndispatchedEvent
from paygrid.dependencies import Deps
from paygrid.domain import emails
from paygrid.ids import milliseconds_of, new_id
from paygrid.webhooks.delivery import DELIVER, QUEUE

CHANNEL: Final = "paygrid_events"
BATCH: Final = 500
# After a wake-up, wait this long before draining: commits arrive in bursts (each payment
# notifies), and one drain, one transaction, then takes them all instead of one each.
COALESCE_SECONDS: Final = 0.025
log = structlog.get_logger("paygrid.webhooks")


def subscribed(enabled_events: Collection[str], event_type: str) -> bool:
    return "*" in enabled_events or event_type in enabled_events


def plan_deliveries(
    events: Sequence[UndispatchedEvent], endpoints: Sequence[EndpointTarget]
) -> list[tuple[str, str, bool, str, str]]:
    """Pure: one delivery per (event, endpoint) of the same merchant and mode, where the
    endpoint subscribes to the event's type and already existed when the event was
    written. Written, not ``created``: an event of an object on a test clock is stamped
    with the clock's time (in the past or the future), and still goes to the endpoints
    that exist when it is written; the id's time part says when that was."""
    by_tenant: dict[tuple[str, bool], list[EndpointTarget]] = {}
    for endpoint in endpoints:
        by_tenant.setdefault((endpoint.merchant_id, endpoint.livemode), []).append(endpoint)
    planned = []
    for event in events:
        written = written_at(event)
        for endpoint in by_tenant.get((event.merchant_id, event.livemode), []):
            if endpoint.created_at <= written and subscribed(endpoint.enabled_events, event.type):
                planned.append(
                    (new_id("whd"), event.merchant_id, event.livemode, endpoint.id, event.id)
                )
    return planned


def written_at(event: UndispatchedEvent) -> datetime:
    """When the event was written: the end of its id's millisecond (an endpoint made in
    the same millisecond gets it), or ``created_at`` for an id that is not a ULID."""
    milliseconds = milliseconds_of(event.id)
    if milliseconds is None:
        return event.created_at
    return datetime.fromtimestamp((milliseconds + 1) / 1000, UTC)


async def dispatch_pending(deps: Deps, batch: int = BATCH) -> int:
    """Dispatch up to ``batch`` events; returns how many were dispatched."""
    async with deps.pool.acquire() as conn, conn.transaction():
        events = await webhooks_db.claim_undispatched_events(conn, batch)
        if not events:
            return 0
        tenants = sorted({(e.merchant_id, e.livemode) for e in events})
        endpoints = await webhooks_db.endpoint_targets(conn, tenants)
        now = deps.clock.now()
        await webhooks_db.insert_deliveries(
            conn, plan_deliveries(events, endpoints), job_kind=DELIVER, queue=QUEUE, now=now
        )
        if deps.settings.amqp_url is not None:
            await jobs_db.enqueue_many(
                conn,
                publisher.PUBLISH,
                [publisher.publish_payload(event.id) for event in events],
                queue=publisher.QUEUE,
                run_at=now,
            )
        # Emails to customers (services/emails/prepare.py): each event considered once.
        await jobs_db.enqueue_many(
            conn,
            emails.PREPARE,
            [{"event": event.id} for event in events if event.type in emails.EMAIL_EVENTS],
            queue=emails.QUEUE,
            run_at=now,
        )
    return len(events)


class EventDispatcher:
    """Runs ``dispatch_pending`` whenever events commit, until stopped."""

    def __init__(
        self,
        deps: Deps,
        *,
        poll_seconds: float = 1.0,
        batch: int = BATCH,
        coalesce_seconds: float = COALESCE_SECONDS,
        notifications: Notifications | None = None,
    ) -> None:
        """``notifications``: the process's LISTEN hub (its owner starts and stops it);
        without one, ``run`` holds a LISTEN connection of its own."""
        self.deps = deps
        self.notifications = notifications
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.coalesce_seconds = coalesce_seconds
        self._wake = asyncio.Event()
        self._unreachable = False

    def _notified(self, _payload: str) -> None:
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        hub = self.notifications or Notifications(self.deps.pool, owner="event_dispatcher")
        if hub is not self.notifications:
            await hub.start()
        # Once it listens again after a database outage, drain at once: events committed
        # meanwhile notified nobody.
        subscription = await hub.subscribe(CHANNEL, self._notified, on_listening=self._wake.set)
        try:
            while not stopping.is_set():
                self._wake.clear()  # before draining: a commit during the drain wakes it again
                await self._drain()
                await _first_of(self._wake, stopping, seconds=self.poll_seconds)
                if self._wake.is_set():  # delays a delivery by coalesce_seconds at most
                    await _first_of(stopping, seconds=self.coalesce_seconds)
        finally:
            await subscription.stop()
            if hub is not self.notifications:
                await hub.stop()

    async def _drain(self) -> None:
        try:
            dispatched = self.batch
            while dispatched == self.batch:  # a full batch means more may be waiting
                dispatched = await dispatch_pending(self.deps, self.batch)
        except Exception as error:  # log it and try again on the next wake or poll
            if not engine.unreachable(error):
                log.exception("webhooks.dispatch_failed")
            elif not self._unreachable:  # once per database outage
                log.warning("webhooks.dispatch_failed", error=type(error).__name__)
            self._unreachable = engine.unreachable(error)
        else:
            self._unreachable = False


async def _first_of(*events: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
