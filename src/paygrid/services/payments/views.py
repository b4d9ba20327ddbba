"""A payment's public shape, from its typed rows, for responses and event payloads."""

from __future__ import annotations

from collections.abc import Sequence

from paygrid.db import events as events_db
from paygrid.db import payments as payments_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.payments import AttemptRow, PaymentRow
from paygrid.dependencies import Deps
from paygrid.domain.events import EventType
from paygrid.schemas.payments import Payment
from paygrid.services.context import Tenant


def tenant_of(payment: PaymentRow) -> Tenant:
    return Tenant(payment.merchant_id, payment.livemode)


async def view_of(conn: Executor, payment: PaymentRow) -> Payment:
    return Payment.from_row(payment, await payments_db.attempts_of(conn, [payment.id]))


async def current_view(deps: Deps, payment_id: str) -> Payment:
    """The payment as it is now (after another request or process changed it)."""
    payment = await payments_db.payment_by_id(deps.pool, payment_id)
    assert payment is not None, "a payment is never deleted"
    return await view_of(deps.pool, payment)


async def emit_payment(
    conn: Connection,
    payment: PaymentRow,
    event_type: EventType,
    attempts: Sequence[AttemptRow] | None = None,
) -> Payment:
    """Write ``event_type`` with the payment's snapshot in the caller's transaction; pass
    ``attempts`` when the caller already holds all of them, to save a query."""
    view = await view_of(conn, payment) if attempts is None else Payment.from_row(payment, attempts)
    await events_db.insert_event(
        conn,
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        event_type=event_type.value,
        object_id=payment.id,
        snapshot=view.model_dump(mode="json"),
    )
    return view
