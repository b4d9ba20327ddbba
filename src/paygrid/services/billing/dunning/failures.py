"""What follows an invoice's failed attempt, in the transaction that counted it
(``invoice_payments``): the decline's class in ``last_payment_error``, the next attempt
(or none) by ``paygrid.domain.dunning``, the attempt's line in the history, then the events
(``invoice.payment_failed``; ``invoice.payment_action_required`` for an off-session charge
waiting for the customer) and, when the schedule is over, ``on_exhausted``.

Only invoices collected automatically (``charge_automatically`` and ``auto_advance``) are
retried, and not a subscription's first invoice (its subscription is ``incomplete``, and
expires after 23 hours as Stripe's does); a payment of any invoice that waits for the
customer's authentication expires all the same, so none stays pending."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from paygrid.db import dunning as dunning_db
from paygrid.db import invoices as invoices_db
from paygrid.db.dunning import ScheduleRow
from paygrid.db.executor import Connection
from paygrid.db.invoices import InvoiceRow
from paygrid.dependencies import Deps
from paygrid.domain import dunning as domain
from paygrid.domain.billing_settings import DunningSettings
from paygrid.domain.dunning import Decision, DeclineClass
from paygrid.domain.dunning import DunningOutcome as O
from paygrid.domain.events import EventType
from paygrid.domain.invoices import BillingReason, CollectionMethod
from paygrid.schemas.invoices import Invoice
from paygrid.services.billing.dunning import decisions
from paygrid.services.billing.dunning.exhaustion import apply_on_exhausted
from paygrid.services.billing.invoices import emit, view_of
from paygrid.services.billing.settings import load_settings
from paygrid.services.context import Tenant


def retried(invoice: InvoiceRow) -> bool:
    """Whether dunning retries the invoice's failed payments."""
    return (
        invoice.collection_method is CollectionMethod.CHARGE_AUTOMATICALLY
        and invoice.auto_advance
        and invoice.billing_reason is not BillingReason.SUBSCRIPTION_CREATE
    )


async def follow_failed_attempt(
    deps: Deps,
    conn: Connection,
    tenant: Tenant,
    failed: InvoiceRow,
    payment_id: str | None,
    error: dict[str, Any],
) -> Invoice:
    """``failed`` is the invoice just counted failed (``attempt_count`` is the attempt's
    number), locked by that update; ``deps`` reads the customer's clock. The invoice's
    view after everything, written as ``invoice.payment_failed``'s snapshot."""
    now = deps.clock.now()
    code, decline_code = error.get("code"), error.get("decline_code")
    klass = domain.classify(code, decline_code)
    settings = (await load_settings(deps, tenant, conn)).dunning
    schedule = await dunning_db.schedule_of(conn, failed.id)
    assert schedule is not None, "the invoice was just updated"
    method = None if payment_id is None else await dunning_db.payment_method_of(conn, payment_id)
    decision = await _decide(conn, settings, failed, schedule, klass, method, now)
    action_payment = payment_id if klass is DeclineClass.ACTION else None
    after = decisions.schedule_after(schedule, decision, action_payment_id=action_payment, now=now)
    log = decisions.log_row(
        failed,
        attempt=failed.attempt_count,
        outcome=O.REQUIRES_ACTION if action_payment is not None else O.FAILED,
        payment_id=payment_id,
        method=method,
        code=code,
        decline_code=decline_code,
        classification=klass,
        message=error.get("message"),
        decision=decision,
        now=now,
    )
    saved = await decisions.write(conn, after, log, classification=klass, now=now)
    if saved is None:  # cannot happen: the caller's update holds the open invoice's row
        return await view_of(conn, failed)
    lines = (await invoices_db.lines_of(conn, [saved.id]))[saved.id]
    view = await emit(conn, saved, lines, EventType.INVOICE_PAYMENT_FAILED)
    if action_payment is not None:
        await emit(conn, saved, lines, EventType.INVOICE_PAYMENT_ACTION_REQUIRED)
    if decision.exhausted:
        return await view_of(conn, await apply_on_exhausted(conn, settings, saved, now))
    return view


async def _decide(
    conn: Connection,
    settings: DunningSettings,
    failed: InvoiceRow,
    schedule: ScheduleRow,
    klass: DeclineClass,
    method: str | None,
    now: datetime,
) -> Decision:
    """The domain's decision; no retry at all for an invoice dunning does not handle."""
    state = decisions.state_of(schedule)
    if not retried(failed):
        # Not retried; a payment waiting for the customer still expires (nothing pending).
        hours = timedelta(hours=settings.action_expiry_hours)
        waits = now + hours if klass is DeclineClass.ACTION else None
        return Decision(state, None, action_expires_at=waits)
    saved = await dunning_db.saved_methods_newest_first(conn, failed.customer_id)
    others = [m for m in saved if m != method]
    return domain.after_failure(
        settings, state, failed_at=now, decline=klass, method=method, other_methods=others
    )
