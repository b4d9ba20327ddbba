"""An off-session charge that waits for the customer's authentication (its payment
``requires_action``, ``invoice.payment_action_required`` sent) does not wait for ever:
``action_expiry_hours`` after the failure, on the customer's clock, its payment is canceled
(``cancellation_reason: abandoned``, voided at the provider), its authorization attempt ends
``declined`` so no attempt stays pending, and the invoice returns to its schedule (the
attempt counted as failed, of class ``action``). A payment the customer completed meanwhile
pays the invoice instead."""

from __future__ import annotations

from datetime import timedelta

import structlog

from paygrid.db import dunning as dunning_db
from paygrid.db import invoices as invoices_db
from paygrid.db import payments as payments_db
from paygrid.dependencies import Deps
from paygrid.domain import dunning as domain
from paygrid.domain.dunning import DeclineClass
from paygrid.domain.errors import PaygridError
from paygrid.domain.invoices import InvoiceStatus
from paygrid.domain.payments import PaymentStatus
from paygrid.services.billing import invoice_payments
from paygrid.services.billing.clocks import deps_for_customer
from paygrid.services.billing.dunning import decisions
from paygrid.services.billing.dunning.failures import retried
from paygrid.services.billing.settings import load_settings
from paygrid.services.context import Tenant
from paygrid.services.payments.cancel import cancel_payment
from paygrid.services.payments.views import view_of as payment_view

log = structlog.get_logger("paygrid.billing")

ABANDONED_MESSAGE = "The customer did not authenticate the payment in time."


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
    status = await cancel_waiting_payment(deps, tenant, row.id, payment_id, forget=False)
    settings = (await load_settings(deps, tenant)).dunning
    if status is PaymentStatus.SUCCEEDED and row.status is InvoiceStatus.OPEN:
        await _paid_meanwhile(deps, tenant, row.id, payment_id)
        return
    async with deps.pool.acquire() as conn, conn.transaction():
        locked = await invoices_db.lock_invoice(conn, row.id, frozenset(InvoiceStatus))
        current = await dunning_db.schedule_of(conn, row.id)
        if locked is None or current is None or current.action_payment_id != payment_id:
            return  # settled by another run meanwhile
        if locked.status is not InvoiceStatus.OPEN or not retried(locked):
            await dunning_db.clear_action(conn, row.id, payment_id)
            return
        failed_at = (current.action_expires_at or now) - timedelta(
            hours=settings.action_expiry_hours
        )
        decision = domain.after_action_expired(
            settings, decisions.state_of(current), failed_at=failed_at, expired_at=now
        )
        after = decisions.schedule_after(current, decision, action_payment_id=None, now=now)
        line = decisions.log_row(
            locked,
            attempt=locked.attempt_count,
            outcome="action_expired",
            payment_id=payment_id,
            method=await dunning_db.payment_method_of(conn, payment_id),
            code="authentication_required",
            decline_code=None,
            classification=DeclineClass.ACTION,
            message=ABANDONED_MESSAGE,
            decision=decision,
            now=now,
        )
        await decisions.write_and_exhaust(conn, settings, after, line, decision, now)
    log.info("invoice.action_expired", invoice=row.id, payment=payment_id)


async def cancel_waiting_payment(
    deps: Deps, tenant: Tenant, invoice_id: str, payment_id: str, *, forget: bool = True
) -> PaymentStatus | None:
    """Cancel the payment that waits for the customer (if it still does) and end its open
    authorization attempt; the payment's status afterwards. ``forget``: the invoice stops
    waiting for it too (else the caller decides what follows)."""
    try:
        await cancel_payment(deps, tenant, payment_id, "abandoned")
    except PaygridError as error:  # completed, or canceled, meanwhile
        log.info("invoice.action_cancel_refused", invoice=invoice_id, code=error.code)
    async with deps.pool.acquire() as conn, conn.transaction():
        payment = await payments_db.payment_by_id(conn, payment_id)
        if payment is None:
            return None
        if payment.status is PaymentStatus.CANCELED:
            now = deps.clock.now()
            await dunning_db.close_abandoned_authorizations(
                conn, payment_id, ABANDONED_MESSAGE, now
            )
        if forget and payment.status is not PaymentStatus.SUCCEEDED:
            await dunning_db.clear_action(conn, invoice_id, payment_id)
        return payment.status


async def _paid_meanwhile(deps: Deps, tenant: Tenant, invoice_id: str, payment_id: str) -> None:
    """The customer authenticated: the payment pays the invoice (as ``/pay`` settles it)."""
    row = await invoices_db.get_invoice(deps.pool, tenant.merchant_id, tenant.livemode, invoice_id)
    payment = await payments_db.payment_by_id(deps.pool, payment_id)
    if row is None or payment is None:
        return
    view = await payment_view(deps.pool, payment)
    async with deps.pool.acquire() as conn, conn.transaction():
        await dunning_db.clear_action(conn, invoice_id, payment_id)
    await invoice_payments.settle_attempt(deps, tenant, row, view)
