"""Paying a payment link's checkout session: the slot first, then the money.

A one-time link's session is paid by the hosted checkout's use case (one payment per
session, idempotent). A recurring link's session makes a customer from the entered email,
saves the card to it for off-session use (with its mandate), and creates the subscription,
whose first invoice is charged with that card at once; the session is then complete with
the invoice's payment."""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from paygrid.db import checkout_sessions as sessions_db
from paygrid.db import payment_links as links_db
from paygrid.db.checkout_sessions import CheckoutSessionRow
from paygrid.db.payment_links import PaymentLinkRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import CardError, InvalidRequest, PaygridError
from paygrid.domain.payment_links import LinkSessionStatus
from paygrid.domain.subscriptions import SubscriptionStatus
from paygrid.schemas.common import Email
from paygrid.schemas.customers import CustomerCreate
from paygrid.schemas.subscriptions import SubscriptionCreate
from paygrid.services import checkout, customers, payments, saved_methods
from paygrid.services.billing import invoices
from paygrid.services.billing.subscriptions.create import create_subscription
from paygrid.services.checkout import Outcome, Result
from paygrid.services.checkout_sessions import CheckoutSessionInvalidState, complete_session
from paygrid.services.context import Tenant
from paygrid.services.payment_link_checkout import release, reserve, settle
from paygrid.services.payment_links import is_recurring

_EMAIL = TypeAdapter(Email)


def checked_email(email: str | None) -> str:
    """The email the page collected (the receipt's, and a recurring link's customer's)."""
    try:
        return str(_EMAIL.validate_python((email or "").strip()))
    except ValidationError:
        raise InvalidRequest("Enter a valid email address.", param="email") from None


async def pay(
    deps: Deps,
    link: PaymentLinkRow,
    session: CheckoutSessionRow,
    *,
    payment_method: str | None,
    email: str | None,
    return_url: str,
) -> Outcome:
    """Reserve the session's slot, then pay; raises ``PaymentLinkUnavailable`` (nothing
    charged) when every slot is taken or the link is inactive or expired."""
    address = checked_email(email)
    if payment_method is None:
        raise InvalidRequest("Card payments need JavaScript; enable it and try again.")
    status, newly = await reserve(deps, link, session, address)
    if status is LinkSessionStatus.COMPLETED:
        return Outcome(Result.SUCCEEDED, session)
    if not is_recurring(link):
        return await _pay_once(deps, link, session, payment_method, address, return_url)
    if not newly:  # another submit of this session is subscribing
        raise CheckoutSessionInvalidState("This payment is already being made.")
    return await _subscribe(deps, link, session, payment_method, address)


async def _pay_once(
    deps: Deps,
    link: PaymentLinkRow,
    session: CheckoutSessionRow,
    payment_method: str,
    email: str,
    return_url: str,
) -> Outcome:
    try:
        outcome = await checkout.pay(
            deps, session, payment_method=payment_method, email=email, return_url=return_url
        )
    except PaygridError:
        await release(deps, link, session.id)
        raise
    return await settle(deps, link, outcome)


async def _subscribe(
    deps: Deps,
    link: PaymentLinkRow,
    session: CheckoutSessionRow,
    payment_method: str,
    email: str,
) -> Outcome:
    tenant = Tenant(link.merchant_id, link.livemode)
    try:
        customer = await customers.create_customer(
            deps,
            tenant,
            CustomerCreate(email=email, metadata={"payment_link": link.id}),
        )
        await saved_methods.save_for_future(
            deps,
            tenant,
            method_id=payment_method,
            customer_id=customer.id,
            source_id=session.id,
            mandate_data=None,
        )
        items = await links_db.line_items(deps.pool, [link.id])
        params = SubscriptionCreate.model_validate(
            {
                "customer": customer.id,
                "items": [{"price": i.price_id, "quantity": i.quantity} for i in items],
                "default_payment_method": payment_method,
                "payment_behavior": "error_if_incomplete",
                "metadata": {"payment_link": link.id, "checkout_session": session.id},
            },
            strict=False,
        )
        subscription = await create_subscription(deps, tenant, params)
    except CardError as error:
        await release(deps, link, session.id)
        return Outcome(Result.DECLINED, session, message=error.message)
    except PaygridError:
        await release(deps, link, session.id)
        raise
    if subscription.status is not SubscriptionStatus.ACTIVE or not subscription.latest_invoice:
        await release(deps, link, session.id)
        return Outcome(Result.DECLINED, session, message="Your card could not be charged.")
    invoice = await invoices.get_invoice(deps, tenant, subscription.latest_invoice)
    assert invoice.payment is not None
    linked = await sessions_db.link_payment(deps.pool, session.id, invoice.payment)
    completed = await complete_session(deps, linked or session, invoice.payment)
    payment = await payments.get_payment(deps, tenant, invoice.payment)
    outcome = Outcome(Result.SUCCEEDED, completed, payment)
    return await settle(
        deps, link, outcome, subscription_id=subscription.id, customer_id=customer.id
    )


async def returned(deps: Deps, link: PaymentLinkRow, session: CheckoutSessionRow) -> Outcome:
    """Back from 3-D Secure or a provider's page: the hosted checkout learns the outcome;
    the link records the completion or gives the slot back."""
    return await settle(deps, link, await checkout.returned(deps, session))
