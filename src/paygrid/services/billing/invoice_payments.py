"""Pay an invoice: charge what remains through the same payment service as
``POST /v1/payments``, keyed by the invoice and its attempt number, so a crash and a retry
never charge twice.

The ``n``-th attempt's payment carries the idempotency key ``invoice:{id}:attempt:{n}``,
``n`` being one more than the failed attempts counted on the invoice. The count grows only
once an attempt has definitely failed, so a retry after a crash (or a concurrent ``/pay``)
sends the same key, finds the payment the first run made and resumes it instead of making
another. A payment whose outcome is not known yet leaves the invoice ``open`` and the count
as it is: the next ``/pay`` resumes the same payment.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db import customers as customers_db
from paygrid.db import dunning as dunning_db
from paygrid.db import invoices as invoices_db
from paygrid.db import payment_methods as pm_db
from paygrid.db import prices as prices_db
from paygrid.db import subscriptions as subs_db
from paygrid.db.executor import Connection
from paygrid.db.invoices import InvoiceRow
from paygrid.dependencies import Deps
from paygrid.domain import invoices as domain
from paygrid.domain import subscriptions as subs_domain
from paygrid.domain.errors import CardError
from paygrid.domain.events import EventType
from paygrid.domain.invoices import InvoiceAction, InvoicePaymentMethodMissing
from paygrid.domain.payments import PaymentStatus
from paygrid.domain.subscriptions import SubscriptionAction, SubscriptionStatus
from paygrid.schemas.invoices import Invoice, InvoicePay
from paygrid.schemas.payments import Payment, PaymentCreate
from paygrid.schemas.refunds import RefundCreate
from paygrid.schemas.subscriptions import Subscription
from paygrid.services.billing.clocks import deps_for_customer
from paygrid.services.billing.dunning.failures import follow_failed_attempt
from paygrid.services.billing.dunning.methods import require_payable_method
from paygrid.services.billing.invoices import load, move, view_of
from paygrid.services.context import Tenant
from paygrid.services.payments import create_payment
from paygrid.services.refunds import create_refund
from paygrid.services.snapshots import emit_object


async def pay_invoice(deps: Deps, tenant: Tenant, invoice_id: str, params: InvoicePay) -> Invoice:
    """Charge the invoice's remaining amount to ``payment_method``, else the invoice's
    ``default_payment_method``, else the customer's ``invoice_settings`` default (off-session
    when the method is saved to the customer): ``paid`` on success; on a decline or a card
    that needs the customer it stays ``open``, ``invoice.payment_failed`` is written with
    the error, and the card error is the answer (402)."""
    before = await load(deps.pool, tenant, invoice_id)
    domain.apply(before.status, InvoiceAction.PAY)  # paid or void already: 409
    async with taking_turns(deps, invoice_id):
        return await _pay(deps, tenant, invoice_id, params)


@asynccontextmanager
async def taking_turns(deps: Deps, invoice_id: str) -> AsyncIterator[None]:
    """Hold the invoice's payment lock (``hold_payment_lock``) while ``/pay`` runs, so a
    ``/void`` (or another ``/pay``) waits for it and then sees the outcome. The lock holds
    a connection while the charge uses others: at most half the pool's connections hold
    one at a time, so the charges always find a connection."""
    gate = _GATES.get(deps.pool)
    if gate is None:
        gate = _GATES[deps.pool] = asyncio.Semaphore(max(1, deps.pool.get_max_size() // 2))
    async with gate, deps.pool.acquire() as conn, conn.transaction():
        await invoices_db.hold_payment_lock(conn, invoice_id)
        yield


@dataclass(frozen=True, slots=True)
class CustomerPresent:
    """An attempt the customer makes on the hosted invoice page: 3-D Secure returns to
    ``return_url``; ``save_method`` saves a new card to the customer once it pays."""

    return_url: str
    save_method: bool


# One gate per pool (a process has one or two, for its lifetime; asyncpg pools cannot be
# weakly referenced).
_GATES: dict[asyncpg.Pool, asyncio.Semaphore] = {}


async def _pay(deps: Deps, tenant: Tenant, invoice_id: str, params: InvoicePay) -> Invoice:
    row = await load(deps.pool, tenant, invoice_id)
    if row.status is domain.InvoiceStatus.PAID:  # a /pay it waited for paid it
        return await view_of(deps.pool, row)
    domain.apply(row.status, InvoiceAction.PAY)  # a /void it waited for voided it: 409
    # Everything on the customer's behalf runs on its clock (a test clock's, if any).
    deps = await deps_for_customer(deps, row.customer_id)
    if row.amount_remaining == 0:
        return await _paid(deps, tenant, row, None)
    method = params.payment_method or row.default_payment_method_id
    method = method or await _customers_default(deps, tenant, row.customer_id)
    if method is None:
        raise InvoicePaymentMethodMissing(param="payment_method")
    if params.payment_method is not None:  # another customer's method: 400; unknown: 404
        await require_payable_method(deps, tenant, params.payment_method, row.customer_id)
    off_session = await _saved_to(deps, tenant, method, row)
    payment = await attempt_payment(deps, tenant, row, method, off_session=off_session)
    return await settle_attempt(deps, tenant, row, payment)


async def attempt_payment(
    deps: Deps,
    tenant: Tenant,
    row: InvoiceRow,
    method: str,
    *,
    off_session: bool,
    present: CustomerPresent | None = None,
) -> Payment:
    """The payment of the invoice's next attempt, through the payment service with the key
    of the invoice and attempt (``deps`` on the customer's clock). A card error is counted
    as the attempt's failure (``invoice.payment_failed``) and raised. ``present``: the
    customer pays on the hosted invoice page (3-D Secure comes back to its page)."""
    attempt = row.attempt_count + 1
    charge = _charge(row, method, off_session=off_session)
    if present is not None:
        charge = charge.model_copy(
            update={
                "return_url": present.return_url,
                "setup_future_usage": "off_session" if present.save_method else None,
            }
        )
    try:
        return await create_payment(
            deps, tenant, charge, idempotency_key=domain.attempt_key(row.id, attempt)
        )
    except CardError as error:
        payment_id = error.extra.get("payment_id")
        await _failed(deps, tenant, row, attempt, payment_id, _error_of(error))
        raise


async def _customers_default(deps: Deps, tenant: Tenant, customer_id: str) -> str | None:
    """The customer's ``invoice_settings.default_payment_method``."""
    customer = await customers_db.get_customer(
        deps.pool, tenant.merchant_id, tenant.livemode, customer_id
    )
    return None if customer is None else customer.default_payment_method_id


async def _saved_to(deps: Deps, tenant: Tenant, method: str, row: InvoiceRow) -> bool:
    """Whether ``method`` is saved to the invoice's customer: then the charge is
    merchant-initiated (off-session). Anything else (a test id such as ``pm_card_visa``)
    is charged as the payment core would charge it in a confirmed ``POST /v1/payments``."""
    saved = await pm_db.get_payment_method(deps.pool, tenant.merchant_id, tenant.livemode, method)
    return saved is not None and saved.customer_id == row.customer_id


def _charge(row: InvoiceRow, method: str, *, off_session: bool) -> PaymentCreate:
    """The payment an attempt makes: the customer's method, confirmed now."""
    return PaymentCreate(
        amount=row.amount_remaining,
        currency=row.currency,
        customer=row.customer_id,
        payment_method=method,
        confirm=True,
        off_session=off_session,
        description=f"Invoice {row.number}",
        metadata={"invoice": row.id},
    )


async def settle_attempt(deps: Deps, tenant: Tenant, row: InvoiceRow, payment: Payment) -> Invoice:
    """Move the invoice (as ``row`` was before its next attempt) by what that attempt's
    payment says."""
    attempt = row.attempt_count + 1
    match payment.status:
        case PaymentStatus.SUCCEEDED:
            return await _paid(deps, tenant, row, payment.id)
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


async def _paid(deps: Deps, tenant: Tenant, row: InvoiceRow, payment_id: str | None) -> Invoice:
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
