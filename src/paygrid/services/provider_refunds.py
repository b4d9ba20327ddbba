"""Import a refund made at the provider (in its dashboard) that paygrid never saw: a
``succeeded`` refund of the payment, with ``refund.created`` and ``refund.succeeded``, in
one transaction. Its money already moved at the provider, so nothing is sent to it; the
provider's refund id is its ``provider_reference`` and, through the idempotency key
``provider_refund:<id>``, it is imported once however often it is asked.

A restore also imports a refund paygrid made that the provider still has ``pending``: it
comes back as paygrid's own refund path leaves a refund the provider accepted but has not
settled (``refunds._accepted``): ``pending`` with the provider's reference, its amount
reserved on the payment, ``refund.created``, a ``pending`` refund attempt and a status sync
due, so the provider's webhook or status sync settles it with the usual events. A failed
provider refund moved no money and is never imported."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import assert_never

from paygrid.connectors.base import OperationResult
from paygrid.db import payments as payments_db
from paygrid.db import refunds as refunds_db
from paygrid.db import transactions
from paygrid.db.executor import Connection
from paygrid.db.payments import AttemptRow, PaymentRow
from paygrid.db.refunds import RefundRow
from paygrid.dependencies import Deps
from paygrid.domain.events import EventType
from paygrid.domain.payments import AttemptOperation
from paygrid.domain.reconciliation import RefundState
from paygrid.domain.refunds import RefundStatus
from paygrid.ids import new_id
from paygrid.schemas.refunds import Refund
from paygrid.services.payments import operations as provider_operations
from paygrid.services.snapshots import emit_object

# More work for the import's transaction, given the refund (a reconciliation run marks its
# discrepancy healed in it).
Work = Callable[[Connection, RefundRow], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ProviderSideRefund:
    merchant_id: str
    livemode: bool
    payment_id: str
    provider_reference: str
    amount: int
    currency: str
    # A refund paygrid made, re-imported by a restore: its own id and the merchant's key
    # (from the provider's metadata), so that the merchant's retry finds it.
    refund_id: str | None = None
    idempotency_key: str | None = None
    # SUCCEEDED (its money moved) or PENDING (a restore's refund of paygrid's, still pending
    # at the provider); a FAILED one is refused: no money moved, there is nothing to import.
    state: RefundState = RefundState.SUCCEEDED


async def import_provider_refund(
    deps: Deps, refund: ProviderSideRefund, *, also: Work | None = None
) -> RefundRow | None:
    """The imported refund (or the one imported before); ``None`` when the payment cannot
    take it (not succeeded, another currency, or less left to refund than the provider
    says), which stays for a person. ``also`` runs in the same transaction once the refund exists."""
    if refund.state is RefundState.FAILED:
        raise ValueError("a failed provider refund moved no money: there is nothing to import")

    async def work(conn: Connection) -> RefundRow | None:
        payment = await payments_db.find_payment(
            conn, refund.merchant_id, refund.livemode, refund.payment_id, lock=True
        )
        if payment is None:
            return None
        key = refund.idempotency_key or f"provider_refund:{refund.provider_reference}"
        existing = await refunds_db.find_by_idempotency_key(conn, payment.id, key)
        if existing is None and refund.currency == payment.currency.strip().upper():
            existing = await _insert(deps, conn, payment, refund, key)
        if existing is not None and also is not None:
            await also(conn, existing)
        return existing

    return await transactions.run(deps.pool, work)


async def _insert(
    deps: Deps, conn: Connection, payment: PaymentRow, refund: ProviderSideRefund, key: str
) -> RefundRow | None:
    now = deps.clock.now()
    if await payments_db.reserve_refund(conn, refund.payment_id, refund.amount, now) is None:
        return None
    created = await refunds_db.insert_refund(
        conn,
        refund_id=refund.refund_id or new_id("re"),
        merchant_id=refund.merchant_id,
        livemode=refund.livemode,
        payment_id=refund.payment_id,
        amount=refund.amount,
        currency=payment.currency,
        reason=None,
        metadata={},
        idempotency_key=key,
        created_at=now,
    )
    await emit_object(
        conn, created, EventType.REFUND_CREATED, Refund.from_row(created).model_dump(mode="json")
    )
    match refund.state:
        case RefundState.SUCCEEDED:
            return await _succeeded(conn, created, refund.provider_reference)
        case RefundState.PENDING:
            return await _pending(deps, conn, payment, created, refund.provider_reference, now)
        case RefundState.FAILED:
            raise ValueError("a failed provider refund is never imported")
        case _:
            assert_never(refund.state)


async def _succeeded(conn: Connection, created: RefundRow, provider_reference: str) -> RefundRow:
    finished = await refunds_db.finish_refund(
        conn,
        created.id,
        status=RefundStatus.SUCCEEDED,
        provider_reference=provider_reference,
        failure_reason=None,
    )
    assert finished is not None, "a refund inserted in this transaction is pending"
    view = Refund.from_row(finished).model_dump(mode="json")
    await emit_object(conn, finished, EventType.REFUND_SUCCEEDED, view)
    return finished


async def _pending(
    deps: Deps,
    conn: Connection,
    payment: PaymentRow,
    created: RefundRow,
    provider_reference: str,
    now: datetime,
) -> RefundRow:
    """As ``refunds._accepted`` leaves a refund the provider answered "pending": a refund
    attempt recorded ``pending`` with the provider's reference, the refund keeping that
    reference and due for status sync (the provider's webhook usually settles it first)."""
    attempt = await provider_operations.begin(
        conn, payment, AttemptOperation.REFUND, created.amount, now=now, refund_id=created.id
    )
    await record_accepted(conn, attempt, provider_reference, now)
    marked = await refunds_db.mark_accepted(
        conn, created.id, provider_reference=provider_reference, next_sync_at=first_sync_at(deps)
    )
    assert marked is not None, "a refund inserted in this transaction is pending"
    return marked


async def record_accepted(
    conn: Connection, attempt: AttemptRow, provider_reference: str, now: datetime
) -> None:
    """Record a refund attempt the provider has accepted but not settled (its refund found
    at the provider afterwards), as ``refunds._accepted`` records a live "pending" answer."""
    accepted = OperationResult(False, provider_reference, pending=True)
    await provider_operations.record(conn, attempt, provider_operations.Outcome(accepted, 0, now))


def first_sync_at(deps: Deps) -> datetime:
    """When status sync first asks the provider about such a refund."""
    return deps.clock.now() + timedelta(seconds=deps.settings.sync_delays()[0])
