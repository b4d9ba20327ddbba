"""Paying an invoice on its hosted page (``/i/{token}``): the customer is there, so the
charge is on-session through the same invoice payment service as
``POST /v1/invoices/{id}/pay`` (``invoice_payments``: the attempt's idempotency key, the
invoice's payment lock, ``invoice.paid`` / ``invoice.payment_failed``). A card that asks
for 3-D Secure sends the customer to authenticate and back to the page, which then
settles the same attempt. A new card is saved to the customer once it pays
(``setup_future_usage``); the customer's saved card can be charged too.

An invoice whose off-session charge waits for the customer's authentication (its
``action_payment_id``, the link of ``invoice.payment_action_required``) is not charged
again with that card: the page resumes the waiting payment's challenge, which comes back
to the page and pays the invoice; abandoned, it expires with the wait
(``dunning.action_expiry``), so no payment is left ``requires_action``. Another card makes a
new attempt, which cancels the waiting payment first (``attempt_payment``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from paygrid.db import dunning as dunning_db
from paygrid.db import payment_methods as pm_db
from paygrid.db import payments as payments_db
from paygrid.db.invoices import InvoiceRow
from paygrid.db.payments import PaymentRow
from paygrid.dependencies import Deps
from paygrid.domain import invoices as domain
from paygrid.domain.errors import CardError, InvalidRequest
from paygrid.domain.invoices import InvoiceAction, InvoiceStatus
from paygrid.domain.payments import PaymentStatus
from paygrid.schemas.payments import Payment
from paygrid.services.billing import hosted_invoice_defaults, invoice_outcomes, invoice_payments
from paygrid.services.billing.clocks import deps_for_customer
from paygrid.services.billing.dunning import page_challenges
from paygrid.services.billing.hosted_invoice_pages import InvoicePage
from paygrid.services.billing.invoice_payments import CustomerPresent
from paygrid.services.billing.invoices import load
from paygrid.services.context import Tenant
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
    deps: Deps,
    page: InvoicePage,
    *,
    payment_method: str | None,
    return_url: str,
    make_default: bool = False,
) -> PageOutcome:
    """Charge the invoice's remaining amount to ``payment_method`` (a card the page just
    tokenized), or to the saved card the page offered. With ``make_default``, a new card
    that pays becomes the customer's default (after 3-D Secure: ``returned``)."""
    method = payment_method or (None if page.saved_card is None else page.saved_card.payment_method)
    if method is None:
        raise InvalidRequest("Enter a card to pay with.", param="payment_method")
    tenant = page.tenant
    before = await load(deps.pool, tenant, page.invoice_id)
    domain.apply(before.status, InvoiceAction.PAY)  # paid or void already: 409
    async with invoice_payments.taking_turns(deps, page.invoice_id):
        row = await load(deps.pool, tenant, page.invoice_id)
        if row.status is InvoiceStatus.PAID:
            return PageOutcome(PageResult.PAID)
        domain.apply(row.status, InvoiceAction.PAY)
        deps = await deps_for_customer(deps, row.customer_id)
        waiting = await _waiting(deps, row.id)
        if waiting is not None and waiting.method == method:
            return await _resume(deps, waiting.payment, return_url)
        saved = await pm_db.get_payment_method(deps.pool, row.merchant_id, row.livemode, method)
        present = CustomerPresent(
            return_url=return_url,
            save_method=saved is None or saved.customer_id != row.customer_id,
        )
        # Another card: a new attempt, which cancels the waiting payment first.
        outcome = await _attempt(deps, tenant, row, method, present)
    if make_default and present.save_method and outcome.result is PageResult.PAID:
        await hosted_invoice_defaults.make_default(deps, tenant, row.customer_id, method)
    return outcome


async def _attempt(
    deps: Deps, tenant: Tenant, row: InvoiceRow, method: str, present: CustomerPresent
) -> PageOutcome:
    """A new attempt on the page, settled unless it sends the customer to 3-D Secure."""
    try:
        # The page's own earlier challenge still waiting is canceled and counted failed:
        # this attempt has a new key (not that challenge's payment again).
        row = await page_challenges.before_new_attempt(deps, tenant, row)
        payment = await invoice_payments.attempt_payment(
            deps, tenant, row, method, off_session=False, present=present
        )
        if payment.status is PaymentStatus.REQUIRES_ACTION:
            # Tracked as the invoice's waiting payment: abandoned, it expires.
            await page_challenges.track_challenge(deps, tenant, row.id, payment.id)
            return _authenticate(payment)
        invoice = await invoice_outcomes.settle_attempt(deps, tenant, row, payment)
    except CardError as error:
        return PageOutcome(PageResult.DECLINED, message=error.message)
    return _outcome_of(invoice.status, payment)


@dataclass(frozen=True, slots=True)
class _Waiting:
    payment: PaymentRow
    method: str | None


async def _waiting(deps: Deps, invoice_id: str) -> _Waiting | None:
    """The invoice's off-session payment that still waits for the customer's
    authentication, before its wait expires (``deps`` on the customer's clock)."""
    schedule = await dunning_db.schedule_of(deps.pool, invoice_id)
    if schedule is None or schedule.action_payment_id is None:
        return None
    if schedule.action_expires_at is None or schedule.action_expires_at <= deps.clock.now():
        return None
    payment = await payments_db.payment_by_id(deps.pool, schedule.action_payment_id)
    if payment is None or payment.status is not PaymentStatus.REQUIRES_ACTION:
        return None
    return _Waiting(payment, await dunning_db.payment_method_of(deps.pool, payment.id))


async def _resume(deps: Deps, waiting: PaymentRow, return_url: str) -> PageOutcome:
    """Send the customer to the waiting payment's challenge, and back to the page."""
    await payments_db.set_return_url(deps.pool, waiting.id, return_url)
    return _authenticate(await payment_views.view_of(deps.pool, waiting))


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


async def returned(deps: Deps, page: InvoicePage, *, make_default: bool = False) -> PageOutcome:
    """Back from 3-D Secure: the current attempt's payment is asked of its provider, then
    settled as ``/pay`` settles it (an authentication not completed counts as the
    attempt's failure, so no attempt is left pending). Back from the waiting payment's
    resumed challenge (no attempt of the page's own): that payment pays the invoice.
    ``make_default``: the new card of the page's attempt, paid, becomes the default."""
    tenant = page.tenant
    row = await load(deps.pool, tenant, page.invoice_id)
    if row.status is InvoiceStatus.PAID:
        return PageOutcome(PageResult.PAID)
    if row.status not in domain.allowed_sources(InvoiceAction.PAY):
        return PageOutcome(PageResult.UNPAID)
    deps = await deps_for_customer(deps, row.customer_id)
    schedule = await dunning_db.schedule_of(deps.pool, row.id)
    waiting = None if schedule is None else schedule.action_payment_id
    key = domain.attempt_key(row.id, row.attempt_count + 1)
    found = await payments_db.get_by_idempotency_key(deps.pool, row.merchant_id, row.livemode, key)
    if found is None:
        if waiting is None:
            return PageOutcome(PageResult.UNPAID)
        return await _resumed(deps, tenant, row, waiting)
    outcome = await _settle_returned(deps, tenant, row, found)
    method = found.payment_method_id
    if make_default and method is not None and outcome.result is PageResult.PAID:
        await hosted_invoice_defaults.make_default(deps, tenant, row.customer_id, method)
    return outcome


async def _settle_returned(
    deps: Deps, tenant: Tenant, row: InvoiceRow, found: PaymentRow
) -> PageOutcome:
    """Settle the page's attempt ``found``, as the provider says it ended."""
    if found.status in (PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING):
        payment = await sync_authorization(deps, found)
    else:
        payment = await payment_views.view_of(deps.pool, found)
    try:
        async with invoice_payments.taking_turns(deps, row.id):
            current = await load(deps.pool, tenant, row.id)
            if current.attempt_count != row.attempt_count:  # settled meanwhile
                return _outcome_of(current.status)
            invoice = await invoice_outcomes.settle_attempt(deps, tenant, current, payment)
    except CardError as error:
        return PageOutcome(PageResult.DECLINED, message=error.message)
    return _outcome_of(invoice.status, payment)


async def _resumed(deps: Deps, tenant: Tenant, row: InvoiceRow, waiting: str) -> PageOutcome:
    """The waiting off-session payment, after its challenge: paid, it pays the invoice
    (the invoice stops waiting first, as the expiry's ``_paid_meanwhile`` does); refused,
    the attempt stays failed and the invoice waits for the expiry or another card."""
    found = await payments_db.payment_by_id(deps.pool, waiting)
    if found is None:
        return PageOutcome(PageResult.UNPAID)
    payment = await sync_authorization(deps, found)
    if payment.status is PaymentStatus.REQUIRES_ACTION:
        return PageOutcome(PageResult.UNPAID)  # not authenticated yet: the page again
    if payment.status is not PaymentStatus.SUCCEEDED:
        return _outcome_of(row.status, payment)
    async with invoice_payments.taking_turns(deps, row.id):
        current = await load(deps.pool, tenant, row.id)
        if current.status is InvoiceStatus.PAID:
            return PageOutcome(PageResult.PAID)
        await dunning_db.clear_action(deps.pool, row.id, waiting)
        invoice = await invoice_outcomes.settle_attempt(deps, tenant, current, payment)
    return _outcome_of(invoice.status, payment)
