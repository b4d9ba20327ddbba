"""Checkout sessions over the API: create, retrieve, list, expire; and the publishable key
the hosted page embeds. (What the page itself does is ``paygrid.services.checkout``.)"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from paygrid.db import checkout_sessions as sessions_db
from paygrid.db.checkout_sessions import CheckoutSessionRow, NewCheckoutSession
from paygrid.db.executor import Connection
from paygrid.db.pagination import PageRequest
from paygrid.dependencies import Deps
from paygrid.domain.checkout import CheckoutSessionStatus
from paygrid.domain.errors import InvalidRequest, PaygridError, ResourceMissing
from paygrid.domain.events import EventType
from paygrid.domain.payment_methods import PaymentMethodType
from paygrid.domain.url_safety import check_redirect_url
from paygrid.ids import new_id
from paygrid.money import get_currency, validate_amount
from paygrid.schemas.checkout_sessions import (
    CheckoutSession,
    CheckoutSessionCreate,
    CheckoutStatus,
)
from paygrid.schemas.common import MAX_METADATA_KEYS
from paygrid.services import payment_methods
from paygrid.services.context import Tenant
from paygrid.services.merchants import issue_key
from paygrid.services.snapshots import emit_object

DEFAULT_LIFETIME = timedelta(hours=24)
MIN_LIFETIME = timedelta(minutes=30)
CHECKOUT_KEY_NAME = "Hosted checkout"


class CheckoutSessionInvalidState(PaygridError):
    """The checkout session is not in a state that allows this operation."""

    status_code = 409
    error_type = "invalid_request_error"
    default_code = "checkout_session_invalid_state"


async def create_session(
    deps: Deps, tenant: Tenant, params: CheckoutSessionCreate, now: datetime | None = None
) -> CheckoutSession:
    """Validate and store a session; its hosted page is ``url``."""
    now = now or deps.clock.now()
    currency = get_currency(params.currency)
    validate_amount(params.amount, currency)
    for param in ("success_url", "cancel_url"):
        check_redirect_url(getattr(params, param), livemode=tenant.livemode, param=param)
    if params.customer is not None and params.customer_email is not None:
        raise InvalidRequest(
            "Pass customer or customer_email, not both (the customer's email is used).",
            param="customer_email",
        )
    if len(params.metadata) >= MAX_METADATA_KEYS:
        raise InvalidRequest(
            f"metadata can have at most {MAX_METADATA_KEYS - 1} keys here: the payment gets "
            "them and one more, checkout_session.",
            param="metadata",
        )
    email = params.customer_email
    if params.customer is not None:
        await payment_methods.require_customer(deps.pool, tenant, params.customer)
    sent = params.payment_method_types
    types = [PaymentMethodType(t) for t in sent] if sent else [PaymentMethodType.CARD]
    new = NewCheckoutSession(
        id=new_id("cs"),
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        amount=params.amount,
        currency=currency.code,
        customer_id=params.customer,
        customer_email=email,
        description=params.description,
        success_url=params.success_url,
        cancel_url=params.cancel_url,
        payment_method_types=list(dict.fromkeys(types)),
        metadata=params.metadata,
        form_token=secrets.token_urlsafe(24),
        expires_at=_expiry(params.expires_at, now),
    )
    return view(deps, await sessions_db.insert_session(deps.pool, new))


def _expiry(expires_at: int | None, now: datetime) -> datetime:
    if expires_at is None:
        return now + DEFAULT_LIFETIME
    if not now.timestamp() + MIN_LIFETIME.total_seconds() <= expires_at:
        raise InvalidRequest("expires_at must be at least 30 minutes from now.", param="expires_at")
    if expires_at > now.timestamp() + DEFAULT_LIFETIME.total_seconds():
        raise InvalidRequest("expires_at must be at most 24 hours from now.", param="expires_at")
    return datetime.fromtimestamp(expires_at, UTC)


def view(deps: Deps, row: CheckoutSessionRow) -> CheckoutSession:
    return CheckoutSession.from_row(row, deps.settings.base_url())


async def get_session(deps: Deps, tenant: Tenant, session_id: str) -> CheckoutSession:
    row = await sessions_db.get_session(deps.pool, tenant.merchant_id, tenant.livemode, session_id)
    if row is None:
        raise ResourceMissing(f"No such checkout_session: '{session_id}'", param="id")
    return view(deps, await expire_if_due(deps, row))


async def list_sessions(
    deps: Deps,
    tenant: Tenant,
    page: PageRequest,
    *,
    status: CheckoutStatus | None,
    payment: str | None,
) -> tuple[list[CheckoutSession], bool]:
    rows, has_more = await sessions_db.list_sessions(
        deps.pool,
        tenant.merchant_id,
        tenant.livemode,
        page,
        status=None if status is None else CheckoutSessionStatus(status),
        payment=payment,
    )
    return [view(deps, row) for row in rows], has_more


async def expire_session(deps: Deps, tenant: Tenant, session_id: str) -> CheckoutSession:
    """Stop the session taking payments. A complete session cannot expire; an expired one
    is returned as it is. A payment already on its way at a provider's page is not
    canceled: if the customer finishes it, the session still completes."""
    row = await sessions_db.get_session(deps.pool, tenant.merchant_id, tenant.livemode, session_id)
    if row is None:
        raise ResourceMissing(f"No such checkout_session: '{session_id}'", param="id")
    async with deps.pool.acquire() as conn, conn.transaction():
        expired = await sessions_db.expire(conn, session_id)
        if expired is not None:
            await _emit(deps, conn, expired, EventType.CHECKOUT_SESSION_EXPIRED)
            return view(deps, expired)
    current = await sessions_db.get_session_unscoped(deps.pool, session_id)
    assert current is not None
    if current.status is CheckoutSessionStatus.COMPLETE:
        raise CheckoutSessionInvalidState(
            "This checkout session is complete (it was paid); it cannot be expired.",
        )
    return view(deps, current)


async def expire_if_due(deps: Deps, row: CheckoutSessionRow) -> CheckoutSessionRow:
    """An open session past ``expires_at`` is expired now (sessions expire lazily, when
    next read)."""
    now = deps.clock.now()
    if row.status is not CheckoutSessionStatus.OPEN or row.expires_at > now:
        return row
    async with deps.pool.acquire() as conn, conn.transaction():
        expired = await sessions_db.expire(conn, row.id, due_by=now)
        if expired is not None:
            await _emit(deps, conn, expired, EventType.CHECKOUT_SESSION_EXPIRED)
            return expired
    current = await sessions_db.get_session_unscoped(deps.pool, row.id)
    assert current is not None
    return current


async def complete_session(
    deps: Deps, row: CheckoutSessionRow, payment_id: str
) -> CheckoutSessionRow:
    """open -> complete once its payment succeeded, with ``checkout_session.completed``;
    a second caller (double submit, another tab) finds it complete and changes nothing."""
    async with deps.pool.acquire() as conn, conn.transaction():
        completed = await sessions_db.complete(conn, row.id, payment_id, deps.clock.now())
        if completed is not None:
            await _emit(deps, conn, completed, EventType.CHECKOUT_SESSION_COMPLETED)
            return completed
    current = await sessions_db.get_session_unscoped(deps.pool, row.id)
    assert current is not None
    return current


async def _emit(deps: Deps, conn: Connection, row: CheckoutSessionRow, event: EventType) -> None:
    await emit_object(conn, row, event, view(deps, row).model_dump(mode="json"))


async def hosted_page_key(deps: Deps, merchant_id: str, livemode: bool) -> str:
    """The publishable key the hosted page tokenizes cards with: one per merchant and mode,
    issued on first use (and again if the merchant revoked it)."""
    found = await sessions_db.checkout_key(deps.pool, merchant_id, livemode)
    if found is not None:
        return found
    async with deps.pool.acquire() as conn, conn.transaction():
        await sessions_db.lock_checkout_key(conn, merchant_id, livemode)
        found = await sessions_db.checkout_key(conn, merchant_id, livemode)
        if found is not None:
            return found
        issued = await issue_key(conn, merchant_id, "publishable", livemode, CHECKOUT_KEY_NAME)
        await sessions_db.save_checkout_key(conn, merchant_id, livemode, issued.id, issued.secret)
        return issued.secret
