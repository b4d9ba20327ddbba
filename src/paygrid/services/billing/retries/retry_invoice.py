"""Retrying an invoice's payment: the due retry of its schedule, or at once because its
customer changed its default method. The attempt is ``/pay``'s own
(``invoice_payments.attempt_payment``, key ``invoice:{id}:attempt:{n}``), under the
invoice's payment lock, so a crash and a rerun resume the same payment and a concurrent
``/pay``, ``/void`` or retry takes its turn instead of charging again.

A retry that may not charge (the method reached the card network cap, or no method is left
that a hard decline did not stop) is skipped: the schedule moves on to its next step."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import structlog

from paygrid.db import dunning as dunning_db
from paygrid.db import invoices as invoices_db
from paygrid.db import payments as payments_db
from paygrid.db.dunning import ScheduleRow
from paygrid.db.invoices import InvoiceRow
from paygrid.dependencies import Deps
from paygrid.domain import dunning as domain
from paygrid.domain import invoices as invoices_domain
from paygrid.domain.billing_settings import DunningSettings
from paygrid.domain.errors import CardError, PaygridError
from paygrid.domain.invoices import InvoiceStatus
from paygrid.services.billing import invoice_payments
from paygrid.services.billing.clocks import deps_for_customer
from paygrid.services.billing.dunning import decisions
from paygrid.services.billing.dunning.failures import retried
from paygrid.services.billing.dunning.methods import retry_method, saved_to_customer
from paygrid.services.billing.retries.action_expiry import cancel_waiting_payment
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
        await _retry_locked(deps, tenant, settings, invoice_id, because)


async def _retry_locked(
    deps: Deps, tenant: Tenant, settings: DunningSettings, invoice_id: str, because: Because
) -> None:
    now = deps.clock.now()
    row = await invoices_db.get_invoice(deps.pool, tenant.merchant_id, tenant.livemode, invoice_id)
    schedule = await dunning_db.schedule_of(deps.pool, invoice_id)
    if row is None or schedule is None or row.status is not InvoiceStatus.OPEN:
        return
    if because is Because.SCHEDULE and not _due(schedule, now):
        return
    started = await _started(deps, row)
    if started is not None:
        # A run that crashed made this attempt's payment: resume it (same key, same
        # method), whatever the cap says now; it is not another attempt.
        await _charge(deps, tenant, row, started)
        return
    method = await retry_method(
        deps.pool, row, schedule, customers_default=because is Because.METHOD_UPDATE
    )
    state = decisions.state_of(schedule)
    if method is None or not domain.may_charge(settings, state, method):
        if because is Because.SCHEDULE:
            await _skip(deps, settings, row, schedule, method, "payment_method_unusable", now)
        return
    since = now - domain.cap_window(settings)
    made = await dunning_db.method_payments_between(deps.pool, method, since, now)
    if not domain.within_cap(settings, made):
        if because is Because.SCHEDULE:
            await _skip(deps, settings, row, schedule, method, "attempt_cap_reached", now)
        return
    if schedule.action_payment_id is not None:
        # A new attempt replaces the one waiting for the customer: nothing stays pending.
        await cancel_waiting_payment(deps, tenant, row.id, schedule.action_payment_id)
    refused = await _charge(deps, tenant, row, method)
    if refused is not None and because is Because.SCHEDULE:
        # Refused before any card said anything (the method was detached, ...): the
        # schedule moves on rather than trying the same thing again at once.
        await _skip(deps, settings, row, schedule, method, "payment_method_unusable", now)


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
        await invoice_payments.settle_attempt(deps, tenant, row, payment)
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
    schedule: ScheduleRow,
    method: str | None,
    reason: str,
    now: datetime,
) -> None:
    """A due retry not made: the schedule's next step (or its end), with the skip in the
    attempt history."""
    decision = domain.after_skip(settings, decisions.state_of(schedule), at=now)
    after = decisions.schedule_after(schedule, decision, action_payment_id=None, now=now)
    line = decisions.log_row(
        row,
        attempt=None,
        outcome="skipped",
        payment_id=None,
        method=method,
        code=reason,
        decline_code=None,
        classification=None,
        message=_SKIPPED[reason],
        decision=decision,
        now=now,
    )
    async with deps.pool.acquire() as conn, conn.transaction():
        locked = await invoices_db.lock_invoice(conn, row.id, frozenset({InvoiceStatus.OPEN}))
        if locked is None:
            return
        await decisions.write_and_exhaust(conn, settings, after, line, decision, now)
    log.info("invoice.retry_skipped", invoice=row.id, reason=reason)


_SKIPPED = {
    "attempt_cap_reached": "The card network cap on attempts per payment method was reached.",
    "payment_method_unusable": "No payment method is left that may be charged.",
}
