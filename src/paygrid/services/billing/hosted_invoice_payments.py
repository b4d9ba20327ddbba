"""Paying an invoice on its hosted page (``/i/{token}``): the customer is there, so the
charge is on-session through the same invoice payment service as
``POST /v1/invoices/{id}/pay`` (``invoice_payments``: the attempt's idempotency key, the
invoice's payment lock, ``invoice.paid`` / ``invoice.payment_failed``). A card that asks
for 3-D Secure sends the customer to authenticate and back to the page, which then
settles the same attempt. A new card is saved to the customer once it pays
(``setup_future_usage``); the customer's saved card can be charged too."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from paygrid.db import payment_methods as pm_db
from paygrid.db import payments as payments_db
from paygrid.dependencies import Deps
from paygrid.domain import invoices as domain
from paygrid.domain.errors import CardError, InvalidRequest
from paygrid.domain.invoices import InvoiceAction, InvoiceStatus
from paygrid.domain.payments import PaymentStatus
from paygrid.schemas.payments import Payment
from paygrid.services.billing import invoice_payments
from paygrid.services.billing.clocks import deps_for_customer
from paygrid.services.billing.hosted_invoice_pages import InvoicePage
from paygrid.services.billing.invoice_payments import CustomerPresent
from paygrid.services.billing.invoices import load
from paygrid.services.payments import sync_authorization
from paygrid.services.payments import views as payment_views


class PageResult(StrEnum):
    PAID = "paid"  # the invoice is paid
    REDIRECT = "redirect"  # send the customer to ``url`` (3-D Secure)
    DECLINED = "declined"  # show ``message``; the customer may try another card
    PENDING = "pending"  # the provider has not answered yet
    UNPAID = "unpaid"  # nothing to settle (a return without an attempt)


@dataclass(frozen=True, slots=True)
class PageOutcome:
    result: PageResult
    url: str | None = None
    message: str | None = None


async def pay_on_page(
    deps: Deps, page: InvoicePage, *, payment_method: str | None, return_url: str
) -> PageOutcome:
    """Charge the invoice's remaining amount to ``payment_method`` (a card the page just
    tokenized), or to the saved card the page offered."""
    method = payment_method or (None if page.saved_card is None else page.saved_card.payment_method)
    if method is None:
        raise InvalidRequest("Enter a card to pay with.", param="payment_method")
    tenant = page.tenant
    before = await load(deps.pool, tenant, page.invoice_id)
    domain.apply(before.status, InvoiceAction.PAY)  # paid or void already: 409
    try:
        async with invoice_payments.taking_turns(deps, page.invoice_id):
            row = await load(deps.pool, tenant, page.invoice_id)
            if row.status is InvoiceStatus.PAID:
                return PageOutcome(PageResult.PAID)
            domain.apply(row.status, InvoiceAction.PAY)
            deps = await deps_for_customer(deps, row.customer_id)
            saved = await pm_db.get_payment_method(deps.pool, row.merchant_id, row.livemode, method)
            present = CustomerPresent(
                return_url=return_url,
                save_method=saved is None or saved.customer_id != row.customer_id,
            )
            payment = await invoice_payments.attempt_payment(
                deps, tenant, row, method, off_session=False, present=present
            )
            if payment.status is PaymentStatus.REQUIRES_ACTION:
                return _authenticate(payment)
            invoice = await invoice_payments.settle_attempt(deps, tenant, row, payment)
    except CardError as error:
        return PageOutcome(PageResult.DECLINED, message=error.message)
    return _outcome_of(invoice.status, payment)


def _authenticate(payment: Payment) -> PageOutcome:
    action = payment.next_action
    url = None if action is None else action.redirect_to_url.url
    return PageOutcome(PageResult.PENDING if url is None else PageResult.REDIRECT, url=url)


def _outcome_of(status: InvoiceStatus, payment: Payment | None = None) -> PageOutcome:
    if status is InvoiceStatus.PAID:
        return PageOutcome(PageResult.PAID)
    failure = None if payment is None else payment.last_payment_error
    if failure is not None:
        return PageOutcome(PageResult.DECLINED, message=failure.message)
    return PageOutcome(PageResult.PENDING)


async def returned(deps: Deps, page: InvoicePage) -> PageOutcome:
    """Back from 3-D Secure: the current attempt's payment is asked of its provider, then
    settled as ``/pay`` settles it (an authentication not completed counts as the
    attempt's failure, so no attempt is left pending)."""
    tenant = page.tenant
    row = await load(deps.pool, tenant, page.invoice_id)
    if row.status is InvoiceStatus.PAID:
        return PageOutcome(PageResult.PAID)
    key = domain.attempt_key(row.id, row.attempt_count + 1)
    found = await payments_db.get_by_idempotency_key(deps.pool, row.merchant_id, row.livemode, key)
    if found is None or row.status not in domain.allowed_sources(InvoiceAction.PAY):
        return PageOutcome(PageResult.UNPAID)
    deps = await deps_for_customer(deps, row.customer_id)
    if found.status in (PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING):
        payment = await sync_authorization(deps, found)
    else:
        payment = await payment_views.view_of(deps.pool, found)
    try:
        async with invoice_payments.taking_turns(deps, page.invoice_id):
            current = await load(deps.pool, tenant, page.invoice_id)
            if current.attempt_count != row.attempt_count:  # settled meanwhile
                return _outcome_of(current.status)
            invoice = await invoice_payments.settle_attempt(deps, tenant, current, payment)
    except CardError as error:
        return PageOutcome(PageResult.DECLINED, message=error.message)
    return _outcome_of(invoice.status, payment)
