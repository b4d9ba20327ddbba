"""A recurring payment link's session: the customer (from the entered email) and an
``incomplete`` subscription whose first invoice is then paid ON-session, the customer
being on the page: a card that asks for 3-D Secure sends them to authenticate and back to
the link's page (``/l/{slug}/c/{session}/return``), and the card is saved to the customer
for the renewals (``setup_future_usage: off_session``, with its mandate) once it pays, then
made the customer's default. The hosted invoice page pays an invoice the same way
(``invoice_payments.attempt_payment(present=...)``).

Each step is recorded on the link's session as soon as it exists (the customer, then the
subscription), so whatever crashes, ``resume`` finds the first invoice and learns how its
payment ended: the settle path (``payment_link_checkout``) never gives back the slot of a
paid subscription. Nothing here records the completion or gives the slot back: the caller
settles the ``Outcome``."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from paygrid.db import checkout_sessions as sessions_db
from paygrid.db import customers as customers_db
from paygrid.db import payment_link_sessions as link_sessions_db
from paygrid.db import payment_links as links_db
from paygrid.db import payments as payments_db
from paygrid.db import subscriptions as subs_db
from paygrid.db.checkout_sessions import CheckoutSessionRow
from paygrid.db.invoices import InvoiceRow
from paygrid.db.payment_links import PaymentLinkRow
from paygrid.dependencies import Deps
from paygrid.domain import invoices as invoice_domain
from paygrid.domain.errors import CardError, InvalidRequest
from paygrid.domain.invoices import InvoiceStatus
from paygrid.domain.payments import PaymentStatus
from paygrid.domain.subscriptions import SubscriptionStatus
from paygrid.schemas.customers import CustomerCreate, CustomerUpdate
from paygrid.schemas.payments import Payment
from paygrid.schemas.subscriptions import SubscriptionCreate
from paygrid.services import customers, payments
from paygrid.services.billing import invoice_outcomes, invoice_payments
from paygrid.services.billing.invoice_payments import CustomerPresent
from paygrid.services.billing.invoices import load
from paygrid.services.billing.subscriptions.create import create_subscription
from paygrid.services.checkout import Outcome, Result
from paygrid.services.checkout_sessions import complete_session
from paygrid.services.context import Tenant
from paygrid.services.payments import sync_authorization
from paygrid.services.payments import views as payment_views

log = structlog.get_logger("paygrid.services.payment_link_subscriptions")
_UNDER_WAY = frozenset({PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING})


@dataclass(frozen=True, slots=True)
class Subscribed:
    """How the session's first invoice stands, and what the session made."""

    outcome: Outcome
    subscription_id: str | None = None
    customer_id: str | None = None


async def start(
    deps: Deps,
    link: PaymentLinkRow,
    session: CheckoutSessionRow,
    *,
    payment_method: str,
    email: str,
    return_url: str,
) -> Subscribed:
    """Make (or, after a decline on this session, reuse) the customer and its incomplete
    subscription, then charge the first invoice on-session with ``payment_method``."""
    customer_id, subscription_id = await prepare(deps, link, session, email)
    sub = await subs_db.get_by_id(deps.pool, subscription_id)
    assert sub is not None and sub.latest_invoice_id is not None
    tenant = Tenant(link.merchant_id, link.livemode)
    invoice_id = sub.latest_invoice_id
    present = CustomerPresent(return_url=return_url, save_method=True)
    async with invoice_payments.taking_turns(deps, invoice_id):
        row = await load(deps.pool, tenant, invoice_id)
        if row.status is not InvoiceStatus.OPEN:
            return await _by_invoice(deps, tenant, session, row, subscription_id, customer_id)
        try:
            payment = await invoice_payments.attempt_payment(
                deps, tenant, row, payment_method, off_session=False, present=present
            )
            if payment.status is not PaymentStatus.REQUIRES_ACTION:
                await invoice_outcomes.settle_attempt(deps, tenant, row, payment)
        except CardError as error:
            outcome = Outcome(Result.DECLINED, session, message=error.message)
            return Subscribed(outcome, subscription_id, customer_id)
    row = await load(deps.pool, tenant, invoice_id)
    return await _by_payment(deps, tenant, session, row, payment, subscription_id, customer_id)


async def prepare(
    deps: Deps, link: PaymentLinkRow, session: CheckoutSessionRow, email: str
) -> tuple[str, str]:
    """The session's customer and subscription, each recorded on the link's session in
    the transaction right after it is made. A subscription of this session still
    ``incomplete`` (a declined card) is reused: its first invoice is paid again."""
    tenant = Tenant(link.merchant_id, link.livemode)
    current = await link_sessions_db.session_of(deps.pool, session.id)
    assert current is not None
    customer_id = current.customer_id
    if customer_id is None or not await _same_customer(deps, tenant, customer_id, email):
        created = await customers.create_customer(
            deps, tenant, CustomerCreate(email=email, metadata={"payment_link": link.id})
        )
        customer_id = created.id
        await _record(deps, session.id, customer_id, None)
    elif current.subscription_id is not None:
        sub = await subs_db.get_by_id(deps.pool, current.subscription_id)
        if (
            sub is not None
            and sub.customer_id == customer_id
            and sub.status is SubscriptionStatus.INCOMPLETE
        ):
            return customer_id, sub.id
    items = await links_db.line_items(deps.pool, [link.id])
    params = SubscriptionCreate.model_validate(
        {
            "customer": customer_id,
            "items": [{"price": i.price_id, "quantity": i.quantity} for i in items],
            # Finalized, not charged: the first invoice is paid on the page, on-session.
            "payment_behavior": "default_incomplete",
            "metadata": {"payment_link": link.id, "checkout_session": session.id},
        },
        strict=False,
    )
    subscription = await create_subscription(deps, tenant, params)
    await _record(deps, session.id, customer_id, subscription.id)
    return customer_id, subscription.id


async def _same_customer(deps: Deps, tenant: Tenant, customer_id: str, email: str) -> bool:
    """Whether the session's customer (from an earlier, declined submit) is the one now
    paying: the same email, and not deleted meanwhile."""
    row = await customers_db.get_customer(
        deps.pool, tenant.merchant_id, tenant.livemode, customer_id
    )
    if row is None or row.deleted or row.email is None:
        return False
    return row.email.lower() == email.lower()


async def _record(
    deps: Deps, session_id: str, customer_id: str, subscription_id: str | None
) -> None:
    async with deps.pool.acquire() as conn, conn.transaction():
        await link_sessions_db.record_subscriber(
            conn, session_id, customer_id=customer_id, subscription_id=subscription_id
        )


async def resume(deps: Deps, link: PaymentLinkRow, session: CheckoutSessionRow) -> Subscribed:
    """How the session's first invoice stands now (back from 3-D Secure, a second
    submit, or the settle path after a crash): the payment of its current attempt is asked
    of its provider and settled on the invoice; ``UNPAID`` when nothing was charged."""
    tenant = Tenant(link.merchant_id, link.livemode)
    current = await link_sessions_db.session_of(deps.pool, session.id)
    assert current is not None
    customer_id, subscription_id = current.customer_id, current.subscription_id
    if subscription_id is None and customer_id is not None:
        subscription_id = await link_sessions_db.subscription_made_for(
            deps.pool, customer_id, session.id
        )
    sub = None if subscription_id is None else await subs_db.get_by_id(deps.pool, subscription_id)
    if sub is None or sub.latest_invoice_id is None:
        return Subscribed(Outcome(Result.UNPAID, session), None, customer_id)
    row = await load(deps.pool, tenant, sub.latest_invoice_id)
    if row.status is not InvoiceStatus.OPEN:
        return await _by_invoice(deps, tenant, session, row, sub.id, customer_id)
    key = invoice_domain.attempt_key(row.id, row.attempt_count + 1)
    found = await payments_db.get_by_idempotency_key(deps.pool, row.merchant_id, row.livemode, key)
    if found is None:
        return Subscribed(_unpaid(session, row), sub.id, customer_id)
    if found.status in _UNDER_WAY:
        payment = await sync_authorization(deps, found)
    else:
        payment = await payment_views.view_of(deps.pool, found)
    if payment.status is not PaymentStatus.REQUIRES_ACTION:
        try:
            async with invoice_payments.taking_turns(deps, row.id):
                fresh = await load(deps.pool, tenant, row.id)
                if fresh.attempt_count == row.attempt_count and fresh.status is row.status:
                    await invoice_outcomes.settle_attempt(deps, tenant, fresh, payment)
        except CardError:
            pass  # counted as the attempt's failure: the payment's error is the answer
    row = await load(deps.pool, tenant, row.id)
    return await _by_payment(deps, tenant, session, row, payment, sub.id, customer_id)


async def abandon(deps: Deps, link: PaymentLinkRow, session: CheckoutSessionRow) -> Subscribed:
    """The settle path, for a slot held too long: a first payment still waiting for 3-D
    Secure is canceled (no money can move afterwards) and counted as failed; one that
    succeeded meanwhile completes the session; one still processing keeps its slot."""
    state = await resume(deps, link, session)
    payment = state.outcome.payment
    if state.outcome.result is not Result.REDIRECT or payment is None:
        return state
    tenant = Tenant(link.merchant_id, link.livemode)
    await payments.cancel_payment(deps, tenant, payment.id, "abandoned")
    return await resume(deps, link, session)


def _unpaid(session: CheckoutSessionRow, row: InvoiceRow) -> Outcome:
    error = row.last_payment_error
    message = None if error is None else error.get("message")
    return Outcome(Result.DECLINED if message else Result.UNPAID, session, message=message)


async def _by_payment(
    deps: Deps,
    tenant: Tenant,
    session: CheckoutSessionRow,
    row: InvoiceRow,
    payment: Payment,
    subscription_id: str,
    customer_id: str | None,
) -> Subscribed:
    """What the page shows for the first invoice ``row`` and its attempt's ``payment``."""
    if row.status is not InvoiceStatus.OPEN:
        return await _by_invoice(deps, tenant, session, row, subscription_id, customer_id)
    match payment.status:
        case PaymentStatus.REQUIRES_ACTION:
            action = payment.next_action
            url = None if action is None else action.redirect_to_url.url
            result = Result.PROCESSING if url is None else Result.REDIRECT
            outcome = Outcome(result, session, payment, url=url)
        case PaymentStatus.PROCESSING | PaymentStatus.REQUIRES_CAPTURE:
            # Not known yet: the slot stays held; the return page (or the settle path) asks again.
            outcome = Outcome(Result.PROCESSING, session, payment)
        case _:
            error = payment.last_payment_error
            message = "Your card could not be charged." if error is None else error.message
            outcome = Outcome(Result.DECLINED, session, payment, message=message)
    return Subscribed(outcome, subscription_id, customer_id)


async def _by_invoice(
    deps: Deps,
    tenant: Tenant,
    session: CheckoutSessionRow,
    row: InvoiceRow,
    subscription_id: str,
    customer_id: str | None,
) -> Subscribed:
    """A first invoice that is no longer open: paid, the session completes with its
    payment and the card becomes the customer's default; void, nothing was taken."""
    if row.status is not InvoiceStatus.PAID or row.payment_id is None:
        return Subscribed(Outcome(Result.UNPAID, session), subscription_id, customer_id)
    payment = await payments.get_payment(deps, tenant, row.payment_id)
    await _make_default(deps, tenant, row.customer_id, payment.payment_method)
    linked = await sessions_db.link_payment(deps.pool, session.id, row.payment_id)
    completed = await complete_session(deps, linked or session, row.payment_id)
    return Subscribed(Outcome(Result.SUCCEEDED, completed, payment), subscription_id, customer_id)


async def _make_default(deps: Deps, tenant: Tenant, customer_id: str, method: str | None) -> None:
    """The card the customer authenticated becomes what the renewals charge."""
    if method is None:
        return
    update = CustomerUpdate.model_validate(
        {"invoice_settings": {"default_payment_method": method}}, strict=False
    )
    try:
        await customers.update_customer(deps, tenant, customer_id, update)
    except InvalidRequest as error:  # the card was not kept: renewals ask the customer
        log.warning("payment_link.default_not_set", customer=customer_id, code=error.code)
