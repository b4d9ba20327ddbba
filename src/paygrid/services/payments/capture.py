"""Capture all or part of an authorization."""

from __future__ import annotations

from paygrid.connectors.base import Capability
from paygrid.db import payments as payments_db
from paygrid.db import transactions
from paygrid.db.executor import Connection
from paygrid.db.payments import AttemptRow, PaymentRow, Transition
from paygrid.dependencies import Deps
from paygrid.domain import payments as domain
from paygrid.domain.errors import InvalidRequest
from paygrid.domain.events import EventType
from paygrid.domain.payments import AttemptOperation, PaymentAction, PaymentStatus
from paygrid.schemas.payments import Payment
from paygrid.services.context import Tenant
from paygrid.services.payments import operations
from paygrid.services.payments.locks import refused, require_payment
from paygrid.services.payments.views import emit_payment, view_of


async def capture_payment(
    deps: Deps, tenant: Tenant, payment_id: str, amount_to_capture: int | None
) -> Payment:
    """Capture all or part of an authorization; a partial capture releases the rest."""
    now = deps.clock.now()

    async def begin(conn: Connection) -> tuple[PaymentRow, AttemptRow]:
        payment = await require_payment(conn, tenant, payment_id, lock=True)
        domain.apply(payment.status, PaymentAction.CAPTURE)
        amount = amount_to_capture or payment.amount_capturable
        if amount > payment.amount_capturable:
            raise InvalidRequest(
                f"amount_to_capture ({amount}) is greater than amount_capturable "
                f"({payment.amount_capturable}).",
                param="amount_to_capture",
                code="amount_too_large",
            )
        if amount < payment.amount_capturable:
            await operations.require(conn, payment, Capability.PARTIAL_CAPTURE, "partial capture")
        attempt = await operations.begin(conn, payment, AttemptOperation.CAPTURE, amount, now=now)
        return payment, attempt

    payment, attempt = await transactions.run(deps.pool, begin)
    return await drive_capture(deps, tenant, payment, attempt)


async def drive_capture(
    deps: Deps,
    tenant: Tenant,
    payment: PaymentRow,
    attempt: AttemptRow,
    *,
    repeat: bool = False,
) -> Payment:
    """Make (or, for status sync, repeat with the same idempotency key) the capture call of
    ``attempt`` and record its answer."""
    reference = await operations.provider_reference(deps, payment.id)
    connector = await deps.connectors.connector_for(deps.pool, payment.connector_account_id)
    outcome = await operations.call(
        deps,
        attempt,
        lambda key: connector.capture(reference, attempt.amount, key),
        payment_id=payment.id,
        repeat=repeat,
    )

    async def finish(conn: Connection) -> Payment | None:
        # the payment row first, always
        current = await require_payment(conn, tenant, payment.id, lock=True)
        if not await operations.record(conn, attempt, outcome):
            return await view_of(conn, current)
        if not outcome.result.succeeded:
            return None  # the refusal is committed with the failed attempt
        return await apply_capture(deps, conn, current, attempt.amount)

    view = await transactions.run(deps.pool, finish)
    if view is None:
        raise await refused(deps, tenant, payment.id, AttemptOperation.CAPTURE, outcome)
    return view


async def apply_capture(
    deps: Deps, conn: Connection, payment: PaymentRow, captured: int
) -> Payment:
    """Move a (locked) payment to succeeded after the provider captured ``captured``; a
    payment that moved on meanwhile is returned as it is."""
    amounts = domain.amounts_after(PaymentAction.CAPTURE, payment.amount, captured)
    assert amounts is not None
    move = Transition(
        domain.allowed_sources(PaymentAction.CAPTURE),
        PaymentStatus.SUCCEEDED,
        {
            "amount_capturable": amounts.amount_capturable,
            "amount_received": amounts.amount_received,
        },
        deps.clock.now(),
    )
    updated = await payments_db.transition(conn, payment.id, move)
    if updated is None:
        return await view_of(conn, payment)
    return await emit_payment(conn, updated, EventType.PAYMENT_SUCCEEDED)
