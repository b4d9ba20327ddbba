"""Capture and cancel (void) payments."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Final

import asyncpg

from paygrid.connectors.base import Capability
from paygrid.db import payments as payments_db
from paygrid.db import transactions
from paygrid.db.executor import Connection
from paygrid.domain import payments as domain
from paygrid.domain.errors import (
    CapabilityNotSupported,
    InvalidRequest,
    PaygridError,
    PaymentInvalidState,
    ResourceMissing,
)
from paygrid.domain.events import EventType
from paygrid.domain.payments import PaymentAction, PaymentStatus
from paygrid.schemas.payments import Payment
from paygrid.services import authorization, provider_operations, routing
from paygrid.services.context import Deps, Tenant
from paygrid.services.provider_operations import Outcome
from paygrid.services.snapshots import emit_payment, payment_view


async def capture_payment(
    deps: Deps, tenant: Tenant, payment_id: str, amount_to_capture: int | None
) -> Payment:
    """Capture all or part of an authorization; a partial capture releases the rest."""

    async def begin(conn: Connection) -> tuple[asyncpg.Record, asyncpg.Record]:
        payment = await _locked(conn, tenant, payment_id)
        domain.apply(PaymentStatus(payment["status"]), PaymentAction.CAPTURE)
        amount = amount_to_capture or payment["amount_capturable"]
        if amount > payment["amount_capturable"]:
            raise InvalidRequest(
                f"amount_to_capture ({amount}) is greater than amount_capturable "
                f"({payment['amount_capturable']}).",
                param="amount_to_capture",
                code="amount_too_large",
            )
        if amount < payment["amount_capturable"]:
            await require(conn, payment, Capability.PARTIAL_CAPTURE, "partial capture")
        return payment, await provider_operations.begin(conn, payment, "capture", amount)

    payment, attempt = await transactions.run(deps.pool, begin)
    return await drive_capture(deps, tenant, payment, attempt)


async def drive_capture(
    deps: Deps,
    tenant: Tenant,
    payment: asyncpg.Record,
    attempt: asyncpg.Record,
    *,
    repeat: bool = False,
) -> Payment:
    """Make (or, for status sync, repeat with the same idempotency key) the capture call of
    ``attempt`` and record its answer."""
    payment_id = payment["id"]
    reference = await _provider_reference(deps, payment_id)
    connector = await deps.connectors.connector_for(deps.pool, payment["connector_account_id"])
    outcome = await provider_operations.call(
        deps,
        attempt,
        lambda key: connector.capture(reference, attempt["amount"], key),
        payment_id=payment_id,
        repeat=repeat,
    )

    async def finish(conn: Connection) -> Payment | None:
        current = await _locked(conn, tenant, payment_id)  # the payment row first, always
        if not await provider_operations.record(conn, attempt, outcome):
            return await payment_view(conn, current)
        if not outcome.result.succeeded:
            return None  # the refusal is committed with the failed attempt
        return await apply_capture(conn, current, attempt["amount"])

    view = await transactions.run(deps.pool, finish)
    if view is None:
        raise await _refused(deps, tenant, payment_id, "capture", outcome)
    return view


async def apply_capture(conn: Connection, payment: asyncpg.Record, captured: int) -> Payment:
    """Move a (locked) payment to succeeded after the provider captured ``captured``; a
    payment that moved on meanwhile is returned as it is."""
    amounts = domain.amounts_after(PaymentAction.CAPTURE, payment["amount"], captured)
    assert amounts is not None
    updated = await payments_db.transition(
        conn,
        payment["id"],
        sources=domain.allowed_sources(PaymentAction.CAPTURE),
        target=PaymentStatus.SUCCEEDED,
        changes={
            "amount_capturable": amounts.amount_capturable,
            "amount_received": amounts.amount_received,
        },
    )
    if updated is None:
        return await payment_view(conn, payment)
    return await emit_payment(conn, updated, EventType.PAYMENT_SUCCEEDED)


async def cancel_payment(
    deps: Deps, tenant: Tenant, payment_id: str, reason: str | None
) -> Payment:
    """Cancel a payment; an authorization (or pending authentication) is voided at the
    provider first, so no money can move afterwards."""

    async def begin(conn: Connection) -> tuple[asyncpg.Record, asyncpg.Record | None]:
        payment = await _locked(conn, tenant, payment_id)
        domain.apply(PaymentStatus(payment["status"]), PaymentAction.CANCEL)
        holds_funds = payment["status"] in (
            PaymentStatus.REQUIRES_CAPTURE,
            PaymentStatus.REQUIRES_ACTION,
        )
        if payment["status"] == PaymentStatus.REQUIRES_CAPTURE:
            await require(conn, payment, Capability.VOID, "void")
        # A pending redirect at a provider that cannot void (Paystack) simply lapses there.
        if holds_funds and Capability.VOID not in await _capabilities(conn, payment):
            holds_funds = False
        if not holds_funds:
            return payment, None
        return payment, await provider_operations.begin(conn, payment, "void", 0)

    payment, attempt = await transactions.run(deps.pool, begin)
    return await drive_void(deps, tenant, payment, attempt, reason)


async def drive_void(
    deps: Deps,
    tenant: Tenant,
    payment: asyncpg.Record,
    attempt: asyncpg.Record | None,
    reason: str | None,
    *,
    repeat: bool = False,
) -> Payment:
    """Make (or repeat, with the same idempotency key) the void call of ``attempt``, if
    any, and cancel the payment once nothing can move money any more."""
    payment_id = payment["id"]
    outcome = None
    if attempt is not None:
        reference = await _provider_reference(deps, payment_id)
        connector = await deps.connectors.connector_for(deps.pool, payment["connector_account_id"])
        outcome = await provider_operations.call(
            deps,
            attempt,
            lambda key: connector.void(reference, key),
            payment_id=payment_id,
            repeat=repeat,
        )

    async def finish(conn: Connection) -> tuple[Payment | None, str]:
        current = await _locked(conn, tenant, payment_id)  # the payment row first, always
        if attempt is not None and outcome is not None:
            recorded = await provider_operations.record(conn, attempt, outcome)
            if recorded and not outcome.result.succeeded:
                return None, _REFUSED  # committed with the failed attempt
        return await apply_cancel(conn, current, reason, deps.clock.now()), current["status"]

    # Errors are raised after the commit, so a recorded provider answer is never rolled back.
    view, status = await transactions.run(deps.pool, finish)
    if status == _REFUSED:
        assert outcome is not None
        raise await _refused(deps, tenant, payment_id, "void", outcome)
    if view is None:
        raise domain.invalid_state(status, PaymentAction.CANCEL)
    return view


_REFUSED: Final = "refused by the provider"


async def apply_cancel(
    conn: Connection, payment: asyncpg.Record, reason: str | None, now: datetime
) -> Payment | None:
    """Move a (locked) payment to canceled once nothing can move money any more; ``None``
    when its status does not allow it."""
    updated = await payments_db.transition(
        conn,
        payment["id"],
        sources=domain.allowed_sources(PaymentAction.CANCEL),
        target=PaymentStatus.CANCELED,
        changes={
            "amount_capturable": 0,
            "next_action": None,
            "cancellation_reason": reason,
            "canceled_at": now,
        },
    )
    if updated is None:
        if payment["status"] == PaymentStatus.CANCELED:
            return await payment_view(conn, payment)
        return None
    return await emit_payment(conn, updated, EventType.PAYMENT_CANCELED)


async def _refused(
    deps: Deps, tenant: Tenant, payment_id: str, operation: str, outcome: Outcome
) -> PaymentInvalidState:
    """The provider refused a capture or void (its attempt is recorded ``failed``). When
    the payment still waits on its customer, the refusal usually means the customer already
    finished at the provider (denied or approved 3-D Secure), so the authorization is synced
    first: the 409 then names the status the payment really is in, from which the documented
    next steps (confirm with another method, capture, cancel) work."""
    payment = await _get(deps, tenant, payment_id)
    if payment["status"] == PaymentStatus.REQUIRES_ACTION:
        with contextlib.suppress(PaygridError):  # the 409 reaches the client regardless
            await authorization.sync_authorization(deps, payment)
        payment = await _get(deps, tenant, payment_id)
    what = "capture" if operation == "capture" else "void the authorization"
    return PaymentInvalidState(
        f"The provider refused to {what} ({outcome.result.failure_reason}); "
        f"the payment has a status of {payment['status']}.",
        current_status=payment["status"],
    )


async def _capabilities(conn: Connection, payment: asyncpg.Record) -> Capability:
    return (await routing.target_of(conn, payment["connector_account_id"])).capabilities


async def require(
    conn: Connection, payment: asyncpg.Record, capability: Capability, what: str
) -> None:
    """400 ``capability_not_supported`` when the payment's connector cannot do ``what``."""
    if capability not in await _capabilities(conn, payment):
        raise CapabilityNotSupported(
            f"The {payment['connector']} connector does not support {what}.",
            param="amount" if "partial" in what else None,
        )


async def _locked(conn: Connection, tenant: Tenant, payment_id: str) -> asyncpg.Record:
    row = await payments_db.get_payment(
        conn, tenant.merchant_id, tenant.livemode, payment_id, lock=True
    )
    if row is None:
        raise ResourceMissing(f"No such payment: '{payment_id}'", param="id")
    return row


async def _get(deps: Deps, tenant: Tenant, payment_id: str) -> asyncpg.Record:
    row = await payments_db.get_payment(deps.pool, tenant.merchant_id, tenant.livemode, payment_id)
    assert row is not None, "a payment is never deleted"
    return row


async def _provider_reference(deps: Deps, payment_id: str) -> str:
    attempt = await payments_db.latest_authorization(deps.pool, payment_id)
    assert attempt is not None, "a payment holding funds has an authorization with a reference"
    return str(attempt["provider_reference"])
