"""Capture and cancel (void) payments."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from paygrid.connectors.base import Capability
from paygrid.db import payments as payments_db
from paygrid.db.executor import Connection
from paygrid.domain import payments as domain
from paygrid.domain.errors import (
    CapabilityNotSupported,
    InvalidRequest,
    PaymentInvalidState,
    ResourceMissing,
)
from paygrid.domain.events import EventType
from paygrid.domain.payments import PaymentAction, PaymentStatus
from paygrid.schemas.payments import Payment
from paygrid.services import provider_operations, routing
from paygrid.services.context import Deps, Tenant
from paygrid.services.snapshots import emit_payment, payment_view


async def capture_payment(
    deps: Deps, tenant: Tenant, payment_id: str, amount_to_capture: int | None
) -> Payment:
    """Capture all or part of an authorization; a partial capture releases the rest."""
    async with deps.pool.acquire() as conn, conn.transaction():
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
        attempt = await provider_operations.begin(conn, payment, "capture", amount)
    reference = await _provider_reference(deps, payment_id)
    connector = await deps.connectors.connector_for(deps.pool, payment["connector_account_id"])
    outcome = await provider_operations.call(
        deps,
        attempt,
        lambda key: connector.capture(reference, attempt["amount"], key),
        payment_id=payment_id,
    )
    async with deps.pool.acquire() as conn, conn.transaction():
        if not await provider_operations.record(conn, attempt, outcome):
            return await payment_view(conn, await _locked(conn, tenant, payment_id))
        if not outcome.result.succeeded:
            raise PaymentInvalidState(
                f"The provider refused the capture ({outcome.result.failure_reason}).",
                current_status=payment["status"],
            )
        amounts = domain.amounts_after(PaymentAction.CAPTURE, payment["amount"], attempt["amount"])
        assert amounts is not None
        updated = await payments_db.transition(
            conn,
            payment_id,
            sources=domain.allowed_sources(PaymentAction.CAPTURE),
            target=PaymentStatus.SUCCEEDED,
            changes={
                "amount_capturable": amounts.amount_capturable,
                "amount_received": amounts.amount_received,
            },
        )
        if updated is None:
            return await payment_view(conn, await _locked(conn, tenant, payment_id))
        return await emit_payment(conn, updated, EventType.PAYMENT_SUCCEEDED)


async def cancel_payment(
    deps: Deps, tenant: Tenant, payment_id: str, reason: str | None
) -> Payment:
    """Cancel a payment; an authorization (or pending authentication) is voided at the
    provider first, so no money can move afterwards."""
    async with deps.pool.acquire() as conn, conn.transaction():
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
        attempt = await provider_operations.begin(conn, payment, "void", 0) if holds_funds else None
    if attempt is not None:
        reference = await _provider_reference(deps, payment_id)
        connector = await deps.connectors.connector_for(deps.pool, payment["connector_account_id"])
        outcome = await provider_operations.call(
            deps, attempt, lambda key: connector.void(reference, key), payment_id=payment_id
        )
    async with deps.pool.acquire() as conn, conn.transaction():
        if attempt is not None:
            recorded = await provider_operations.record(conn, attempt, outcome)
            if recorded and not outcome.result.succeeded:
                raise PaymentInvalidState(
                    "The provider refused to void the authorization "
                    f"({outcome.result.failure_reason}).",
                    current_status=payment["status"],
                )
        updated = await payments_db.transition(
            conn,
            payment_id,
            sources=domain.allowed_sources(PaymentAction.CANCEL),
            target=PaymentStatus.CANCELED,
            changes={
                "amount_capturable": 0,
                "next_action": None,
                "cancellation_reason": reason,
                "canceled_at": datetime.now(UTC),
            },
        )
        if updated is None:
            current = await _locked(conn, tenant, payment_id)
            if current["status"] == PaymentStatus.CANCELED:
                return await payment_view(conn, current)
            raise domain.invalid_state(current["status"], PaymentAction.CANCEL)
        return await emit_payment(conn, updated, EventType.PAYMENT_CANCELED)


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


async def _provider_reference(deps: Deps, payment_id: str) -> str:
    attempt = await payments_db.latest_authorization(deps.pool, payment_id)
    assert attempt is not None, "a payment holding funds has an authorization with a reference"
    return str(attempt["provider_reference"])
