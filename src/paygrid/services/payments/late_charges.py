"""Give back money paid on a payment that was already canceled."""

from __future__ import annotations

import contextlib

import structlog

from paygrid.connectors.base import AttemptResult
from paygrid.db import payments as payments_db
from paygrid.db.payments import AttemptRow, PaymentRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import ProviderUnavailable
from paygrid.domain.events import EventType
from paygrid.domain.payments import AttemptOperation, AttemptOutcome, AttemptStatus, PaymentStatus
from paygrid.services.payments import operations
from paygrid.services.payments.attempts import new_attempt
from paygrid.services.payments.views import emit_payment

log = structlog.get_logger("paygrid.authorization")

_RETURNS = frozenset({AttemptOperation.REFUND, AttemptOperation.VOID})


async def return_late_charge(
    deps: Deps,
    payment: PaymentRow,
    attempt: AttemptRow,
    result: AttemptResult,
) -> None:
    """The customer paid at the provider after the payment was canceled (Paystack's page
    cannot be closed): give the money back at once, and record the call as an attempt. Only
    the process that recorded the late answer does this, so it happens once."""
    current = await payments_db.payment_by_id(deps.pool, payment.id)
    assert current is not None
    reference = result.provider_reference or attempt.provider_reference
    if current.status is not PaymentStatus.CANCELED or reference is None:
        return
    if await _already_returned(deps, current):
        return
    connector = await deps.connectors.connector_for(deps.pool, attempt.connector_account_id)
    refund = result.outcome is not AttemptOutcome.AUTHORIZED
    giving_back = new_attempt(
        current.id,
        AttemptOperation.REFUND if refund else AttemptOperation.VOID,
        connector=attempt.connector,
        account_id=attempt.connector_account_id,
        amount=current.amount if refund else 0,
        now=deps.clock.now(),
    )
    log.warning(
        "payment.late_charge_returned",
        payment_id=current.id,
        attempt_id=attempt.id,
        operation=giving_back.operation.value,
    )
    await payments_db.insert_attempt(deps.pool, giving_back)
    with contextlib.suppress(ProviderUnavailable):
        outcome = await operations.call(
            deps,
            giving_back,
            lambda key: (
                connector.refund(reference, current.amount, key)
                if refund
                else connector.void(reference, key)
            ),
            payment_id=current.id,
        )
        async with deps.pool.acquire() as conn, conn.transaction():
            # The merchant hears of it: payment.updated, its attempts showing the return.
            if await operations.record(conn, giving_back, outcome):
                await emit_payment(conn, current, EventType.PAYMENT_UPDATED)


async def _already_returned(deps: Deps, payment: PaymentRow) -> bool:
    return any(
        row.operation in _RETURNS
        and row.refund_id is None
        and row.status is not AttemptStatus.UNREACHABLE
        for row in await payments_db.attempts_of(deps.pool, [payment.id])
    )
