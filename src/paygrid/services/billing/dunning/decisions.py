"""Writing what ``paygrid.domain.dunning`` decided about an invoice: its schedule's columns,
the attempt's line in the history, and (when the schedule is over) ``on_exhausted``, all in
the caller's transaction, after the invoice's row (locked by the caller's update)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from paygrid.db import dunning as dunning_db
from paygrid.db.dunning import AttemptLogRow, ScheduleRow
from paygrid.db.executor import Connection
from paygrid.db.invoices import InvoiceRow
from paygrid.domain import dunning as domain
from paygrid.domain.billing_settings import DunningSettings
from paygrid.domain.dunning import Decision, DeclineClass, DunningOutcome, DunningState
from paygrid.ids import new_id
from paygrid.services.billing.dunning.exhaustion import apply_on_exhausted
from paygrid.services.billing.dunning.waiting_payments import ABANDONED_MESSAGE


def state_of(schedule: ScheduleRow) -> DunningState:
    return DunningState(
        position=schedule.retry_position,
        blocked_methods=frozenset(schedule.hard_declined_methods),
        pinned_method=schedule.retry_payment_method_id,
    )


def schedule_after(
    schedule: ScheduleRow, decision: Decision, *, action_payment_id: str | None, now: datetime
) -> ScheduleRow:
    """The invoice's schedule columns as ``decision`` leaves them."""
    state = decision.state
    waiting = decision.action_expires_at is not None and action_payment_id is not None
    return replace(
        schedule,
        next_payment_attempt=decision.next_attempt_at,
        retry_position=state.position,
        hard_declined_methods=sorted(state.blocked_methods),
        retry_payment_method_id=state.pinned_method,
        action_payment_id=action_payment_id if waiting else None,
        action_expires_at=decision.action_expires_at if waiting else None,
        retries_exhausted_at=now if decision.exhausted else schedule.retries_exhausted_at,
    )


def log_row(
    invoice: InvoiceRow,
    *,
    attempt: int | None,
    outcome: DunningOutcome,
    payment_id: str | None,
    method: str | None,
    code: str | None,
    decline_code: str | None,
    classification: DeclineClass | None,
    message: str | None,
    decision: Decision,
    now: datetime,
) -> AttemptLogRow:
    return AttemptLogRow(
        id=new_id("dunatt"),
        merchant_id=invoice.merchant_id,
        livemode=invoice.livemode,
        invoice_id=invoice.id,
        attempt=attempt,
        outcome=outcome,
        payment_id=payment_id,
        payment_method_id=method,
        code=code,
        decline_code=decline_code,
        classification=classification,
        message=message,
        next_payment_attempt=decision.next_attempt_at,
        exhausted=decision.exhausted,
        created_at=now,
    )


async def write(
    conn: Connection,
    schedule: ScheduleRow,
    log: AttemptLogRow,
    *,
    classification: DeclineClass | None,
    now: datetime,
) -> InvoiceRow | None:
    """Save the schedule and the history's line: the invoice afterwards, None when it is no
    longer ``open`` (nothing is written then)."""
    saved = await dunning_db.save_schedule(conn, schedule, classification=classification, now=now)
    if saved is None:
        return None
    await dunning_db.insert_attempt(conn, log)
    return saved


async def write_and_exhaust(
    conn: Connection,
    settings: DunningSettings,
    schedule: ScheduleRow,
    log: AttemptLogRow,
    decision: Decision,
    now: datetime,
) -> InvoiceRow | None:
    """``write``, then ``on_exhausted`` when the schedule is over."""
    saved = await write(conn, schedule, log, classification=log.classification, now=now)
    if saved is not None and decision.exhausted:
        return await apply_on_exhausted(conn, settings, saved, now)
    return saved


async def action_expired(
    conn: Connection,
    settings: DunningSettings,
    invoice: InvoiceRow,
    schedule: ScheduleRow,
    payment_id: str,
    now: datetime,
) -> tuple[ScheduleRow, AttemptLogRow, Decision]:
    """What an authentication left unanswered decides (its expiry, or the hosted page's
    challenge abandoned): the attempt counts as a failure made when the challenge began,
    ``action_expiry_hours`` before it expires, and its line in the history says so."""
    began = (schedule.action_expires_at or now) - timedelta(hours=settings.action_expiry_hours)
    decision = domain.after_action_expired(
        settings, state_of(schedule), failed_at=min(began, now), expired_at=now
    )
    line = log_row(
        invoice,
        attempt=invoice.attempt_count,
        outcome=DunningOutcome.ACTION_EXPIRED,
        payment_id=payment_id,
        method=await dunning_db.payment_method_of(conn, payment_id),
        code="authentication_required",
        decline_code=None,
        classification=DeclineClass.ACTION,
        message=ABANDONED_MESSAGE,
        decision=decision,
        now=now,
    )
    return schedule_after(schedule, decision, action_payment_id=None, now=now), line, decision
