"""Cancel a payment, voiding its authorization at the provider first."""

from __future__ import annotations

from datetime import datetime

from paygrid.connectors.base import Capability
from paygrid.db import payments as payments_db
from paygrid.db import transactions
from paygrid.db.executor import Connection
from paygrid.db.payments import AttemptRow, PaymentRow, Transition
from paygrid.dependencies import Deps
from paygrid.domain import payments as domain
from paygrid.domain.events import EventType
from paygrid.domain.payments import AttemptOperation, PaymentAction, PaymentStatus
from paygrid.schemas.payments import Payment
from paygrid.services.context import Tenant
from paygrid.services.payments import operations
from paygrid.services.payments.locks import refused, require_payment
from paygrid.services.payments.views import emit_payment, view_of

# Statuses in which the provider may hold the customer's money (or be about to).
_HOLDS_FUNDS = frozenset({PaymentStatus.REQUIRES_CAPTURE, PaymentStatus.REQUIRES_ACTION})


async def cancel_payment(
    deps: Deps, tenant: Tenant, payment_id: str, reason: str | None
) -> Payment:
    """Cancel a payment; an authorization (or pending authentication) is voided at the
    provider first, so no money can move afterwards."""
    now = deps.clock.now()

    async def begin(conn: Connection) -> tuple[PaymentRow, AttemptRow | None]:
        payment = await require_payment(conn, tenant, payment_id, lock=True)
        domain.apply(payment.status, PaymentAction.CANCEL)
        if payment.status is PaymentStatus.REQUIRES_CAPTURE:
            await operations.require(conn, payment, Capability.VOID, "void")
        # A pending redirect at a provider that cannot void (Paystack) simply lapses there.
        if payment.status not in _HOLDS_FUNDS or Capability.VOID not in (
            await operations.capabilities(conn, payment)
        ):
            return payment, None
        void = await operations.begin(conn, payment, AttemptOperation.VOID, 0, now=now)
        return payment, void

    payment, attempt = await transactions.run(deps.pool, begin)
    return await drive_void(deps, tenant, payment, attempt, reason)


async def drive_void(
    deps: Deps,
    tenant: Tenant,
    payment: PaymentRow,
    attempt: AttemptRow | None,
    reason: str | None,
    *,
    repeat: bool = False,
) -> Payment:
    """Make (or repeat, with the same idempotency key) the void call of ``attempt``, if
    any, and cancel the payment once nothing can move money any more."""
    outcome = None
    if attempt is not None:
        reference = await operations.provider_reference(deps, payment.id)
        connector = await deps.connectors.connector_for(deps.pool, payment.connector_account_id)
        outcome = await operations.call(
            deps,
            attempt,
            lambda key: connector.void(reference, key),
            payment_id=payment.id,
            repeat=repeat,
        )

    async def finish(conn: Connection) -> tuple[Payment | None, PaymentStatus, bool]:
        # the payment row first, always
        current = await require_payment(conn, tenant, payment.id, lock=True)
        if attempt is not None and outcome is not None:
            recorded = await operations.record(conn, attempt, outcome)
            if recorded and not outcome.result.succeeded:
                return None, current.status, True  # committed with the failed attempt
        canceled = await apply_cancel(conn, current, reason, deps.clock.now())
        return canceled, current.status, False

    # Errors are raised after the commit, so a recorded provider answer is never rolled back.
    view, status, was_refused = await transactions.run(deps.pool, finish)
    if was_refused:
        assert outcome is not None
        raise await refused(deps, tenant, payment.id, AttemptOperation.VOID, outcome)
    if view is None:
        raise domain.invalid_state(status, PaymentAction.CANCEL)
    return view


async def apply_cancel(
    conn: Connection, payment: PaymentRow, reason: str | None, now: datetime
) -> Payment | None:
    """Move a (locked) payment to canceled once nothing can move money any more; ``None``
    when its status does not allow it."""
    move = Transition(
        domain.allowed_sources(PaymentAction.CANCEL),
        PaymentStatus.CANCELED,
        {
            "amount_capturable": 0,
            "next_action": None,
            "cancellation_reason": reason,
            "canceled_at": now,
        },
        now,
    )
    updated = await payments_db.transition(conn, payment.id, move)
    if updated is None:
        if payment.status is PaymentStatus.CANCELED:
            return await view_of(conn, payment)
        return None
    return await emit_payment(conn, updated, EventType.PAYMENT_CANCELED)
