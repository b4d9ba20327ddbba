"""The payment of an earlier attempt that waits for the customer's authentication (an
off-session charge answered ``requires_action``; ``invoices.action_payment_id``).

The customer may authenticate it at the provider at any moment until it is canceled, and
our copy of it learns that only when it asks the provider. So before anything replaces it
(a new attempt by ``/pay``, the hosted page or a retry, or its expiry), it is first asked
of its provider, then canceled if it still waits: a payment the customer completed pays
the invoice, and is never followed by a second charge."""

from __future__ import annotations

import structlog

from paygrid.db import dunning as dunning_db
from paygrid.db import payments as payments_db
from paygrid.db.invoices import InvoiceRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import PaygridError
from paygrid.domain.invoices import InvoiceInvalidState
from paygrid.domain.payments import PaymentStatus
from paygrid.schemas.payments import Payment
from paygrid.services.context import Tenant
from paygrid.services.payments import sync_authorization
from paygrid.services.payments.cancel import cancel_payment
from paygrid.services.payments.views import view_of

log = structlog.get_logger("paygrid.billing")

ABANDONED_MESSAGE = "The customer did not authenticate the payment in time."
# What an earlier payment may be in for a new attempt to go ahead: it can no longer move money.
_OVER = frozenset({PaymentStatus.CANCELED, PaymentStatus.REQUIRES_PAYMENT_METHOD})


async def cancel_waiting_payment(
    deps: Deps, tenant: Tenant, invoice_id: str, payment_id: str, *, forget: bool = True
) -> PaymentStatus | None:
    """Learn the waiting payment's outcome from its provider, cancel it if it still waits,
    and end its open authorization attempt; the payment's status afterwards. ``forget``:
    the invoice stops waiting for it too, once it can no longer move money (not when it
    succeeded, nor when its cancellation was refused: the next attempt asks again)."""
    await _sync(deps, invoice_id, payment_id)
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
        if forget and payment.status in _OVER:
            await dunning_db.clear_action(conn, invoice_id, payment_id)
        return payment.status


async def replaced_by_new_attempt(deps: Deps, tenant: Tenant, row: InvoiceRow) -> Payment | None:
    """Call (under the invoice's payment lock) before a new attempt charges the invoice:
    the earlier payment that waited for the customer, when the customer completed it (it
    pays the invoice instead); ``None`` when a new attempt may charge. One that can still
    move money (its cancellation was refused) is a 409: nothing is charged."""
    schedule = await dunning_db.schedule_of(deps.pool, row.id)
    if schedule is None or schedule.action_payment_id is None:
        return None
    waiting = schedule.action_payment_id
    status = await cancel_waiting_payment(deps, tenant, row.id, waiting)
    if status is None or status in _OVER:
        return None
    payment = await payments_db.payment_by_id(deps.pool, waiting)
    if status is PaymentStatus.SUCCEEDED and payment is not None:
        return await view_of(deps.pool, payment)
    raise InvoiceInvalidState(
        f"The invoice's payment {waiting} is still waiting for the customer's "
        "authentication and could not be canceled; try again shortly.",
    )


async def _sync(deps: Deps, invoice_id: str, payment_id: str) -> None:
    """Ask the provider about a payment still waiting (the customer may have finished)."""
    payment = await payments_db.payment_by_id(deps.pool, payment_id)
    if payment is None or payment.status is not PaymentStatus.REQUIRES_ACTION:
        return
    try:
        await sync_authorization(deps, payment)
    except PaygridError as error:  # a decline, or no answer: canceling settles it
        log.info("invoice.action_sync_failed", invoice=invoice_id, code=error.code)
