"""The schedule: what becomes due as a customer's clock moves (renewals, trial ends and
their notices, pauses' ends, cancels at the end of a period, unpaid first invoices'
expiry), run by the worker on the ``billing`` queue.

- Customers without a test clock: the periodic ``subscriptions.schedule`` job, on the
  worker's clock.
- Customers on a test clock: ``STEP``, a ``ClockAdvanceStep`` that the advance job runs at
  every moment a subscription of the clock's customers is due, in order, on a clock that
  reads that moment. An advance crossing N periods therefore renews N times, in order.

Each change is one transaction under the subscription's row lock, guarded by the
transition table; a period's invoice is inserted ``ON CONFLICT (subscription_id,
period_start) DO NOTHING``, so a period is invoiced at most once whatever runs at once.
Invoices are then finalized and charged (``invoicing.collect``, keyed by invoice and
attempt), after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import structlog

from paygrid.db import subscriptions as subs_db
from paygrid.db.executor import Connection
from paygrid.db.subscriptions import SubscriptionRow
from paygrid.dependencies import Deps
from paygrid.domain import subscriptions as domain
from paygrid.domain.errors import PaygridError
from paygrid.domain.events import EventType
from paygrid.domain.invoices import BillingReason
from paygrid.domain.subscriptions import BILLING, SubscriptionAction, SubscriptionStatus
from paygrid.services.billing import invoices
from paygrid.services.billing.subscriptions import invoicing, renewals
from paygrid.services.billing.subscriptions.lifecycle import end, move, resume_locked
from paygrid.services.billing.subscriptions.upcoming import preview
from paygrid.services.billing.subscriptions.views import emit, priced_items
from paygrid.services.snapshots import emit_object
from paygrid.worker.registry import JobContext

log = structlog.get_logger("paygrid.billing")

SCHEDULE: Final = "subscriptions.schedule"
BATCH: Final = 500
# Subscriptions processed at once by one job (a fraction of the pool's connections).
CONCURRENCY: Final = 8
# invoice.upcoming this long before a renewal (Stripe's default; not for shorter periods).
UPCOMING_NOTICE: Final = timedelta(days=7)
# Changes to one subscription in one pass before it yields to the others (a system clock
# that stood still for years catches up over several passes).
MAX_CHANGES_PER_PASS: Final = 1000
# A renewal invoice finalized but still uncharged this long after is one a crashed pass
# left: longer than a batch takes from its commit to its charges, so a pass does not race
# the batch still charging it (a race would charge once anyway: the same key).
UNCOLLECTED_GRACE: Final = timedelta(minutes=5)
A = SubscriptionAction
S = SubscriptionStatus


class SubscriptionStep:
    """The test clock advance's step for subscriptions (``ClockAdvanceStep``)."""

    name = "subscriptions.schedule"

    async def next_due(self, deps: Deps, clock_id: str) -> datetime | None:
        return await subs_db.next_due_on_clock(deps.pool, clock_id, finalize_delay(deps))

    async def run_until(self, deps: Deps, clock_id: str, moment: datetime) -> None:
        await process_all(deps, await subs_db.live_on_clock(deps.pool, clock_id))


STEP: Final = SubscriptionStep()


async def job(_payload: dict[str, Any], context: JobContext) -> None:
    """Periodic: the due subscriptions of customers on the system clock, and those whose
    renewal invoice a crashed pass left uncollected (``UNCOLLECTED_GRACE`` old)."""
    deps = context.deps
    now, delay = deps.clock.now(), finalize_delay(deps)
    due = await subs_db.due_on_system_clock(deps.pool, now, BATCH, delay)
    stranded = await subs_db.uncollected_on_system_clock(deps.pool, now - UNCOLLECTED_GRACE, BATCH)
    await process_all(deps, list(dict.fromkeys([*due, *stranded])))


def finalize_delay(deps: Deps) -> timedelta:
    """How long a renewal's invoice stays a draft (``PAYGRID_INVOICE_FINALIZE_DELAY_SECONDS``)."""
    return timedelta(seconds=deps.settings.invoice_finalize_delay_seconds)


async def process_all(deps: Deps, subscription_ids: Sequence[str]) -> None:
    """Renewals and upcoming notices in batches first (``renewals``), then ``process``
    each subscription the batches did not finish, ``CONCURRENCY`` at a time:
    subscriptions are independent (each locks its own row), and one's payment waits on
    its provider, not on the others."""
    done = await renewals.process_batches(deps, subscription_ids)
    subscription_ids = [i for i in subscription_ids if i not in done]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(subscription_id: str) -> None:
        async with gate:
            await process(deps, subscription_id)

    async with asyncio.TaskGroup() as group:
        for subscription_id in subscription_ids:
            group.create_task(one(subscription_id))


async def process(deps: Deps, subscription_id: str) -> None:
    """Apply everything due for the subscription at ``deps.clock.now()``, in order, then
    collect its invoices and let its status follow a paid latest invoice."""
    for _ in range(MAX_CHANGES_PER_PASS):
        async with deps.pool.acquire() as conn, conn.transaction():
            sub = await subs_db.lock_by_id(conn, subscription_id)
            if sub is None:
                return
            changed = await _step(conn, sub, deps.clock.now())
        if changed is None:
            break
        after, invoice_id = changed
        if after.status is S.INCOMPLETE_EXPIRED and after.latest_invoice_id is not None:
            await _void_quietly(deps, after, after.latest_invoice_id)
        if invoice_id is not None:
            await _collect(deps, after, invoice_id)
    await _sweep(deps, subscription_id)


async def _step(
    conn: Connection, sub: SubscriptionRow, now: datetime
) -> tuple[SubscriptionRow, str | None] | None:
    """The first due change of the locked ``sub`` at ``now``: the row after it and the
    invoice it made; None when nothing is due."""
    period_over = sub.current_period_end <= now
    if sub.status is S.TRIALING and sub.trial_end is not None:
        if not sub.trial_will_end_sent and domain.trial_will_end_at(sub.trial_end) <= now:
            return await _trial_notice(conn, sub, now), None
        if sub.trial_end <= now and not sub.cancel_at_period_end:
            return await _renew(conn, sub, now, A.END_TRIAL)
    if _upcoming_due(sub, now) and not period_over:
        return await _upcoming_notice(conn, sub, now), None
    if (
        period_over
        and sub.cancel_at_period_end
        and sub.status in domain.allowed_sources(A.PERIOD_END_CANCEL)
    ):
        return await end(conn, sub, A.PERIOD_END_CANCEL, now, ended_at=sub.current_period_end), None
    if period_over and sub.status in BILLING:
        return await _renew(conn, sub, now, A.RENEW)
    if sub.status is S.PAUSED and sub.resumes_at is not None and sub.resumes_at <= now:
        return await resume_locked(conn, sub, sub.resumes_at, anchor_now=True)
    if sub.status is S.INCOMPLETE and domain.incomplete_expires_at(sub.created_at) <= now:
        changes: dict[str, object] = {"ended_at": now}
        event = EventType.CUSTOMER_SUBSCRIPTION_UPDATED
        return await move(conn, sub, A.EXPIRE_INCOMPLETE, now, changes, event), None
    return None


def _upcoming_due(sub: SubscriptionRow, now: datetime) -> bool:
    """``db.subscriptions.UPCOMING_DUE``, for the locked row."""
    return (
        sub.status in BILLING
        and not sub.cancel_at_period_end
        and sub.current_period_end - sub.current_period_start > UPCOMING_NOTICE
        and sub.upcoming_sent_for != sub.current_period_end
        and sub.current_period_end - UPCOMING_NOTICE <= now
    )


async def _upcoming_notice(
    conn: Connection, sub: SubscriptionRow, now: datetime
) -> SubscriptionRow:
    """``invoice.upcoming``, once per period: the preview of the renewal's invoice."""
    changes: dict[str, object] = {"upcoming_sent_for": sub.current_period_end}
    changed = await subs_db.transition(conn, sub.id, BILLING, None, now, changes)
    assert changed is not None
    invoice = await preview(conn, changed)
    snapshot = invoice.model_dump(mode="json")
    await emit_object(conn, changed, EventType.INVOICE_UPCOMING, snapshot, created_at=now)
    return changed


async def _trial_notice(conn: Connection, sub: SubscriptionRow, now: datetime) -> SubscriptionRow:
    changed = await subs_db.transition(
        conn, sub.id, frozenset({S.TRIALING}), None, now, {"trial_will_end_sent": True}
    )
    assert changed is not None
    await emit(conn, changed, EventType.CUSTOMER_SUBSCRIPTION_TRIAL_WILL_END)
    return changed


async def _renew(
    conn: Connection, sub: SubscriptionRow, now: datetime, action: SubscriptionAction
) -> tuple[SubscriptionRow, str | None]:
    """Start the period that begins where the current one ends (the trial's end: a new
    period from the anchor) and invoice it, once."""
    period = invoicing.next_period(sub)
    items, prices = await priced_items(conn, sub)
    draft = invoicing.draft(sub, BillingReason.SUBSCRIPTION_CYCLE, period, now)
    lines = invoicing.period_lines(draft.id, sub, items, prices, period)
    invoice = await invoicing.make_invoice(conn, sub, draft, lines, now)
    changes: dict[str, object] = {
        "current_period_start": period.start,
        "current_period_end": period.end,
    }
    if invoice is not None:
        changes["latest_invoice_id"] = invoice.id
    moved = await move(conn, sub, action, now, changes, EventType.CUSTOMER_SUBSCRIPTION_UPDATED)
    return moved, None if invoice is None else invoice.id


async def _collect(deps: Deps, sub: SubscriptionRow, invoice_id: str) -> None:
    try:
        await invoicing.collect(deps, sub, invoice_id)
    except PaygridError as error:
        log.info("subscription.renewal_failed", subscription=sub.id, code=error.code)


async def _void_quietly(deps: Deps, sub: SubscriptionRow, invoice_id: str) -> None:
    with contextlib.suppress(PaygridError):  # paid or voided meanwhile
        await invoices.void_invoice(deps, invoicing.tenant_of(sub), invoice_id)


async def _sweep(deps: Deps, subscription_id: str) -> None:
    """Invoices a crashed pass left uncollected, and a status that trails its invoice
    (an ``incomplete`` or ``past_due`` subscription whose latest invoice was paid)."""
    for invoice_id in await subs_db.invoices_to_collect(deps.pool, subscription_id):
        current = await _current(deps, subscription_id)
        if current is not None:
            await _collect(deps, current, invoice_id)
    current = await _current(deps, subscription_id)
    behind = {S.INCOMPLETE, S.PAST_DUE, S.UNPAID}
    if (
        current is not None
        and current.status in behind
        and await subs_db.latest_invoice_paid(deps.pool, current)
    ):
        await invoicing.settle_payment(deps, subscription_id, paid=True)


async def _current(deps: Deps, subscription_id: str) -> SubscriptionRow | None:
    return await subs_db.get_by_id(deps.pool, subscription_id)
