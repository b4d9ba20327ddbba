"""Retrying an invoice's payment: the due retry of its schedule, or at once because its
customer changed its default method. The attempt is ``/pay``'s own
(``invoice_payments.attempt_payment``, key ``invoice:{id}:attempt:{n}``), under the
invoice's payment lock, so a crash and a rerun resume the same payment and a concurrent
``/pay``, ``/void`` or retry takes its turn instead of charging again.

A retry that may not charge (the method reached the card network cap, or no method is left
that a hard decline did not stop) is skipped: the schedule moves on to its next step. The
cap's count and the attempt are serialized per method (``dunning_db.hold_method_lock``,
after the invoice's lock). A retry blocked by an earlier payment that still waits for the
customer and could not be canceled is put off (``waiting_payment_unresolved``) without
using a step."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from enum import StrEnum

import structlog

from paygrid.db import dunning as dunning_db
from paygrid.db import invoices as invoices_db
from paygrid.db import payments as payments_db
from paygrid.db.dunning import ScheduleRow
from paygrid.db.executor import Connection
from paygrid.db.invoices import InvoiceRow
from paygrid.dependencies import Deps
from paygrid.domain import dunning as domain
from paygrid.domain import invoices as invoices_domain
from paygrid.domain.billing_settings import DunningSettings
from paygrid.domain.dunning import DunningOutcome
from paygrid.domain.errors import CardError, PaygridError
from paygrid.domain.invoices import InvoiceInvalidState, InvoiceStatus
from paygrid.services.billing import invoice_outcomes, invoice_payments
from paygrid.services.billing.clocks import deps_for_customer
from paygrid.services.billing.dunning import decisions
from paygrid.services.billing.dunning.failures import retried
from paygrid.services.billing.dunning.methods import retry_method, saved_to_customer
from paygrid.services.billing.dunning.page_challenges import before_new_attempt
from paygrid.services.billing.settings import load_settings
from paygrid.services.context import Tenant

log = structlog.get_logger("paygrid.billing")


class Because(StrEnum):
    SCHEDULE = "schedule"  # the schedule's next attempt is due
    METHOD_UPDATE = "method_update"  # the customer set a new default method


async def retry_invoice(deps: Deps, invoice_id: str, *, because: Because) -> None:
    """Retry the invoice's payment if it is still due (``SCHEDULE``) or still open and
    failed (``METHOD_UPDATE``), on its customer's clock."""
    row = await dunning_db.invoice_by_id(deps.pool, invoice_id)
    if row is None or row.status is not InvoiceStatus.OPEN or not retried(row):
        return
    deps = await deps_for_customer(deps, row.customer_id)
    tenant = Tenant(row.merchant_id, row.livemode)
    settings = (await load_settings(deps, tenant)).dunning
    if because is Because.METHOD_UPDATE and not settings.retry_on_method_update:
        return
    async with deps.pool.acquire() as holder, holder.transaction():
        # The invoice's payment lock, as /pay holds it; one held by a /pay: its turn.
        if not await invoices_db.try_payment_lock(holder, invoice_id):
            return
        await _retry_locked(deps, holder, tenant, settings, invoice_id, because)


async def _retry_locked(
    deps: Deps,
    holder: Connection,
    tenant: Tenant,
    settings: DunningSettings,
    invoice_id: str,
    because: Because,
) -> None:
    now = deps.clock.now()
    row = await invoices_db.get_invoice(deps.pool, tenant.merchant_id, tenant.livemode, invoice_id)
    schedule = await dunning_db.schedule_of(deps.pool, invoice_id)
    if row is None or schedule is None or row.status is not InvoiceStatus.OPEN:
        return
    if because is Because.SCHEDULE and not _due(schedule, now):
        return
    # A challenge the customer left on the hosted invoice page ends (counted failed), so
    # this attempt has its own key rather than resuming that on-session payment.
    row = await before_new_attempt(deps, tenant, row)
    schedule = await dunning_db.schedule_of(deps.pool, invoice_id)
    if schedule is None or row.status is not InvoiceStatus.OPEN:
        return
    started = await _started(deps, row)
    if started is not None:
        # A run that crashed made this attempt's payment: resume it (same key, same
        # method), whatever the cap says now; it is not another attempt.
        refused = await _charge(deps, tenant, row, started)
        if isinstance(refused, InvoiceInvalidState) and because is Because.SCHEDULE:
            await _skip(deps, settings, row, started, _UNRESOLVED, now)
        return
    method = await retry_method(
        deps.pool, row, schedule, customers_default=because is Because.METHOD_UPDATE
    )
    state = decisions.state_of(schedule)
    if method is None or not domain.may_charge(settings, state, method):
        if because is Because.SCHEDULE:
            await _skip(deps, settings, row, method, "payment_method_unusable", now)
        return
    # The count and the attempt it allows, one retry of this method at a time (across
    # invoices and workers), so concurrent retries cannot exceed the cap by one. The
    # holder keeps the lock (after the invoice's) until the attempt is written.
    await dunning_db.hold_method_lock(holder, method)
    since = now - domain.cap_window(settings)
    made = await dunning_db.method_payments_between(deps.pool, method, since, now)
    if not domain.within_cap(settings, made):
        if because is Because.SCHEDULE:
            await _skip(deps, settings, row, method, "attempt_cap_reached", now)
        return
    # A new attempt replaces the one waiting for the customer (nothing stays pending), or
    # settles with it if the customer completed it (``attempt_payment``).
    refused = await _charge(deps, tenant, row, method)
    if refused is not None and because is Because.SCHEDULE:
        # Refused before any card said anything: an earlier payment still waits for the
        # customer and its provider could not cancel it (409, ``replaced_by_new_attempt``),
        # or the method cannot be charged (detached, ...). The schedule moves on for the
        # method; for the waiting payment it keeps its step and comes back later.
        unresolved = isinstance(refused, InvoiceInvalidState)
        reason = _UNRESOLVED if unresolved else "payment_method_unusable"
        await _skip(deps, settings, row, method, reason, now)


async def _started(deps: Deps, row: InvoiceRow) -> str | None:
    """The method of the payment this attempt already made, if one was made."""
    key = invoices_domain.attempt_key(row.id, row.attempt_count + 1)
    payment = await payments_db.get_by_idempotency_key(
        deps.pool, row.merchant_id, row.livemode, key
    )
    return None if payment is None else await dunning_db.payment_method_of(deps.pool, payment.id)


def _due(schedule: ScheduleRow, now: datetime) -> bool:
    return schedule.next_payment_attempt is not None and schedule.next_payment_attempt <= now


async def _charge(deps: Deps, tenant: Tenant, row: InvoiceRow, method: str) -> PaygridError | None:
    """The attempt, settled as ``/pay`` settles it: paid (and the subscription ``active``),
    or failed and the next step planned (``failures.follow_failed_attempt``). The error
    when the payment core refused the attempt before a card answered."""
    off_session = await saved_to_customer(deps.pool, row, method)
    try:
        payment = await invoice_payments.attempt_payment(
            deps, tenant, row, method, off_session=off_session
        )
        await invoice_outcomes.settle_attempt(deps, tenant, row, payment)
    except CardError as error:  # the failure is on the invoice and its schedule
        log.info("invoice.retry_failed", invoice=row.id, code=error.code)
    except PaygridError as error:
        log.warning("invoice.retry_refused", invoice=row.id, code=error.code)
        return error
    return None


async def _skip(
    deps: Deps,
    settings: DunningSettings,
    row: InvoiceRow,
    method: str | None,
    reason: str,
    now: datetime,
) -> None:
    """A due retry not made: the schedule's next step (or its end), with the skip in the
    attempt history. ``_UNRESOLVED`` uses no step: the retry is only put off. A payment
    the invoice waits for stays tracked (its columns are read again under the lock)."""
    async with deps.pool.acquire() as conn, conn.transaction():
        locked = await invoices_db.lock_invoice(conn, row.id, frozenset({InvoiceStatus.OPEN}))
        current = await dunning_db.schedule_of(conn, row.id)
        if locked is None or current is None:
            return
        state = decisions.state_of(current)
        if reason == _UNRESOLVED:
            decision = domain.after_unresolved_wait(state, at=now)
        else:
            decision = domain.after_skip(settings, state, at=now)
        after = replace(
            decisions.schedule_after(current, decision, action_payment_id=None, now=now),
            action_payment_id=current.action_payment_id,
            action_expires_at=current.action_expires_at,
        )
        line = decisions.log_row(
            locked,
            attempt=None,
            outcome=DunningOutcome.SKIPPED,
            payment_id=current.action_payment_id if reason == _UNRESOLVED else None,
            method=method,
            code=reason,
            decline_code=None,
            classification=None,
            message=_SKIPPED[reason],
            decision=decision,
            now=now,
        )
        await decisions.write_and_exhaust(conn, settings, after, line, decision, now)
    log.info("invoice.retry_skipped", invoice=row.id, reason=reason)


_UNRESOLVED = "waiting_payment_unresolved"
_SKIPPED = {
    _UNRESOLVED: "An earlier payment still waits for the customer's authentication and its"
    " provider could not cancel it; the retry is put off.",
    "attempt_cap_reached": "The card network cap on attempts per payment method was reached.",
    "payment_method_unusable": "No payment method is left that may be charged.",
}
