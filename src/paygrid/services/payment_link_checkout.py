"""What a payment link's public page does: open a checkout session for the link, take a
completion slot before any money moves, pay (a one-time payment through the hosted
checkout's use case, or a customer and a subscription for recurring prices), and record
the completion or give the slot back.

The slot is the concurrency guard: ``db.payment_links.take_slot`` is one guarded UPDATE,
so with ``limit: 1`` and many customers paying at once exactly one gets the slot; the
others are told the link is no longer available before a payment (or customer) exists."""

from __future__ import annotations

import secrets
from datetime import timedelta

import structlog

from paygrid.db import checkout_sessions as sessions_db
from paygrid.db import payment_link_sessions as link_sessions_db
from paygrid.db import payment_links as links_db
from paygrid.db.checkout_sessions import CheckoutSessionRow, NewCheckoutSession
from paygrid.db.payment_link_sessions import LinkSessionRow
from paygrid.db.payment_links import PaymentLinkRow
from paygrid.dependencies import Deps
from paygrid.domain.checkout import CheckoutSessionStatus
from paygrid.domain.errors import PaygridError
from paygrid.domain.payment_links import (
    AfterCompletion,
    Availability,
    LinkSessionStatus,
    availability,
)
from paygrid.domain.payment_methods import PaymentMethodType
from paygrid.ids import new_id
from paygrid.services import checkout, payment_link_subscriptions, payments
from paygrid.services.checkout import Outcome, Result
from paygrid.services.checkout_sessions import DEFAULT_LIFETIME, expire_if_due
from paygrid.services.context import Tenant
from paygrid.services.payment_links import priced_items

log = structlog.get_logger("paygrid.services.payment_link_checkout")
# A slot held this long by a payment that never got under way goes back.
STALE_RESERVATION = timedelta(hours=1)
# The rows as the page's routes hold them (``web`` does not import ``paygrid.db``).
LinkRow = PaymentLinkRow


class PaymentLinkUnavailable(PaygridError):
    """This payment link is no longer available."""

    status_code = 410
    error_type = "invalid_request_error"
    default_code = "payment_link_unavailable"


async def link_by_slug(deps: Deps, slug: str) -> PaymentLinkRow | None:
    return await links_db.get_link_by_slug(deps.pool, slug)


async def link_status(deps: Deps, link: PaymentLinkRow) -> Availability:
    """Whether the link may be paid now (on the deps clock). A link whose slots are all
    taken first settles those held too long (``settle_stale``)."""
    now = deps.clock.now()
    full = link.completion_limit is not None and link.reserved_count >= link.completion_limit
    if full and await settle_stale(deps, link):
        fresh = await links_db.get_link_unscoped(deps.pool, link.id)
        assert fresh is not None
        link = fresh
    return availability(
        active=link.active,
        expires_at=link.expires_at,
        completion_limit=link.completion_limit,
        reserved_count=link.reserved_count,
        now=now,
    )


async def open_session(deps: Deps, link: PaymentLinkRow) -> CheckoutSessionRow:
    """A new checkout session for the link's line items (each visit gets its own, as
    Stripe's links do); the link's page shows it."""
    if (state := await link_status(deps, link)) is not Availability.AVAILABLE:
        raise PaymentLinkUnavailable(f"This payment link is {state}.")
    now = deps.clock.now()
    priced = await priced_items(deps.pool, await links_db.line_items(deps.pool, [link.id]))
    session_id = new_id("cs")
    base = f"{deps.settings.base_url()}/l/{link.slug}"
    success_url = f"{base}/c/{session_id}/complete"
    if link.after_completion is AfterCompletion.REDIRECT and link.redirect_url is not None:
        success_url = link.redirect_url
    new = NewCheckoutSession(
        id=session_id,
        merchant_id=link.merchant_id,
        livemode=link.livemode,
        amount=sum(price.unit_amount * item.quantity for item, price, _ in priced),
        currency=link.currency,
        customer_id=None,
        customer_email=None,
        description=", ".join(f"{item.quantity} x {name}" for item, _, name in priced),
        success_url=success_url,
        cancel_url=base,
        payment_method_types=[PaymentMethodType.CARD],
        metadata={"payment_link": link.id},
        form_token=secrets.token_urlsafe(24),
        expires_at=now + DEFAULT_LIFETIME,
    )
    async with deps.pool.acquire() as conn, conn.transaction():
        session = await sessions_db.insert_session(conn, new)
        await link_sessions_db.insert_session(
            conn,
            LinkSessionRow(
                checkout_session_id=session.id,
                payment_link_id=link.id,
                merchant_id=link.merchant_id,
                livemode=link.livemode,
                status=LinkSessionStatus.OPEN,
                payment_id=None,
                subscription_id=None,
                customer_id=None,
                customer_email=None,
                reserved_at=None,
                completed_at=None,
                created_at=now,
            ),
        )
    return session


async def session_of_link(
    deps: Deps, link: PaymentLinkRow, session_id: str
) -> tuple[CheckoutSessionRow, LinkSessionRow] | None:
    """The link's checkout session (expired first if it is past its expiry), or ``None``
    if the session is not one of this link's."""
    link_session = await link_sessions_db.session_of(deps.pool, session_id)
    if link_session is None or link_session.payment_link_id != link.id:
        return None
    session = await sessions_db.get_session_unscoped(deps.pool, session_id)
    assert session is not None
    return await expire_if_due(deps, session), link_session


async def reserve(
    deps: Deps, link: PaymentLinkRow, session: CheckoutSessionRow, email: str
) -> tuple[LinkSessionStatus, bool]:
    """Take a completion slot for the session, in one transaction, before anything is
    charged: its status, and whether this call took the slot (a session that holds one
    already keeps it: a double submit). Raises ``PaymentLinkUnavailable`` when the link is
    inactive, expired or every slot is taken."""
    if session.status is not CheckoutSessionStatus.OPEN:
        raise PaymentLinkUnavailable("This checkout is no longer open.")
    await link_status(deps, link)  # stale slots go back first
    now = deps.clock.now()
    async with deps.pool.acquire() as conn, conn.transaction():
        marked = await link_sessions_db.mark_reserved(conn, session.id, email, now)
        if marked is None:
            current = await link_sessions_db.session_of(conn, session.id)
            assert current is not None
            return current.status, False
        if not await link_sessions_db.take_slot(conn, link.id, now):
            raise PaymentLinkUnavailable(
                "Sorry, this payment link is no longer available: nothing was charged."
            )
    log.info("payment_link.slot_reserved", link=link.id, session=session.id)
    return LinkSessionStatus.RESERVED, True


async def settle(
    deps: Deps,
    link: PaymentLinkRow,
    outcome: Outcome,
    *,
    subscription_id: str | None = None,
    customer_id: str | None = None,
) -> Outcome:
    """Record the completion of a paid session, or give a failed one's slot back (a
    payment still under way, at 3-D Secure or a provider, keeps it)."""
    session = outcome.session
    async with deps.pool.acquire() as conn, conn.transaction():
        if outcome.result is Result.SUCCEEDED:
            done = await link_sessions_db.complete(
                conn,
                session.id,
                deps.clock.now(),
                payment_id=session.payment_id,
                subscription_id=subscription_id,
                customer_id=customer_id,
            )
            if done is not None:
                log.info("payment_link.completed", link=link.id, session=session.id)
        elif outcome.result in (Result.DECLINED, Result.UNPAID):
            await link_sessions_db.release_idle(conn, link.id, session.id)
    return outcome


async def release(deps: Deps, link: PaymentLinkRow, session_id: str) -> None:
    """Give the session's slot back unless its payment is under way (after an error)."""
    async with deps.pool.acquire() as conn, conn.transaction():
        await link_sessions_db.release_idle(conn, link.id, session_id)


async def settle_stale(deps: Deps, link: PaymentLinkRow) -> int:
    """Settle the slots held longer than ``STALE_RESERVATION``: the payment is asked for
    its outcome (as when the customer comes back; for a recurring link, the payment of
    the first invoice of the subscription the session made); one that succeeded while its
    customer never came back is completed; one still waiting for 3-D Secure is canceled
    (voided: no money can move afterwards); one still processing keeps its slot; then a
    failed or canceled one, or none at all, gives its slot back. Returns how many were
    settled."""
    before = deps.clock.now() - STALE_RESERVATION
    stale = await link_sessions_db.stale_sessions(deps.pool, link.id, before)
    tenant = Tenant(link.merchant_id, link.livemode)
    for session_id in stale:
        session = await sessions_db.get_session_unscoped(deps.pool, session_id)
        assert session is not None
        try:
            if link.recurring_interval is not None:
                # The first invoice of the subscription the session made, if any (found
                # even after a crash before the session settled).
                state = await payment_link_subscriptions.abandon(deps, link, session)
                await settle(
                    deps,
                    link,
                    state.outcome,
                    subscription_id=state.subscription_id,
                    customer_id=state.customer_id,
                )
                continue
            outcome = await checkout.returned(deps, session)
            if outcome.result is Result.REDIRECT and outcome.payment is not None:
                await payments.cancel_payment(deps, tenant, outcome.payment.id, "abandoned")
                outcome = Outcome(Result.UNPAID, session)
        except PaygridError as error:  # the provider did not answer: next time
            log.warning("payment_link.stale_unsettled", session=session_id, code=error.code)
            continue
        await settle(deps, link, outcome)
    return len(stale)
