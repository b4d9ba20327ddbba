"""What an invoice's attempt ended with, applied: ``paid`` (and its subscription back to
``active``) when its payment succeeded, the failed attempt counted and handed to dunning when
it failed, nothing while it is under way. Every path that charges an invoice (``/pay``, the
schedule's renewals, dunning's retries, the hosted invoice page, payment links) settles here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from paygrid.db import dunning as dunning_db
from paygrid.db import invoices as invoices_db
from paygrid.db import prices as prices_db
from paygrid.db import subscriptions as subs_db
from paygrid.db.executor import Connection
from paygrid.db.invoices import InvoiceRow
from paygrid.dependencies import Deps
from paygrid.domain import invoices as domain
from paygrid.domain import subscriptions as subs_domain
from paygrid.domain.errors import CardError
from paygrid.domain.events import EventType
from paygrid.domain.invoices import InvoiceAction
from paygrid.domain.payments import PaymentStatus
from paygrid.domain.subscriptions import SubscriptionAction, SubscriptionStatus
from paygrid.schemas.invoices import Invoice
from paygrid.schemas.payments import Payment
from paygrid.schemas.refunds import RefundCreate
from paygrid.schemas.subscriptions import Subscription
from paygrid.services.billing.dunning.failures import follow_failed_attempt
from paygrid.services.billing.invoices import load, move, view_of
from paygrid.services.context import Tenant
from paygrid.services.refunds import create_refund
from paygrid.services.snapshots import emit_object


async def settle_attempt(deps: Deps, tenant: Tenant, row: InvoiceRow, payment: Payment) -> Invoice:
    """Move the invoice (as ``row`` was before its next attempt) by what that attempt's
    payment says."""
    attempt = row.attempt_count + 1
    match payment.status:
        case PaymentStatus.SUCCEEDED:
            return await record_paid(deps, tenant, row, payment.id)
        case PaymentStatus.REQUIRES_ACTION:
            # Off-session, the customer is not there to authenticate: a failed attempt, and
            # the answer a card error like a decline's.
            message = "The card needs the customer to authenticate this payment."
            error = {
                "type": "card_error",
                "code": "authentication_required",
                "message": message,
                "payment": payment.id,
            }
            await _failed(deps, tenant, row, attempt, payment.id, error)
            raise CardError(message, code="authentication_required", payment_id=payment.id)
        case PaymentStatus.REQUIRES_PAYMENT_METHOD | PaymentStatus.CANCELED:
            # A resumed attempt whose payment was declined before a crash.
            failure = payment.last_payment_error
            error = {"payment": payment.id, **(failure.model_dump() if failure else {})}
            return await _failed(deps, tenant, row, attempt, payment.id, error)
        case (
            PaymentStatus.PROCESSING
            | PaymentStatus.REQUIRES_CAPTURE
            | PaymentStatus.REQUIRES_CONFIRMATION
        ):
            # Not known yet: the next /pay resumes this payment under the same key.
            return await view_of(deps.pool, await load(deps.pool, tenant, row.id))


async def record_paid(
    deps: Deps, tenant: Tenant, row: InvoiceRow, payment_id: str | None
) -> Invoice:
    """``paid`` with its payment; a concurrent ``/pay`` that got there first is the answer."""
    async with deps.pool.acquire() as conn, conn.transaction():
        # Locked first, so a concurrent /pay of the same attempt waits and then finds it paid.
        current = await invoices_db.lock_invoice(conn, row.id, frozenset(domain.InvoiceStatus))
        assert current is not None
        if current.status is domain.InvoiceStatus.PAID:
            return await view_of(conn, current)
        now = deps.clock.now()
        if current.status in domain.allowed_sources(InvoiceAction.PAY):
            changes: dict[str, Any] = {"paid_at": now, "amount_paid": current.amount_due}
            if payment_id is not None:
                # Stripe's attempt_count counts the paying attempt too (2 declines, then
                # a success: 3).
                attempts = current.attempt_count + 1
                changes.update(payment_id=payment_id, last_payment_error=None)
                changes.update(attempt_count=attempts)
            paid = await move(conn, tenant, row.id, InvoiceAction.PAY, now, changes)
            await dunning_db.clear_schedule(conn, row.id)  # no retry of a paid invoice
            if current.subscription_id is not None:
                await _subscription_follows(conn, current.subscription_id, row.id, now)
            return paid
    # Voided while this attempt charged (a /pay and a /void take turns, but the schedule's
    # charges do not take the turn): the money goes back and the invoice stays void.
    if payment_id is not None:
        await _give_back(deps, tenant, row.id, payment_id)
    raise domain.invalid_state(current.status, InvoiceAction.PAY)


async def _give_back(deps: Deps, tenant: Tenant, invoice_id: str, payment_id: str) -> None:
    """Refund in full the payment of an invoice voided while it was being charged."""
    refund = RefundCreate(payment=payment_id, metadata={"invoice": invoice_id})
    await create_refund(deps, tenant, refund, idempotency_key=f"invoice:{invoice_id}:voided")


async def _subscription_follows(
    conn: Connection, subscription_id: str, invoice_id: str, now: datetime
) -> None:
    """The subscription whose latest invoice this is becomes ``active`` in the paying
    transaction (``past_due`` → ``active``, by the transition table), not at the schedule's
    next pass. Locked after the invoice: every path takes invoice, then subscription."""
    sub = await subs_db.lock_by_id(conn, subscription_id)
    sources = subs_domain.allowed_sources(SubscriptionAction.PAYMENT_SUCCEEDED)
    if sub is None or sub.latest_invoice_id != invoice_id or sub.status not in sources:
        return  # an older invoice, or a status a payment does not move (canceled, paused)
    if sub.status is SubscriptionStatus.ACTIVE:
        return
    moved = await subs_db.transition(conn, sub.id, sources, SubscriptionStatus.ACTIVE, now)
    if moved is None:
        return
    # The subscription's view as ``subscriptions.views.emit`` writes it (that package calls
    # this module, so this one cannot call it).
    items = (await subs_db.items_of(conn, [moved.id]))[moved.id]
    prices = {}
    for item in items:
        price = await prices_db.get_price(conn, moved.merchant_id, moved.livemode, item.price_id)
        assert price is not None, "prices are never deleted"
        prices[item.price_id] = price
    view = Subscription.from_row(moved, items, prices).model_dump(mode="json")
    event = EventType.CUSTOMER_SUBSCRIPTION_UPDATED
    await emit_object(conn, moved, event, view, created_at=moved.updated_at)


async def fail_attempt(
    deps: Deps, tenant: Tenant, row: InvoiceRow, attempt: int, error: CardError
) -> Invoice:
    """The attempt's card error, counted as its failure (``invoice.payment_failed``)."""
    payment_id = error.extra.get("payment_id")
    return await _failed(deps, tenant, row, attempt, payment_id, _error_of(error))


async def _failed(
    deps: Deps,
    tenant: Tenant,
    row: InvoiceRow,
    attempt: int,
    payment_id: str | None,
    error: dict[str, Any],
) -> Invoice:
    """Count the attempt as failed and write ``invoice.payment_failed``, once per attempt."""
    async with deps.pool.acquire() as conn, conn.transaction():
        failed = await invoices_db.record_failed_attempt(
            conn,
            row.id,
            attempt=attempt,
            sources=domain.allowed_sources(InvoiceAction.PAY),
            payment_id=payment_id,
            error=error,
            now=deps.clock.now(),
        )
        if failed is None:  # recorded already, or the invoice moved on
            return await view_of(conn, await load(conn, tenant, row.id))
        # The decline's class, the next retry (dunning), invoice.payment_failed and what
        # follows it, in this transaction.
        return await follow_failed_attempt(deps, conn, tenant, failed, payment_id, error)


def _error_of(error: CardError) -> dict[str, Any]:
    return {
        "type": error.error_type,
        "code": error.code,
        "decline_code": error.extra.get("decline_code"),
        "message": error.message,
        "payment": error.extra.get("payment_id"),
    }
