"""Pause, resume and cancel (now, or at the end of the period), from the API and from the
schedule, each decided by the transition table and guarded in SQL."""

from __future__ import annotations

import contextlib
from datetime import datetime

from paygrid.db import subscriptions as subs_db
from paygrid.db.executor import Connection
from paygrid.db.subscriptions import SubscriptionRow
from paygrid.dependencies import Deps
from paygrid.domain import subscriptions as domain
from paygrid.domain.billing_dates import Cycle, Period, boundary, period_containing
from paygrid.domain.errors import InvalidRequest, PaygridError
from paygrid.domain.events import EventType
from paygrid.domain.invoices import BillingReason
from paygrid.domain.subscriptions import SubscriptionAction
from paygrid.schemas.subscriptions import (
    Subscription,
    SubscriptionCancel,
    SubscriptionPause,
    SubscriptionResume,
)
from paygrid.services.billing.clocks import deps_for_customer
from paygrid.services.billing.subscriptions import invoicing
from paygrid.services.billing.subscriptions.views import emit, load, priced_items, view_of
from paygrid.services.context import Tenant

A = SubscriptionAction


async def move(
    conn: Connection,
    sub: SubscriptionRow,
    action: SubscriptionAction,
    now: datetime,
    changes: dict[str, object],
    event: EventType,
) -> SubscriptionRow:
    """Apply ``action`` to the locked ``sub`` (409 if its status does not allow it), write
    it guarded by the action's sources, and write ``event``."""
    target = domain.apply(sub.status, action)
    moved = await subs_db.transition(
        conn, sub.id, domain.allowed_sources(action), target, now, changes
    )
    if moved is None:  # cannot happen under the row lock; a guard all the same
        raise domain.invalid_state(sub.status, action)
    await emit(conn, moved, event)
    return moved


async def pause_subscription(
    deps: Deps, tenant: Tenant, subscription_id: str, params: SubscriptionPause
) -> Subscription:
    """``trialing`` or ``active`` → ``paused``; no invoices until it resumes (at
    ``resumes_at``, if given, with a new period from then)."""
    deps = await _customer_deps(deps, tenant, subscription_id)
    async with deps.pool.acquire() as conn, conn.transaction():
        sub = await load(conn, tenant, subscription_id, lock=True)
        now = deps.clock.now()
        resumes_at = None
        if params.resumes_at is not None:
            resumes_at = datetime.fromtimestamp(params.resumes_at, now.tzinfo)
            if resumes_at <= now:
                raise InvalidRequest("resumes_at must be after now.", param="resumes_at")
        changes: dict[str, object] = {"paused_at": now, "resumes_at": resumes_at}
        moved = await move(conn, sub, A.PAUSE, now, changes, EventType.CUSTOMER_SUBSCRIPTION_PAUSED)
        return await view_of(conn, moved)


async def resume_subscription(
    deps: Deps, tenant: Tenant, subscription_id: str, params: SubscriptionResume
) -> Subscription:
    """``paused`` → ``active``. ``billing_cycle_anchor: now`` starts a period now and
    invoices it (charged as renewals are); ``unchanged`` keeps the anchor."""
    deps = await _customer_deps(deps, tenant, subscription_id)
    async with deps.pool.acquire() as conn, conn.transaction():
        sub = await load(conn, tenant, subscription_id, lock=True)
        moved, invoice_id = await resume_locked(
            conn, sub, deps.clock.now(), anchor_now=params.billing_cycle_anchor == "now"
        )
    if invoice_id is not None:
        await collect_quietly(deps, moved, invoice_id)
    return await view_of(deps.pool, await load(deps.pool, tenant, subscription_id))


async def resume_locked(
    conn: Connection, sub: SubscriptionRow, now: datetime, *, anchor_now: bool
) -> tuple[SubscriptionRow, str | None]:
    """Resume the locked ``sub``; the id of the invoice of the new period, if one was made."""
    domain.apply(sub.status, A.RESUME)
    anchor = now if anchor_now else sub.billing_cycle_anchor
    cycle = Cycle(anchor, sub.interval, sub.interval_count)
    period = Period(now, boundary(cycle, 1)) if anchor_now else period_containing(cycle, now)
    changes: dict[str, object] = {
        "billing_cycle_anchor": anchor,
        "current_period_start": period.start,
        "current_period_end": period.end,
        "paused_at": None,
        "resumes_at": None,
    }
    invoice_id = None
    if anchor_now:
        items, prices = await priced_items(conn, sub)
        draft = invoicing.draft(sub, BillingReason.SUBSCRIPTION_CYCLE, period, now)
        lines = invoicing.period_lines(draft.id, sub, items, prices, period)
        invoice = await invoicing.make_invoice(conn, sub, draft, lines, now)
        if invoice is not None:
            invoice_id = changes["latest_invoice_id"] = invoice.id
    moved = await move(conn, sub, A.RESUME, now, changes, EventType.CUSTOMER_SUBSCRIPTION_RESUMED)
    return moved, invoice_id


async def cancel_subscription(
    deps: Deps, tenant: Tenant, subscription_id: str, params: SubscriptionCancel
) -> Subscription:
    """Cancel now (``canceled``, ``customer.subscription.deleted``), or with
    ``at_period_end`` when the current period ends (``cancel_at_period_end: true``)."""
    deps = await _customer_deps(deps, tenant, subscription_id)
    async with deps.pool.acquire() as conn, conn.transaction():
        sub = await load(conn, tenant, subscription_id, lock=True)
        now = deps.clock.now()
        if params.at_period_end:
            moved = await set_cancel_at_period_end(conn, sub, True, now)
        else:
            moved = await end(conn, sub, A.CANCEL, now, ended_at=now)
        return await view_of(conn, moved)


async def set_cancel_at_period_end(
    conn: Connection, sub: SubscriptionRow, value: bool, now: datetime
) -> SubscriptionRow:
    action = A.SCHEDULE_CANCEL if value else A.UNSCHEDULE_CANCEL
    changes: dict[str, object] = {"cancel_at_period_end": value}
    return await move(conn, sub, action, now, changes, EventType.CUSTOMER_SUBSCRIPTION_UPDATED)


async def end(
    conn: Connection,
    sub: SubscriptionRow,
    action: SubscriptionAction,
    now: datetime,
    *,
    ended_at: datetime,
) -> SubscriptionRow:
    """``canceled``: now, or (``PERIOD_END_CANCEL``) at the end of its period."""
    changes: dict[str, object] = {
        "canceled_at": sub.canceled_at or now,
        "ended_at": ended_at,
        "resumes_at": None,
    }
    return await move(conn, sub, action, now, changes, EventType.CUSTOMER_SUBSCRIPTION_DELETED)


async def collect_quietly(deps: Deps, sub: SubscriptionRow, invoice_id: str) -> None:
    """Collect an invoice; a failed payment is on the invoice and moved the subscription
    (``past_due``), which is the answer, not an error."""
    with contextlib.suppress(PaygridError):
        await invoicing.collect(deps, sub, invoice_id)


async def _customer_deps(deps: Deps, tenant: Tenant, subscription_id: str) -> Deps:
    row = await load(deps.pool, tenant, subscription_id)
    return await deps_for_customer(deps, row.customer_id)
