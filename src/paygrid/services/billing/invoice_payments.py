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

import asyncpg

from paygrid.db import customers as customers_db
from paygrid.db import invoices as invoices_db
from paygrid.db import payment_methods as pm_db
from paygrid.db.invoices import InvoiceRow
from paygrid.dependencies import Deps
from paygrid.domain import invoices as domain
from paygrid.domain.errors import CardError
from paygrid.domain.invoices import InvoiceAction, InvoicePaymentMethodMissing
from paygrid.schemas.invoices import Invoice, InvoicePay
from paygrid.schemas.payments import Payment, PaymentCreate
from paygrid.services.billing.clocks import deps_for_customer
from paygrid.services.billing.dunning.methods import require_payable_method
from paygrid.services.billing.dunning.page_challenges import before_new_attempt
from paygrid.services.billing.dunning.waiting_payments import replaced_by_new_attempt
from paygrid.services.billing.invoice_outcomes import fail_attempt, record_paid, settle_attempt
from paygrid.services.billing.invoices import load, view_of
from paygrid.services.context import Tenant
from paygrid.services.payments import create_payment


async def pay_invoice(
    deps: Deps, tenant: Tenant, invoice_id: str, params: InvoicePay, *, first_only: bool = False
) -> Invoice:
    """Charge the invoice's remaining amount to ``payment_method``, else the invoice's
    ``default_payment_method``, else the customer's ``invoice_settings`` default (off-session
    when the method is saved to the customer): ``paid`` on success; on a decline or a card
    that needs the customer it stays ``open``, ``invoice.payment_failed`` is written with
    the error, and the card error is the answer (402).

    ``first_only`` (the subscription schedule's collection, also when it reruns after a
    crash or races another pass): charge only an invoice no attempt has failed yet, as
    seen under the payment lock; a later attempt is dunning's (``retries.retry_invoice``),
    which alone knows the invoice's hard-declined methods and the card network cap."""
    before = await load(deps.pool, tenant, invoice_id)
    domain.apply(before.status, InvoiceAction.PAY)  # paid or void already: 409
    async with taking_turns(deps, invoice_id):
        if first_only:
            row = await load(deps.pool, tenant, invoice_id)
            if row.attempt_count > 0 or row.payment_id is not None:
                return await view_of(deps.pool, row)  # attempted already: dunning's now
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
        return await record_paid(deps, tenant, row, None)
    method = params.payment_method or row.default_payment_method_id
    method = method or await _customers_default(deps, tenant, row.customer_id)
    if method is None:
        raise InvoicePaymentMethodMissing(param="payment_method")
    if params.payment_method is not None:  # another customer's method: 400; unknown: 404
        await require_payable_method(deps, tenant, params.payment_method, row.customer_id)
    off_session = await _saved_to(deps, tenant, method, row)
    row = await before_new_attempt(deps, tenant, row)  # a page challenge waiting: ended
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
    customer pays on the hosted invoice page (3-D Secure comes back to its page). A
    payment still awaiting authentication is settled first (``replaced_by_new_attempt``)."""
    if (completed := await replaced_by_new_attempt(deps, tenant, row)) is not None:
        return completed  # the customer authenticated an earlier attempt's payment
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
        await fail_attempt(deps, tenant, row, attempt, error)
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
