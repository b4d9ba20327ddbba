"""The expiry of a waiting payment whose provider refused to cancel it (down, timing out):
the customer may still complete that payment at the provider, so the invoice never stops
waiting for it (``action_payment_id`` stays), and nothing charges the invoice again before
the payment is asked about once more (``waiting_payments.replaced_by_new_attempt``).

- The cancel is tried again ``CANCEL_RETRY_DELAY`` later (the expiry comes back then), each
  failure a line of the history (``requires_action``, code ``waiting_payment_cancel_failed``).
- After ``MAX_FAILED_CANCELS`` failures the invoice returns to its schedule (once), and the
  expiry backs off to ``CANCEL_RECHECK_DELAY``: every stop of a test clock's advance does
  work and moves on, so no clock is held at this payment. The payment is left
  ``requires_action`` to the status sync janitor (``services/status_sync.py``), which
  cancels such payments after ``PAYGRID_REQUIRES_ACTION_EXPIRY_HOURS`` once their provider
  answers; the next expiry then ends the wait (``returned_to_schedule``: without another
  step of the schedule). Until then each due retry asks the provider first: completed, the
  payment pays the invoice; canceled, the retry charges; still unresolved, the retry is
  put off without using a step of the schedule (``retry_invoice``,
  ``waiting_payment_unresolved``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import structlog

from paygrid.db import dunning as dunning_db
from paygrid.db import invoices as invoices_db
from paygrid.db.dunning import ScheduleRow
from paygrid.db.executor import Connection, Executor
from paygrid.db.invoices import InvoiceRow
from paygrid.dependencies import Deps
from paygrid.domain import dunning as domain
from paygrid.domain.billing_settings import DunningSettings
from paygrid.domain.dunning import Decision, DeclineClass, DunningOutcome
from paygrid.domain.invoices import InvoiceStatus
from paygrid.services.billing.dunning import decisions
from paygrid.services.billing.dunning.failures import retried
from paygrid.services.billing.settings import load_settings
from paygrid.services.context import Tenant

log = structlog.get_logger("paygrid.billing")

CANCEL_FAILED = "waiting_payment_cancel_failed"
_MESSAGE = "The payment's provider could not cancel it; it is asked again later."


async def returned_to_schedule(conn: Executor, invoice_id: str, payment_id: str) -> bool:
    """Whether the invoice went back to its schedule while ``payment_id`` could not be
    canceled (its end then only ends the wait)."""
    fails = await dunning_db.failed_cancels(conn, invoice_id, payment_id, CANCEL_FAILED)
    return fails >= domain.MAX_FAILED_CANCELS


async def cancel_refused(deps: Deps, tenant: Tenant, invoice_id: str, payment_id: str) -> None:
    """The expiry could not cancel ``payment_id``: ask again later; after
    ``MAX_FAILED_CANCELS`` failures, the invoice back on its schedule and fewer asks."""
    settings = (await load_settings(deps, tenant)).dunning
    now = deps.clock.now()
    async with deps.pool.acquire() as conn, conn.transaction():
        locked = await invoices_db.lock_invoice(conn, invoice_id, frozenset(InvoiceStatus))
        current = await dunning_db.schedule_of(conn, invoice_id)
        if locked is None or current is None or current.action_payment_id != payment_id:
            return  # settled by another run meanwhile
        tries = await dunning_db.failed_cancels(conn, invoice_id, payment_id, CANCEL_FAILED) + 1
        if tries > domain.MAX_FAILED_CANCELS:  # recorded and rescheduled already
            later = now + domain.CANCEL_RECHECK_DELAY
            await dunning_db.put_off_action(conn, invoice_id, payment_id, later)
            return
        await _record(conn, settings, locked, current, tries, now)
    log.info("invoice.action_cancel_failed", invoice=invoice_id, payment=payment_id, tries=tries)


async def _record(
    conn: Connection,
    settings: DunningSettings,
    locked: InvoiceRow,
    current: ScheduleRow,
    tries: int,
    now: datetime,
) -> None:
    """The failure's line; the last one puts an open invoice back on its schedule."""
    payment_id = current.action_payment_id or ""
    state = decisions.state_of(current)
    last = tries == domain.MAX_FAILED_CANCELS
    again = now + (domain.CANCEL_RECHECK_DELAY if last else domain.CANCEL_RETRY_DELAY)
    decision = Decision(state, current.next_payment_attempt, action_expires_at=again)
    back = last and locked.status is InvoiceStatus.OPEN and retried(locked)
    back = back and current.next_payment_attempt is None
    if back:
        started = (current.action_expires_at or now) - timedelta(hours=settings.action_expiry_hours)
        decision = domain.after_action_expired(
            settings, state, failed_at=min(started, now), expired_at=now
        )
    line = decisions.log_row(
        locked,
        attempt=None,
        outcome=DunningOutcome.REQUIRES_ACTION,
        payment_id=payment_id,
        method=await dunning_db.payment_method_of(conn, payment_id),
        code=CANCEL_FAILED,
        decline_code=None,
        classification=DeclineClass.ACTION,
        message=_MESSAGE,
        decision=decision,
        now=now,
    )
    if not back:
        await dunning_db.put_off_action(conn, locked.id, payment_id, again)
        await dunning_db.insert_attempt(conn, line)
        return
    after = replace(
        decisions.schedule_after(current, decision, action_payment_id=None, now=now),
        action_payment_id=payment_id,
        action_expires_at=again,
    )
    await decisions.write_and_exhaust(conn, settings, after, line, decision, now)
