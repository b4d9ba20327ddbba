"""The schedule's common work in batches, one statement per step for a whole batch of
subscriptions claimed ``FOR UPDATE SKIP LOCKED`` (one held elsewhere is left to
``schedule.process``): upcoming notices, period invoices (``ON CONFLICT (subscription_id,
period_start) DO NOTHING``) with lines and totals, finalized with the merchant's next
numbers (taken in the same transaction, consecutive, in invoice order), the subscriptions
moved to their next period, with the one-by-one pass's events. After the commit the
invoices are charged (``renewal_charges``). Trials, scheduled cancels, pauses and the rest
go one by one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from paygrid.db import events as events_db
from paygrid.db import invoices as invoices_db
from paygrid.db import renewals as renewals_db
from paygrid.db import subscriptions as subs_db
from paygrid.db.events import NewEventOf
from paygrid.db.executor import Connection
from paygrid.db.invoices import InvoiceLineRow, InvoiceRow
from paygrid.db.prices import PriceRow
from paygrid.db.renewals import Renewal
from paygrid.db.subscriptions import SubscriptionItemRow, SubscriptionRow
from paygrid.dependencies import Deps
from paygrid.domain import subscriptions as domain
from paygrid.domain.billing_dates import Period
from paygrid.domain.events import EventType
from paygrid.domain.invoices import BillingReason
from paygrid.domain.subscriptions import BILLING, SubscriptionAction, SubscriptionStatus
from paygrid.schemas.subscriptions import Subscription
from paygrid.services.billing.subscriptions import finalize_delays, invoicing, renewal_charges
from paygrid.services.billing.subscriptions.renewal_charges import event_of, invoice_event
from paygrid.services.billing.subscriptions.renewal_finalizing import finalize_batch
from paygrid.services.billing.subscriptions.upcoming import preview_of

# Subscriptions claimed by one transaction.
BATCH_SIZE: Final = 500
# invoice.upcoming this long before a renewal (Stripe's default; not for shorter periods).
UPCOMING_NOTICE: Final = timedelta(days=7)
S = SubscriptionStatus


class Due(StrEnum):
    """What a batch does for a subscription."""

    UPCOMING = "upcoming"
    RENEW = "renew"


def upcoming_due(sub: SubscriptionRow, now: datetime) -> bool:
    """``db.subscriptions.UPCOMING_DUE``, for a locked row."""
    return (
        sub.status in BILLING
        and not sub.cancel_at_period_end
        and sub.current_period_end - sub.current_period_start > UPCOMING_NOTICE
        and sub.upcoming_sent_for != sub.current_period_end
        and sub.current_period_end - UPCOMING_NOTICE <= now
    )


def due_in_batch(sub: SubscriptionRow, now: datetime) -> Due | None:
    """What ``schedule``'s one-by-one step would do first, when it is a plain renewal or an
    upcoming notice; None for anything else (left to that step)."""
    if sub.status not in BILLING:
        return None
    period_over = sub.current_period_end <= now
    if not period_over:
        return Due.UPCOMING if upcoming_due(sub, now) else None
    return None if sub.cancel_at_period_end else Due.RENEW


async def process_batches(deps: Deps, subscription_ids: Sequence[str]) -> set[str]:
    """Do in batches what can be done so; the subscriptions done with (nothing else due
    at ``deps.clock.now()``, nothing left to collect) are returned."""
    done: set[str] = set()
    for start in range(0, len(subscription_ids), BATCH_SIZE):
        done |= await _batch(deps, subscription_ids[start : start + BATCH_SIZE])
    return done


async def _batch(deps: Deps, subscription_ids: Sequence[str]) -> set[str]:
    now = deps.clock.now()
    delay = finalize_delays.default_delay(deps)
    base_url = deps.settings.base_url()  # of the finalized invoices' hosted pages
    async with deps.pool.acquire() as conn, conn.transaction():
        locked = await renewals_db.lock_batch(conn, subscription_ids)
        # Each merchant's finalize delay: its billing settings', else the default.
        delays = await finalize_delays.delays_of(conn, locked, delay)
        chosen = {sub.id: due for sub in locked if (due := due_in_batch(sub, now)) is not None}
        # Renewal drafts whose finalize delay is over (``invoicing.collect``'s finalize).
        waiting = [sub for sub in locked if sub.id not in chosen]
        matured = [
            invoice
            for made_by, ids in sorted(finalize_delays.cutoffs(waiting, delays, now).items())
            for invoice in await _finalize_matured(conn, ids, made_by, now, base_url)
        ]
        if not chosen and not matured:
            return set()
        # A renewal's invoice is finalized at once only without a finalize delay; else it
        # stays a draft until the pass after the delay (``_finalize_matured``).
        # (Per merchant: those without a delay are renewed apart, finalizing at once.)
        instant = {s.id for s in locked if delays[(s.merchant_id, s.livemode)] == timedelta(0)}
        noticed, renewed, opened = await _renew_chosen(
            conn, locked, {i: d for i, d in chosen.items() if i in instant}, now, base_url
        )
        later = await _renew_chosen(
            conn, locked, {i: d for i, d in chosen.items() if i not in instant}, now, None
        )
        noticed, renewed, opened = noticed + later[0], renewed + later[1], opened + later[2]
    subs = {sub.id: sub for sub in locked} | {sub.id: sub for sub in renewed}
    await renewal_charges.collect(deps, subs, [*matured, *opened])
    changed = [*noticed, *renewed, *(subs[i.subscription_id or ""] for i in matured)]
    ids = [sub.id for sub in changed]
    shortest = min(delays.values(), default=delay)  # a later draft is left to ``process``
    left = await renewals_db.with_invoices_to_collect(deps.pool, ids, now - shortest)
    return {sub.id for sub in changed if idle(sub, now) and sub.id not in left}


async def _renew_chosen(
    conn: Connection,
    locked: Sequence[SubscriptionRow],
    chosen: dict[str, Due],
    now: datetime,
    finalize: str | None,
) -> tuple[list[SubscriptionRow], list[SubscriptionRow], list[InvoiceRow]]:
    """The upcoming notices and renewals of ``chosen``: the subscriptions noticed, those
    renewed and the invoices opened (``finalize``: their pages' base URL; None: drafts)."""
    if not chosen:
        return [], [], []
    items = await subs_db.items_of(conn, list(chosen))
    prices = await renewals_db.prices_by_id(
        conn, list({i.price_id for rows in items.values() for i in rows})
    )
    noticing = [sub for sub in locked if chosen.get(sub.id) is Due.UPCOMING]
    renewing = [sub for sub in locked if chosen.get(sub.id) is Due.RENEW]
    noticed = await _notify_upcoming(conn, noticing, items, prices, now)
    renewed, opened = await _renew(conn, renewing, items, prices, now, finalize=finalize)
    return noticed, renewed, opened


def idle(sub: SubscriptionRow, now: datetime) -> bool:
    """Whether ``schedule``'s one-by-one step has nothing for ``sub`` at ``now``, and its
    sweep nothing either (a status that may trail a paid invoice is not idle)."""
    period_over = sub.current_period_end <= now
    trial_end = sub.trial_end if sub.status is S.TRIALING else None
    return not (
        (trial_end is not None and domain.trial_will_end_at(trial_end) <= now)
        or upcoming_due(sub, now)
        or (period_over and sub.status in BILLING)
        or (period_over and sub.cancel_at_period_end)
        or (sub.status is S.PAUSED and sub.resumes_at is not None and sub.resumes_at <= now)
        or sub.status in {S.INCOMPLETE, S.PAST_DUE, S.UNPAID}
    )


async def _finalize_matured(
    conn: Connection, sub_ids: Sequence[str], made_by: datetime, now: datetime, base_url: str
) -> list[InvoiceRow]:
    """Finalize the renewal drafts of the subscriptions made at or before ``made_by``,
    with ``invoice.finalized``: the invoices opened."""
    if not sub_ids:
        return []
    drafts = await renewals_db.lock_renewal_drafts(conn, sub_ids, made_by)
    if not drafts:
        return []
    opened = await finalize_batch(conn, drafts, now, base_url)
    lines = await invoices_db.lines_of(conn, [row.id for row in opened])
    events = [invoice_event(row, lines[row.id], EventType.INVOICE_FINALIZED) for row in opened]
    await events_db.insert_events(conn, events)
    return opened


async def _notify_upcoming(
    conn: Connection,
    subs: Sequence[SubscriptionRow],
    items: dict[str, list[SubscriptionItemRow]],
    prices: dict[str, PriceRow],
    now: datetime,
) -> list[SubscriptionRow]:
    """``invoice.upcoming`` for each (``schedule._upcoming_notice``), once per period."""
    if not subs:
        return []
    moved = await renewals_db.mark_upcoming_sent(conn, [s.id for s in subs], BILLING, now)
    pending = await renewals_db.pending_prorations(conn, [s.id for s in moved])
    events = []
    for sub in moved:
        invoice = preview_of(sub, items[sub.id], prices, pending[sub.id])
        snapshot = invoice.model_dump(mode="json")
        events.append(event_of(sub, EventType.INVOICE_UPCOMING, snapshot, now))
    await events_db.insert_events(conn, events)
    return moved


async def _renew(
    conn: Connection,
    subs: Sequence[SubscriptionRow],
    items: dict[str, list[SubscriptionItemRow]],
    prices: dict[str, PriceRow],
    now: datetime,
    *,
    finalize: str | None,
) -> tuple[list[SubscriptionRow], list[InvoiceRow]]:
    """``schedule._renew`` for each, then (``finalize``) the new invoices finalized: the
    subscriptions moved and the invoices opened."""
    if not subs:
        return [], []
    periods = {sub.id: invoicing.next_period(sub) for sub in subs}
    drafts = [
        invoicing.draft(sub, BillingReason.SUBSCRIPTION_CYCLE, periods[sub.id], now) for sub in subs
    ]
    inserted = await renewals_db.insert_period_invoices(conn, drafts)
    by_sub = {invoice.subscription_id or "": invoice for invoice in inserted}
    lines = await _lines(conn, subs, by_sub, items, prices, periods)
    created = await renewals_db.total_from_lines(conn, [i.id for i in inserted], now)
    plan = [
        Renewal(
            sub.id,
            domain.apply(sub.status, SubscriptionAction.RENEW),
            periods[sub.id].start,
            periods[sub.id].end,
            None if sub.id not in by_sub else by_sub[sub.id].id,
        )
        for sub in subs
    ]
    sources = domain.allowed_sources(SubscriptionAction.RENEW)
    moved = await renewals_db.renew(conn, plan, sources, now)
    opened = [] if finalize is None else await finalize_batch(conn, created, now, finalize)
    await events_db.insert_events(
        conn, _renewal_events(created, moved, opened, lines, items, prices)
    )
    return moved, opened


async def _lines(
    conn: Connection,
    subs: Sequence[SubscriptionRow],
    by_sub: dict[str, InvoiceRow],
    items: dict[str, list[SubscriptionItemRow]],
    prices: dict[str, PriceRow],
    periods: dict[str, Period],
) -> dict[str, list[InvoiceLineRow]]:
    """The lines of each new invoice (one per item, then the pending prorations claimed
    for it), written; by invoice id."""
    claimed = await renewals_db.claim_prorations(
        conn, {sub_id: invoice.id for sub_id, invoice in by_sub.items()}
    )
    lines: dict[str, list[InvoiceLineRow]] = {}
    for sub in subs:
        invoice = by_sub.get(sub.id)
        if invoice is None:  # the period is invoiced already
            continue
        own = invoicing.period_lines(invoice.id, sub, items[sub.id], prices, periods[sub.id])
        pending = claimed.get(sub.id, [])
        own += invoicing.proration_invoice_lines(invoice.id, sub, pending, len(own))
        lines[invoice.id] = own
    await renewals_db.insert_lines(conn, [line for own in lines.values() for line in own])
    return lines


def _renewal_events(
    created: Sequence[InvoiceRow],
    moved: Sequence[SubscriptionRow],
    opened: Sequence[InvoiceRow],
    lines: dict[str, list[InvoiceLineRow]],
    items: dict[str, list[SubscriptionItemRow]],
    prices: dict[str, PriceRow],
) -> list[NewEventOf]:
    """Per subscription, in the one-by-one pass's order: ``invoice.created``,
    ``customer.subscription.updated``, ``invoice.finalized``."""
    created_of = {row.subscription_id: row for row in created}
    opened_of = {row.subscription_id: row for row in opened}
    events = []
    for sub in moved:
        draft, final = created_of.get(sub.id), opened_of.get(sub.id)
        if draft is not None:
            events.append(invoice_event(draft, lines[draft.id], EventType.INVOICE_CREATED))
        view = Subscription.from_row(sub, items[sub.id], prices)
        snapshot = view.model_dump(mode="json")
        events.append(
            event_of(sub, EventType.CUSTOMER_SUBSCRIPTION_UPDATED, snapshot, sub.updated_at)
        )
        if final is not None:
            events.append(invoice_event(final, lines[final.id], EventType.INVOICE_FINALIZED))
    return events
