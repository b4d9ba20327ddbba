"""A refund paygrid made whose provider answer was lost (a 5xx or a timeout after the
provider made it): it stays ``pending`` without the provider's id, with its refund attempt
open, and the provider's webhook for it matches nothing (webhooks find refunds by that id).
When the provider's refund turns up later, naming the refund through the id paygrid sent
along (Stripe's metadata, Paystack's note), in a restore's re-sync or a reconciliation run,
it is given back to that refund rather than imported a second time:

- the refund and its open attempt take the provider's id, in one transaction under the
  payment's row lock, as ``refunds._accepted`` records an accepted refund (status sync due);
- a final answer (succeeded or failed) then settles it through ``refunds.settle_from_provider``,
  the path webhooks and status sync take, with ``refund.succeeded`` or ``refund.failed`` (a
  failure releases the held amount); a pending one is left for the webhook or status sync.

Only the merchant's own refund of the very payment the provider refunded, still pending
without a reference, is touched: a forged note cannot reach another merchant's refund."""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from paygrid.connectors.base import OperationResult
from paygrid.db import payments as payments_db
from paygrid.db import refunds as refunds_db
from paygrid.db import transactions
from paygrid.db.executor import Connection
from paygrid.db.refunds import RefundRow
from paygrid.dependencies import Deps
from paygrid.domain.payments import AttemptStatus
from paygrid.domain.reconciliation import RefundState
from paygrid.services import refunds
from paygrid.services.provider_refunds import Work, first_sync_at, record_accepted

_OPEN = frozenset({AttemptStatus.PENDING, AttemptStatus.UNKNOWN})


@dataclass(frozen=True, slots=True)
class LostAnswer:
    """The provider's refund, as read from its list, and whom it names."""

    merchant_id: str
    livemode: bool
    connector_account_id: str
    payment_id: str  # the payment of the charge the provider refunded
    refund_id: str  # the paygrid refund the provider's refund names
    provider_reference: str
    state: RefundState
    amount: int | None = None  # the provider's amount, when known: it must be the refund's
    currency: str | None = None  # upper case, when known


async def reattach_refund(
    deps: Deps, lost: LostAnswer, *, also: Work | None = None
) -> RefundRow | None:
    """Attach the provider's id to the refund and settle it as the provider says; the refund
    as it is afterwards, or ``None`` when it is not a refund still waiting for that answer
    (another payment, already answered, another amount). ``also`` runs in the attaching
    transaction (a reconciliation run marks its discrepancy healed there)."""

    async def attach(conn: Connection) -> RefundRow | None:
        attached = await _attach(deps, conn, lost)
        if attached is not None and also is not None:
            await also(conn, attached)
        return attached

    attached = await transactions.run(deps.pool, attach)
    if attached is None:
        return None
    answer = _final_answer(lost)
    if answer is not None:
        await refunds.settle_from_provider(deps, attached, answer)
    return await refunds_db.get_refund(deps.pool, lost.merchant_id, lost.livemode, attached.id)


async def _attach(deps: Deps, conn: Connection, lost: LostAnswer) -> RefundRow | None:
    payment = await payments_db.find_payment(
        conn, lost.merchant_id, lost.livemode, lost.payment_id, lock=True
    )
    if payment is None or payment.connector_account_id != lost.connector_account_id:
        return None
    if lost.currency is not None and lost.currency != payment.currency.strip().upper():
        return None
    attempt = await payments_db.refund_attempt(conn, lost.refund_id)
    if attempt is None or attempt.provider_reference is not None or attempt.status not in _OPEN:
        return None
    attached = await refunds_db.attach_lost_reference(
        conn,
        refund_id=lost.refund_id,
        merchant_id=lost.merchant_id,
        livemode=lost.livemode,
        payment_id=payment.id,
        provider_reference=lost.provider_reference,
        amount=lost.amount,
        next_sync_at=first_sync_at(deps),
    )
    if attached is None:
        return None
    await record_accepted(conn, attempt, lost.provider_reference, deps.clock.now())
    return attached


def _final_answer(lost: LostAnswer) -> OperationResult | None:
    match lost.state:
        case RefundState.SUCCEEDED:
            return OperationResult(True, lost.provider_reference)
        case RefundState.FAILED:
            return OperationResult(False, lost.provider_reference, failure_reason="refund_failed")
        case RefundState.PENDING:
            return None
        case _:
            assert_never(lost.state)
