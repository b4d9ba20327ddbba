"""What the hosted checkout page does: pay a session (a tokenized card, or a provider's hosted
page), and learn how it ended when the customer comes back.

A session has at most one payment, created with the idempotency key ``checkout:<session>``
and linked by a guarded UPDATE (``checkout_sessions.payment_id`` is UNIQUE); the payment's
own state machine lets it succeed once. So double submits and second tabs pay once."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from paygrid.db import checkout_sessions as sessions_db
from paygrid.db import payments as payments_db
from paygrid.db.checkout_sessions import CheckoutSessionRow
from paygrid.dependencies import Deps
from paygrid.domain.checkout import CheckoutSessionStatus
from paygrid.domain.errors import CardError, InvalidRequest, PaymentInvalidState
from paygrid.domain.payment_methods import PaymentMethodType
from paygrid.domain.payments import PaymentStatus
from paygrid.schemas.payments import Payment, PaymentConfirm, PaymentCreate
from paygrid.services import payments
from paygrid.services.checkout_sessions import CheckoutSessionInvalidState, complete_session
from paygrid.services.context import Tenant
from paygrid.services.payments import sync_authorization
from paygrid.services.snapshots import payment_view

CARD = PaymentMethodType.CARD
# The session row as the hosted page's routes hold it (``web`` does not import ``paygrid.db``).
SessionRow = CheckoutSessionRow


class Result(StrEnum):
    SUCCEEDED = "succeeded"  # the session is complete
    REDIRECT = "redirect"  # send the customer to ``url`` (3-D Secure, a provider's page)
    DECLINED = "declined"  # show ``message``; the customer may pay again
    PROCESSING = "processing"  # the provider has not answered yet
    UNPAID = "unpaid"  # nothing happened yet (a return without a payment)


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    session: CheckoutSessionRow
    payment: Payment | None = None
    url: str | None = None
    message: str | None = None


def idempotency_key(session_id: str) -> str:
    return f"checkout:{session_id}"


def redirect_types(session: CheckoutSessionRow) -> list[PaymentMethodType]:
    """The session's methods paid on a provider's page rather than the card form."""
    return [t for t in session.payment_method_types if t is not CARD]


async def pay(
    deps: Deps,
    session: CheckoutSessionRow,
    *,
    payment_method: str | None,
    email: str | None,
    return_url: str,
) -> Outcome:
    """Pay the open session with a tokenized card (``payment_method``), or, without one, at
    the provider's hosted page. A decline leaves the payment ready for another card."""
    if session.status is not CheckoutSessionStatus.OPEN:
        raise CheckoutSessionInvalidState(f"This checkout session is {session.status}.")
    tenant = Tenant(session.merchant_id, session.livemode)
    payment = await _session_payment(deps, tenant, session, email)
    if payment.status is PaymentStatus.SUCCEEDED:
        return await finish(deps, session, payment)
    params = PaymentConfirm(payment_method=payment_method, return_url=return_url)
    try:
        payment = await payments.confirm_payment(deps, tenant, payment.id, params)
    except CardError as error:
        return Outcome(Result.DECLINED, session, payment, message=error.message)
    except PaymentInvalidState:
        # Another submit of this session got there first: report where that one is.
        payment = await payments.get_payment(deps, tenant, payment.id)
    return await finish(deps, session, payment)


async def _session_payment(
    deps: Deps, tenant: Tenant, session: CheckoutSessionRow, email: str | None
) -> Payment:
    """The session's one payment: created on the first attempt to pay (an idempotent
    create, so two at once get the same one), then linked to the session."""
    receipt_email = session.customer_email or email
    if redirect_types(session) and receipt_email is None and session.customer_id is None:
        raise InvalidRequest("Enter your email address.", param="email")
    create = PaymentCreate.model_validate(
        {
            "amount": session.amount,
            "currency": session.currency,
            "customer": session.customer_id,
            "description": session.description,
            "payment_method_types": [str(t) for t in session.payment_method_types],
            "receipt_email": receipt_email,
            "metadata": {**session.metadata, "checkout_session": session.id},
        },
        strict=False,
    )
    payment = await payments.create_payment(deps, tenant, create, idempotency_key(session.id))
    if await sessions_db.link_payment(deps.pool, session.id, payment.id) is None:
        raise CheckoutSessionInvalidState("This checkout session is no longer open.")
    return payment


async def returned(deps: Deps, session: CheckoutSessionRow) -> Outcome:
    """The customer is back from 3-D Secure or a provider's page: learn the payment's outcome
    from the provider, then complete the session if it is paid."""
    if session.payment_id is None:
        return Outcome(Result.UNPAID, session)
    row = await payments_db.payment_by_id(deps.pool, session.payment_id)
    assert row is not None
    if row.status in (PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING):
        payment = await sync_authorization(deps, row)
    else:
        payment = await payment_view(deps.pool, row)
    return await finish(deps, session, payment)


async def finish(deps: Deps, session: CheckoutSessionRow, payment: Payment) -> Outcome:
    """What the page shows for the payment as it is now; a paid session is completed."""
    match payment.status:
        case PaymentStatus.SUCCEEDED | PaymentStatus.REQUIRES_CAPTURE:
            completed = await complete_session(deps, session, payment.id)
            return Outcome(Result.SUCCEEDED, completed, payment)
        case PaymentStatus.REQUIRES_ACTION:
            action = payment.next_action
            url = action.redirect_to_url.url if action is not None else None
            if url is None:
                return Outcome(Result.PROCESSING, session, payment)
            return Outcome(Result.REDIRECT, session, payment, url=url)
        case PaymentStatus.PROCESSING:
            return Outcome(Result.PROCESSING, session, payment)
        case (
            PaymentStatus.REQUIRES_PAYMENT_METHOD
            | PaymentStatus.REQUIRES_CONFIRMATION
            | PaymentStatus.CANCELED
        ):
            error = payment.last_payment_error
            return Outcome(
                Result.DECLINED if error is not None else Result.UNPAID,
                session,
                payment,
                message=error.message if error is not None else None,
            )
