"""Refunds. The refundable balance is reserved under the payment's row lock before the
provider is called, so concurrent refunds can never exceed what was captured."""

from __future__ import annotations

from datetime import datetime, timedelta

from paygrid.connectors.base import Capability, OperationResult
from paygrid.db import payments as payments_db
from paygrid.db import refunds as refunds_db
from paygrid.db import transactions
from paygrid.db.executor import Connection
from paygrid.db.pagination import PageRequest
from paygrid.db.payments import AttemptRow, PaymentRow
from paygrid.db.refunds import RefundRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import (
    InvalidRequest,
    PaymentInvalidState,
    ProviderUnavailable,
    RefundExceedsAvailable,
    ResourceMissing,
)
from paygrid.domain.events import EventType
from paygrid.domain.payments import AttemptOperation, AttemptStatus, PaymentStatus, refundable
from paygrid.domain.refunds import RefundStatus
from paygrid.ids import new_id
from paygrid.schemas.refunds import Refund, RefundCreate
from paygrid.services import routing
from paygrid.services.context import Tenant
from paygrid.services.payments import operations as provider_operations
from paygrid.services.payments.operations import Outcome
from paygrid.services.snapshots import emit_object


async def create_refund(
    deps: Deps, tenant: Tenant, params: RefundCreate, idempotency_key: str | None
) -> Refund:
    """Refund all or part of a succeeded payment."""

    async def reserve(conn: Connection) -> tuple[PaymentRow, RefundRow, Reserved]:
        payment = await payments_db.find_payment(
            conn, tenant.merchant_id, tenant.livemode, params.payment, lock=True
        )
        if payment is None:
            raise InvalidRequest(
                f"No such payment: '{params.payment}'", param="payment", code="resource_missing"
            )
        if idempotency_key is not None:
            existing = await refunds_db.find_by_idempotency_key(conn, payment.id, idempotency_key)
            if existing is not None:
                return payment, existing, None
        now = deps.clock.now()
        return payment, *await _reserve(conn, payment, params, idempotency_key, now)

    payment, refund, attempt = await transactions.run(deps.pool, reserve)
    if attempt is None:
        return await _resume(deps, payment, refund)
    return await _execute(deps, payment, refund, attempt)


Reserved = AttemptRow | None  # the new refund's attempt; None for an existing refund


def _refundable(payment: PaymentRow) -> int:
    """What is left to refund (pending refunds count: their amount is reserved)."""
    if payment.status is not PaymentStatus.SUCCEEDED:
        raise PaymentInvalidState(
            f"You cannot refund this payment because it has a status of {payment.status}; "
            "only a succeeded payment can be refunded.",
            param="payment",
            current_status=payment.status,
        )
    available = refundable(payment.amount_received, payment.amount_refunded)
    if available <= 0:
        raise RefundExceedsAvailable(
            "This payment has already been fully refunded.",
            param="payment",
            code="charge_already_refunded",
        )
    return available


async def _reserve(
    conn: Connection,
    payment: PaymentRow,
    params: RefundCreate,
    idempotency_key: str | None,
    now: datetime,
) -> tuple[RefundRow, AttemptRow]:
    available = _refundable(payment)
    amount = params.amount if params.amount is not None else available
    await provider_operations.require(conn, payment, Capability.REFUND, "refunds")
    if 0 < amount < payment.amount_received:
        await provider_operations.require(
            conn, payment, Capability.PARTIAL_REFUND, "partial refunds"
        )
    if (
        not 0 < amount <= available
        or await payments_db.reserve_refund(conn, payment.id, amount, now) is None
    ):
        raise RefundExceedsAvailable(
            f"Refund amount ({amount}) is greater than the amount still refundable ({available}).",
            param="amount",
        )
    refund = await refunds_db.insert_refund(
        conn,
        refund_id=new_id("re"),
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        payment_id=payment.id,
        amount=amount,
        currency=payment.currency,
        reason=params.reason,
        metadata=params.metadata,
        idempotency_key=idempotency_key,
        created_at=now,
    )
    attempt = await provider_operations.begin(
        conn, payment, AttemptOperation.REFUND, amount, now=now, refund_id=refund.id
    )
    await emit_object(
        conn, refund, EventType.REFUND_CREATED, Refund.from_row(refund).model_dump(mode="json")
    )
    return refund, attempt


async def _execute(
    deps: Deps,
    payment: PaymentRow,
    refund: RefundRow,
    attempt: AttemptRow,
    *,
    repeat: bool = False,
) -> Refund:
    """Call the provider (keyed by the refund id) and settle the refund."""
    connector = await deps.connectors.connector_for(deps.pool, payment.connector_account_id)
    authorization = await payments_db.latest_authorization(deps.pool, payment.id)
    assert authorization is not None, "a succeeded payment has an authorization"
    reference = authorization.provider_reference
    assert reference is not None
    try:
        outcome = await provider_operations.call(
            deps,
            attempt,
            lambda _attempt_id: connector.refund(
                reference,
                refund.amount,
                refund.id,
                merchant_idempotency_key=refund.idempotency_key,
            ),
            payment_id=payment.id,
            repeat=repeat,
        )
    except ProviderUnavailable as error:
        if error.code in provider_operations.NOTHING_HAPPENED:  # release the reservation
            await _settle(deps, refund, attempt, None)
        raise
    return await _settle(deps, refund, attempt, outcome)


async def _settle(
    deps: Deps, refund: RefundRow, attempt: AttemptRow, outcome: Outcome | None
) -> Refund:
    if outcome is not None and outcome.result.pending:
        return await _accepted(deps, refund, attempt, outcome)
    succeeded = outcome is not None and outcome.result.succeeded
    failure = (
        None
        if succeeded
        else (outcome.result.failure_reason if outcome else "provider_unavailable")
    )

    async def settle(conn: Connection) -> Refund:
        await payments_db.lock_payment(conn, refund.payment_id)  # the payment row first
        updated = await refunds_db.finish_refund(
            conn,
            refund.id,
            status=RefundStatus.SUCCEEDED if succeeded else RefundStatus.FAILED,
            provider_reference=outcome.result.provider_reference if outcome else None,
            failure_reason=failure,
            # never reached the provider: a retry with the same key must try again afresh
            forget_idempotency_key=outcome is None,
        )
        if updated is None:  # another request already settled it
            current = await refunds_db.get_refund(
                conn, refund.merchant_id, refund.livemode, refund.id
            )
            assert current is not None
            return Refund.from_row(current)
        if outcome is not None:
            await provider_operations.record(conn, attempt, outcome)
        if not succeeded:
            await payments_db.release_refund(
                conn, refund.payment_id, refund.amount, deps.clock.now()
            )
        view = Refund.from_row(updated)
        event = EventType.REFUND_SUCCEEDED if succeeded else EventType.REFUND_FAILED
        await emit_object(conn, updated, event, view.model_dump(mode="json"))
        return view

    return await transactions.run(deps.pool, settle)


async def _accepted(deps: Deps, refund: RefundRow, attempt: AttemptRow, outcome: Outcome) -> Refund:
    """The provider took the refund but settles it later (Paystack): it stays pending with
    the provider's reference until a webhook or status sync says how it ended."""
    delay = timedelta(seconds=deps.settings.sync_delays()[0])

    async def accept(conn: Connection) -> RefundRow | None:
        await payments_db.lock_payment(conn, refund.payment_id)  # the payment row first
        await provider_operations.record(conn, attempt, outcome)
        return await refunds_db.mark_accepted(
            conn,
            refund.id,
            provider_reference=outcome.result.provider_reference,
            next_sync_at=deps.clock.now() + delay,
        )

    updated = await transactions.run(deps.pool, accept)
    return Refund.from_row(updated or refund)


async def settle_from_provider(deps: Deps, refund: RefundRow, result: OperationResult) -> bool:
    """Apply a provider's final word on a pending refund (webhook or status sync).
    Idempotent: False when the refund was already settled or the result is not final."""
    if result.pending:
        return False
    attempt = await payments_db.refund_attempt(deps.pool, refund.id)
    assert attempt is not None
    view = await _settle(deps, refund, attempt, Outcome(result, 0, deps.clock.now()))
    return refund.status is RefundStatus.PENDING and RefundStatus(view.status) is not refund.status


async def _resume(deps: Deps, payment: PaymentRow, refund: RefundRow) -> Refund:
    """A retried request whose refund row exists: finish it if it is still pending."""
    attempt = await payments_db.refund_attempt(deps.pool, refund.id)
    if refund.status is not RefundStatus.PENDING or attempt is None or refund.provider_reference:
        return Refund.from_row(refund)
    if attempt.status is AttemptStatus.UNKNOWN:
        target = await routing.target_of(
            deps.pool, payment.connector_account_id, deps.connectors.providers
        )
        if Capability.IDEMPOTENT_REFUNDS not in target.capabilities:
            # The first call may have reached the provider and it cannot deduplicate: sending
            # it again could refund twice. It stays pending until the provider's webhook
            # (or an operator reconciling) settles it.
            return Refund.from_row(refund)
    return await _execute(deps, payment, refund, attempt)


async def recover_attempt(deps: Deps, payment: PaymentRow, attempt: AttemptRow) -> bool:
    """Status sync: a refund call whose process died mid-call (its attempt still open) is
    asked about by repeating it with the same idempotency key, at providers that deduplicate
    refunds (the answer is the first call's result; nothing is refunded twice). Elsewhere it
    stays pending for the provider's webhook or an operator. True when it was asked."""
    assert attempt.refund_id is not None
    refund = await refunds_db.get_refund(
        deps.pool, payment.merchant_id, payment.livemode, attempt.refund_id
    )
    if refund is None or refund.status is not RefundStatus.PENDING or refund.provider_reference:
        return False
    target = await routing.target_of(
        deps.pool, payment.connector_account_id, deps.connectors.providers
    )
    if Capability.IDEMPOTENT_REFUNDS not in target.capabilities:
        return False
    await _execute(deps, payment, refund, attempt, repeat=True)
    return True


async def get_refund(deps: Deps, tenant: Tenant, refund_id: str) -> Refund:
    row = await refunds_db.get_refund(deps.pool, tenant.merchant_id, tenant.livemode, refund_id)
    if row is None:
        raise ResourceMissing(f"No such refund: '{refund_id}'", param="id")
    return Refund.from_row(row)


async def list_refunds(
    deps: Deps, tenant: Tenant, page: PageRequest, payment: str | None
) -> tuple[list[Refund], bool]:
    rows, has_more = await refunds_db.list_refunds(
        deps.pool, tenant.merchant_id, tenant.livemode, page, payment
    )
    return [Refund.from_row(r) for r in rows], has_more
