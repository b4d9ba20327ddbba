"""One provider charge made after the backup, re-imported: the payment is written back
under the id, attempt id and Idempotency-Key that paygrid sent the provider (so the
merchant's retry with that key finds it and charges nothing), as it was while its attempt
was in flight, with ``payment.created``; then its attempt is synced through the payment
state machine (``sync_attempt``), which asks the provider and records the outcome with its
usual events. What the provider never had (description, metadata, customer, order id) is
not invented: those fields come back empty."""

from __future__ import annotations

from datetime import UTC, datetime

from paygrid.connectors.resync import ProviderChargeRecord
from paygrid.db import events as events_db
from paygrid.db import payments as payments_db
from paygrid.db.connector_accounts import ConnectorAccountRow
from paygrid.db.engine import JsonText
from paygrid.db.payments import AttemptRow, PaymentRow, Transition
from paygrid.dependencies import Deps
from paygrid.domain.events import EventType
from paygrid.domain.payments import (
    AttemptOperation,
    AttemptOutcome,
    AttemptStatus,
    CaptureMethod,
    PaymentStatus,
    confirm_sources,
)
from paygrid.ids import new_id
from paygrid.schemas.payments import Payment
from paygrid.services.payments.sync import sync_attempt


async def reimport_charge(
    deps: Deps, account: ConnectorAccountRow, charge: ProviderChargeRecord
) -> bool:
    """Write the charge's payment back and sync it (the provider may not be able to say
    yet: status sync asks again); False when it was already there (its Idempotency-Key
    made a payment meanwhile)."""
    assert charge.payment_id is not None and charge.attempt_id is not None
    created_at = datetime.fromtimestamp(charge.created, UTC)
    payment = _payment(account, charge, created_at, deps.clock.now())
    attempt = _attempt(account, charge, created_at)
    view = Payment.from_row(payment, [attempt])
    event = events_db.event_row(
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        event_type=EventType.PAYMENT_CREATED.value,
        object_id=payment.id,
        snapshot=JsonText(view.model_dump_json()),
        created_at=deps.clock.now(),
    )
    created, _ = await payments_db.create_with_attempt(
        deps.pool, payment=payment, method=None, attempt=attempt, event=event
    )
    if not created:
        return False
    await sync_attempt(deps, payment, attempt)
    return True


# Where a payment the backup has can be when an attempt made after the backup is put back
# on it: where a confirm may begin one, or already in flight (a failover's next attempt).
REATTACH_SOURCES = confirm_sources(attaching_method=True) | {PaymentStatus.PROCESSING}


async def reattach_charge(
    deps: Deps, account: ConnectorAccountRow, charge: ProviderChargeRecord
) -> AttemptOutcome | None:
    """A charge made after the backup for a payment paygrid has (created before the backup
    and confirmed after it, or a later attempt of a payment just re-imported: a decline
    then a success, a failover): its attempt is put back on the payment, moved to
    ``processing`` as a confirm moves it, and synced, so a retry of the confirm finds the
    payment paid instead of charging again. ``None`` when the payment belongs to another
    merchant's account or has moved on (a person looks at it)."""
    assert charge.payment_id is not None and charge.attempt_id is not None
    attempt = _attempt(account, charge, datetime.fromtimestamp(charge.created, UTC))
    move = Transition(
        REATTACH_SOURCES,
        PaymentStatus.PROCESSING,
        {"connector": account.provider, "connector_account_id": account.id},
        deps.clock.now(),
    )
    async with deps.pool.acquire() as conn, conn.transaction():
        current = await payments_db.payment_by_id(conn, charge.payment_id)
        if current is None or (current.merchant_id, current.livemode) != (
            account.merchant_id,
            account.livemode,
        ):
            return None  # never another merchant's payment, whatever the metadata says
        payment = await payments_db.transition(conn, charge.payment_id, move)
        if payment is None:
            return None
        await payments_db.insert_attempt(conn, attempt)
    return await sync_attempt(deps, payment, attempt)


def _payment(
    account: ConnectorAccountRow, charge: ProviderChargeRecord, created_at: datetime, now: datetime
) -> PaymentRow:
    assert charge.payment_id is not None
    return PaymentRow(
        id=charge.payment_id,
        merchant_id=account.merchant_id,
        livemode=account.livemode,
        status=PaymentStatus.PROCESSING,  # its attempt in flight, as when it was sent
        amount=charge.amount,
        currency=charge.currency,
        capture_method=CaptureMethod.MANUAL if charge.capture_manual else CaptureMethod.AUTOMATIC,
        amount_capturable=0,
        amount_received=0,
        amount_refunded=0,
        customer_id=None,
        payment_method_id=None,
        connector=account.provider,
        connector_account_id=account.id,
        description=None,
        return_url=None,
        order_id=None,
        reference=new_id("ref"),
        metadata={},
        last_payment_error=None,
        next_action=None,
        cancellation_reason=None,
        canceled_at=None,
        idempotency_key=charge.idempotency_key,
        receipt_email=charge.email,
        payment_method_types=["card"],
        created_at=created_at,
        updated_at=now,
    )


def _attempt(
    account: ConnectorAccountRow, charge: ProviderChargeRecord, created_at: datetime
) -> AttemptRow:
    assert charge.payment_id is not None and charge.attempt_id is not None
    return AttemptRow(
        id=charge.attempt_id,
        payment_id=charge.payment_id,
        operation=AttemptOperation.AUTHORIZE,
        connector=account.provider,
        connector_account_id=account.id,
        status=AttemptStatus.PENDING,
        amount=charge.amount,
        payment_method_id=None,
        refund_id=None,
        provider_reference=charge.reference,
        error_code=None,
        decline_code=None,
        error_message=None,
        latency_ms=None,
        created_at=created_at,
        completed_at=None,
        sync_count=0,
        next_sync_at=None,
    )
