"""A 3-D Secure challenge started on the hosted invoice page: the page's own attempt
(on-session, its payment keyed by the invoice's current attempt, ``invoice:{id}:attempt:{n}``)
that waits for the customer is the invoice's waiting payment (``action_payment_id``,
``action_expires_at``), as an off-session charge's is (``failures.follow_failed_attempt``).

So it never stays ``requires_action``: ``action_expiry_hours`` later on the customer's clock
(``retries.action_expiry``), or as soon as the customer pays with another card, it is asked
of its provider, canceled if it still waits, and counted as the attempt's failure (an
``action_expired`` line, ``invoice.payment_failed``). The count moves the attempt number on,
so the next attempt has a new key instead of finding the abandoned payment again, and the
invoice returns to its schedule (``domain.dunning.after_action_expired``)."""

from __future__ import annotations

from datetime import timedelta

from paygrid.db import dunning as dunning_db
from paygrid.db import invoices as invoices_db
from paygrid.db import payments as payments_db
from paygrid.db.invoices import InvoiceRow
from paygrid.dependencies import Deps
from paygrid.domain import invoices as invoices_domain
from paygrid.domain.dunning import DeclineClass
from paygrid.domain.events import EventType
from paygrid.domain.invoices import InvoiceAction, InvoiceStatus
from paygrid.domain.payments import PaymentStatus
from paygrid.services.billing.dunning import decisions
from paygrid.services.billing.dunning.exhaustion import apply_on_exhausted
from paygrid.services.billing.dunning.failures import retried
from paygrid.services.billing.dunning.waiting_payments import (
    ABANDONED_MESSAGE,
    cancel_waiting_payment,
)
from paygrid.services.billing.invoices import emit, load
from paygrid.services.billing.settings import load_settings
from paygrid.services.context import Tenant

# What a canceled challenge may be in: it can no longer move money.
_OVER = frozenset({PaymentStatus.CANCELED, PaymentStatus.REQUIRES_PAYMENT_METHOD})


async def track_challenge(deps: Deps, tenant: Tenant, invoice_id: str, payment_id: str) -> None:
    """The page's attempt ``payment_id`` sent the customer to 3-D Secure: the invoice waits
    for it until ``action_expiry_hours`` from now (``deps`` on the customer's clock)."""
    settings = (await load_settings(deps, tenant)).dunning
    expires = deps.clock.now() + timedelta(hours=settings.action_expiry_hours)
    await dunning_db.await_action(deps.pool, invoice_id, payment_id, expires)


async def current_challenge(deps: Deps, row: InvoiceRow) -> str | None:
    """The invoice's waiting payment when it is the current attempt's own (the page's)."""
    schedule = await dunning_db.schedule_of(deps.pool, row.id)
    if schedule is None or schedule.action_payment_id is None:
        return None
    key = invoices_domain.attempt_key(row.id, row.attempt_count + 1)
    found = await payments_db.get_by_idempotency_key(deps.pool, row.merchant_id, row.livemode, key)
    return found.id if found is not None and found.id == schedule.action_payment_id else None


async def before_new_attempt(deps: Deps, tenant: Tenant, row: InvoiceRow) -> InvoiceRow:
    """Call under the invoice's payment lock before a new attempt: a page challenge still
    waiting is canceled (its provider asked first) and counted failed; the invoice as the
    new attempt must see it. A challenge the customer completed is left to
    ``attempt_payment`` (its key finds it, it pays the invoice), one whose cancellation was
    refused to ``replaced_by_new_attempt`` (a 409: nothing is charged)."""
    payment_id = await current_challenge(deps, row)
    if payment_id is None:
        return row
    status = await cancel_waiting_payment(deps, tenant, row.id, payment_id, forget=False)
    if status not in _OVER:
        return row
    await count_abandoned(deps, tenant, row.id, payment_id)
    return await load(deps.pool, tenant, row.id)


async def count_abandoned(deps: Deps, tenant: Tenant, invoice_id: str, payment_id: str) -> None:
    """The canceled challenge ``payment_id`` is the current attempt's failure: counted, in
    the history, ``invoice.payment_failed``, and the invoice back on its schedule."""
    settings = (await load_settings(deps, tenant)).dunning
    now = deps.clock.now()
    error = {
        "type": "card_error",
        "code": "authentication_required",
        "message": ABANDONED_MESSAGE,
        "payment": payment_id,
    }
    async with deps.pool.acquire() as conn, conn.transaction():
        locked = await invoices_db.lock_invoice(conn, invoice_id, frozenset(InvoiceStatus))
        current = await dunning_db.schedule_of(conn, invoice_id)
        if locked is None or current is None or current.action_payment_id != payment_id:
            return  # ended by another run meanwhile
        failed = await invoices_db.record_failed_attempt(
            conn,
            invoice_id,
            attempt=locked.attempt_count + 1,
            sources=invoices_domain.allowed_sources(InvoiceAction.PAY),
            payment_id=payment_id,
            error=error,
            now=now,
        )
        if failed is None or not retried(failed):
            await dunning_db.clear_action(conn, invoice_id, payment_id)
            if failed is not None:
                lines = (await invoices_db.lines_of(conn, [failed.id]))[failed.id]
                await emit(conn, failed, lines, EventType.INVOICE_PAYMENT_FAILED)
            return
        after, line, decision = await decisions.action_expired(
            conn, settings, failed, current, payment_id, now
        )
        saved = await decisions.write(
            conn, after, line, classification=DeclineClass.ACTION, now=now
        )
        if saved is None:
            return
        lines = (await invoices_db.lines_of(conn, [saved.id]))[saved.id]
        await emit(conn, saved, lines, EventType.INVOICE_PAYMENT_FAILED)
        if decision.exhausted:
            await apply_on_exhausted(conn, settings, saved, now)
