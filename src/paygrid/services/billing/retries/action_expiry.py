"""An off-session charge that waits for the customer's authentication (its payment
``requires_action``, ``invoice.payment_action_required`` sent) does not wait for ever:
``action_expiry_hours`` after the failure, on the customer's clock, its payment is canceled
(``cancellation_reason: abandoned``, voided at the provider), its authorization attempt ends
``declined`` so no attempt stays pending, and the invoice returns to its schedule (the
attempt counted as failed, of class ``action``). A payment the customer completed meanwhile
pays the invoice instead. A challenge started on the hosted invoice page expires the same
way (``dunning.page_challenges``); one whose provider cannot cancel it stays tracked
(``retries.uncanceled_waits``)."""

from __future__ import annotations

import structlog

from paygrid.db import dunning as dunning_db
from paygrid.db import invoices as invoices_db
from paygrid.db import payments as payments_db
from paygrid.dependencies import Deps
from paygrid.domain.invoices import InvoiceStatus
from paygrid.domain.payments import PaymentStatus
from paygrid.services.billing import invoice_outcomes
from paygrid.services.billing.clocks import deps_for_customer
from paygrid.services.billing.dunning import decisions, page_challenges
from paygrid.services.billing.dunning.failures import retried
from paygrid.services.billing.dunning.waiting_payments import (
    ABANDONED_MESSAGE as ABANDONED_MESSAGE,
)
from paygrid.services.billing.dunning.waiting_payments import (
    cancel_waiting_payment as cancel_waiting_payment,
)
from paygrid.services.billing.retries import uncanceled_waits
from paygrid.services.billing.settings import load_settings
from paygrid.services.context import Tenant
from paygrid.services.payments.views import view_of as payment_view

log = structlog.get_logger("paygrid.billing")

# A waiting payment in these can no longer move money.
_OVER = frozenset({PaymentStatus.CANCELED, PaymentStatus.REQUIRES_PAYMENT_METHOD})


async def expire_if_due(deps: Deps, invoice_id: str) -> None:
    """Expire the authentication the invoice waits for, once its time has come."""
    row = await dunning_db.invoice_by_id(deps.pool, invoice_id)
    schedule = await dunning_db.schedule_of(deps.pool, invoice_id)
    if row is None or schedule is None or schedule.action_payment_id is None:
        return
    deps = await deps_for_customer(deps, row.customer_id)
    now = deps.clock.now()
    if schedule.action_expires_at is None or schedule.action_expires_at > now:
        return
    tenant = Tenant(row.merchant_id, row.livemode)
    payment_id = schedule.action_payment_id
    on_page = await page_challenges.current_challenge(deps, row) == payment_id
    status = await cancel_waiting_payment(deps, tenant, row.id, payment_id, forget=False)
    settings = (await load_settings(deps, tenant)).dunning
    if status is PaymentStatus.SUCCEEDED and row.status is InvoiceStatus.OPEN:
        await _paid_meanwhile(deps, tenant, row.id, payment_id)
        return
    if status not in _OVER and status not in (None, PaymentStatus.SUCCEEDED):
        # The provider could not cancel it: still tracked, asked again later.
        await uncanceled_waits.cancel_refused(deps, tenant, row.id, payment_id)
        return
    if on_page and status in _OVER:
        # A challenge left on the hosted invoice page: the attempt it was counts as failed.
        await page_challenges.count_abandoned(deps, tenant, row.id, payment_id)
        log.info("invoice.page_challenge_expired", invoice=row.id, payment=payment_id)
        return
    async with deps.pool.acquire() as conn, conn.transaction():
        locked = await invoices_db.lock_invoice(conn, row.id, frozenset(InvoiceStatus))
        current = await dunning_db.schedule_of(conn, row.id)
        if locked is None or current is None or current.action_payment_id != payment_id:
            return  # settled by another run meanwhile
        back = await uncanceled_waits.returned_to_schedule(conn, row.id, payment_id)
        if back or locked.status is not InvoiceStatus.OPEN or not retried(locked):
            await dunning_db.clear_action(conn, row.id, payment_id)
            return
        after, line, decision = await decisions.action_expired(
            conn, settings, locked, current, payment_id, now
        )
        await decisions.write_and_exhaust(conn, settings, after, line, decision, now)
    log.info("invoice.action_expired", invoice=row.id, payment=payment_id)


async def _paid_meanwhile(deps: Deps, tenant: Tenant, invoice_id: str, payment_id: str) -> None:
    """The customer authenticated: the payment pays the invoice (as ``/pay`` settles it)."""
    row = await invoices_db.get_invoice(deps.pool, tenant.merchant_id, tenant.livemode, invoice_id)
    payment = await payments_db.payment_by_id(deps.pool, payment_id)
    if row is None or payment is None:
        return
    view = await payment_view(deps.pool, payment)
    async with deps.pool.acquire() as conn, conn.transaction():
        await dunning_db.clear_action(conn, invoice_id, payment_id)
    await invoice_outcomes.settle_attempt(deps, tenant, row, view)
