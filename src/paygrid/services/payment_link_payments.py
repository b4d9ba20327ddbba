"""Paying a payment link's checkout session: the slot first, then the money.

A one-time link's session is paid by the hosted checkout's use case (one payment per
session, idempotent). A recurring link's session makes a customer from the entered email
and an incomplete subscription, whose first invoice the customer pays on the page,
on-session (3-D Secure included), saving the card for the renewals
(``payment_link_subscriptions``); the session is then complete with the invoice's
payment. A first payment still processing, or waiting for 3-D Secure, keeps the slot until
it ends (the return page, or the settle path of slots held too long)."""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from paygrid.db.checkout_sessions import CheckoutSessionRow
from paygrid.db.payment_links import PaymentLinkRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import InvalidRequest, PaygridError
from paygrid.domain.payment_links import LinkSessionStatus
from paygrid.schemas.common import Email
from paygrid.services import checkout, payment_link_subscriptions
from paygrid.services.checkout import Outcome, Result
from paygrid.services.checkout_sessions import CheckoutSessionInvalidState
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
    if not newly:  # another submit of this session: where its payment stands
        return await _again(deps, link, session)
    return await _subscribe(deps, link, session, payment_method, address, return_url)


async def _again(deps: Deps, link: PaymentLinkRow, session: CheckoutSessionRow) -> Outcome:
    """A second submit while the session holds its slot: back to the 3-D Secure challenge
    (or the processing page) of the first; nothing is released here, as the first submit
    may still be making the subscription."""
    state = await payment_link_subscriptions.resume(deps, link, session)
    if state.outcome.result in (Result.REDIRECT, Result.PROCESSING, Result.SUCCEEDED):
        return await _settled(deps, link, state)
    raise CheckoutSessionInvalidState("This payment is already being made.")


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
    return_url: str,
) -> Outcome:
    try:
        state = await payment_link_subscriptions.start(
            deps,
            link,
            session,
            payment_method=payment_method,
            email=email,
            return_url=return_url,
        )
    except PaygridError:
        # The slot goes back only if the first invoice is neither paid nor being paid:
        # ``resume`` asks, as the settle path does.
        await _settle_subscription(deps, link, session)
        raise
    return await _settled(deps, link, state)


async def _settle_subscription(
    deps: Deps, link: PaymentLinkRow, session: CheckoutSessionRow
) -> Outcome:
    return await _settled(deps, link, await payment_link_subscriptions.resume(deps, link, session))


async def _settled(
    deps: Deps, link: PaymentLinkRow, state: payment_link_subscriptions.Subscribed
) -> Outcome:
    return await settle(
        deps,
        link,
        state.outcome,
        subscription_id=state.subscription_id,
        customer_id=state.customer_id,
    )


async def returned(deps: Deps, link: PaymentLinkRow, session: CheckoutSessionRow) -> Outcome:
    """Back from 3-D Secure or a provider's page: the hosted checkout (or, for a recurring
    link, the first invoice) learns the outcome; the link records the completion or gives
    the slot back (a payment still processing keeps it)."""
    if is_recurring(link):
        return await _settle_subscription(deps, link, session)
    return await settle(deps, link, await checkout.returned(deps, session))
