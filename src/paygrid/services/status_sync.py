"""Status sync (the janitor): asks providers about attempts whose outcome is unknown (a
timeout, a reset connection, an ambiguous 5xx) on the schedule
``PAYGRID_STATUS_SYNC_SCHEDULE`` (1 m, 5 m, 30 m, 2 h, then every 24 h), settles refunds the
provider accepted as pending, and closes ``requires_action`` payments whose customer never
came back within ``PAYGRID_REQUIRES_ACTION_EXPIRY_HOURS``.

While an attempt's outcome is unknown its payment stays ``processing``, and nothing here or
anywhere else sends it to another provider: only this sync (or a provider webhook) settles it.

An attempt still open ``PAYGRID_NOT_SENT_GRACE_SECONDS`` after it started lost its process:
- an authorize attempt is asked about; when the provider has no charge for its idempotency
  key it never went out: it is closed ``not_sent`` and the payment returns to
  ``requires_payment_method``;
- a capture, void or refund call is repeated with the same idempotency key (the provider
  answers with the first call's result, or makes the call once), and the payment moves to
  the provider's truth with its event (refunds only at providers that deduplicate them).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import structlog

from paygrid.connectors.base import OutcomeUnknown, ProviderUnreachable
from paygrid.db import payments as payments_db
from paygrid.db import status_sync as sync_db
from paygrid.db.payments import AttemptRow, PaymentRow
from paygrid.db.refunds import RefundRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import PaygridError
from paygrid.domain.payments import AttemptOperation, AttemptOutcome, AttemptStatus, PaymentStatus
from paygrid.services import refunds
from paygrid.services.payments.cancel import cancel_payment, drive_void
from paygrid.services.payments.capture import drive_capture
from paygrid.services.payments.sync import sync_attempt
from paygrid.services.payments.views import tenant_of

log = structlog.get_logger("paygrid.status_sync")

SYNC: Final = "payments.status_sync"
BATCH: Final = 100


@dataclass(slots=True)
class SyncReport:
    resolved: int = 0  # attempts whose outcome became definite
    still_unknown: int = 0
    expired: int = 0  # requires_action payments closed after the action window
    refunds_settled: int = 0
    operations_recovered: int = 0  # capture, void and refund calls whose process died


async def run(deps: Deps, now: datetime | None = None) -> SyncReport:
    """One pass over everything due; the job ``payments.status_sync`` runs it periodically."""
    now = now or deps.clock.now()
    report = SyncReport()
    stale = now - timedelta(seconds=deps.settings.not_sent_grace_seconds)
    for attempt in await sync_db.claim_due_attempts(deps.pool, now, BATCH):
        await _sync_authorization(deps, attempt, stale, now, report)
    # Stale pending attempts become unknown, due at once: the next pass asks about them.
    await sync_db.stale_pending_attempts(deps.pool, stale, now, BATCH)
    for refund in await sync_db.claim_due_refunds(deps.pool, now, BATCH):
        if await _sync_refund(deps, refund):
            report.refunds_settled += 1
        else:
            delay = deps.settings.sync_delays()[-1 if refund.provider_reference else 0]
            await sync_db.set_refund_next_sync(deps.pool, refund.id, now + timedelta(seconds=delay))
    report.operations_recovered = await _recover_operations(deps, stale, now)
    if report.resolved or report.expired or report.refunds_settled or report.operations_recovered:
        log.info("status_sync.pass", **dataclasses.asdict(report))
    return report


async def job(_payload: dict[str, Any], deps: Deps) -> None:
    await run(deps)


async def _sync_authorization(
    deps: Deps, attempt: AttemptRow, stale: datetime, now: datetime, report: SyncReport
) -> None:
    """Ask about one open authorize attempt, and expire or reschedule it as the answer says."""
    payment = await payments_db.payment_by_id(deps.pool, attempt.payment_id)
    assert payment is not None
    waiting_for_customer = attempt.status is AttemptStatus.REQUIRES_ACTION
    outcome = await sync_attempt(deps, payment, attempt, not_sent_before=stale)
    if waiting_for_customer and outcome in (None, AttemptOutcome.REQUIRES_ACTION):
        await _expire(deps, payment, attempt)
        report.expired += 1
    elif outcome is None:
        delays = deps.settings.sync_delays()
        delay = delays[min(attempt.sync_count, len(delays) - 1)]
        await sync_db.set_next_sync(deps.pool, attempt.id, now + timedelta(seconds=delay))
        report.still_unknown += 1
    else:
        report.resolved += 1


async def _expire(deps: Deps, payment: PaymentRow, attempt: AttemptRow) -> None:
    """The customer never finished the redirect: cancel the payment (voiding at the provider
    where it can) and close the attempt."""
    if payment.status is PaymentStatus.REQUIRES_ACTION:
        with contextlib.suppress(PaygridError):  # it moved on meanwhile, or the void failed
            await cancel_payment(deps, tenant_of(payment), payment.id, "abandoned")
    await payments_db.finish_attempt(
        deps.pool,
        attempt.id,
        status=AttemptStatus.FAILED,
        provider_reference=None,
        latency_ms=None,
        error_code="action_expired",
        error_message="The customer did not complete the required action in time.",
        now=deps.clock.now(),
    )


async def _recover_operations(deps: Deps, stale: datetime, now: datetime) -> int:
    """Repeat, with the same idempotency key, the capture, void and refund calls whose
    process died mid-call (or whose outcome was never learned), and apply the answers."""
    delays = deps.settings.sync_delays()
    recovered = 0
    for attempt in await sync_db.claim_stale_operations(
        deps.pool, stale, now, now + timedelta(seconds=delays[0]), BATCH
    ):
        try:
            if not await _repeat(deps, attempt):
                continue
        except PaygridError as error:  # refused (recorded failed), or still no answer
            log.info(
                "status_sync.operation_unsettled",
                attempt_id=attempt.id,
                operation=attempt.operation.value,
                code=error.code,
            )
            continue
        recovered += 1
    return recovered


async def _repeat(deps: Deps, attempt: AttemptRow) -> bool:
    """Repeat one capture, void or refund call; False when it was not asked about."""
    payment = await payments_db.payment_by_id(deps.pool, attempt.payment_id)
    assert payment is not None
    tenant = tenant_of(payment)
    match attempt.operation:
        case AttemptOperation.CAPTURE:
            await drive_capture(deps, tenant, payment, attempt, repeat=True)
        case AttemptOperation.VOID:
            await drive_void(deps, tenant, payment, attempt, None, repeat=True)
        case AttemptOperation.REFUND if attempt.refund_id is None:
            return False  # a late charge's return: no refund of the merchant's to settle
        case AttemptOperation.REFUND:
            return await refunds.recover_attempt(deps, payment, attempt)
        case AttemptOperation.AUTHORIZE:
            raise ValueError("authorize attempts are synced, not repeated")
    return True


async def _sync_refund(deps: Deps, refund: RefundRow) -> bool:
    if refund.provider_reference is None:
        return False
    payment = await payments_db.payment_by_id(deps.pool, refund.payment_id)
    assert payment is not None
    connector = await deps.connectors.connector_for(deps.pool, payment.connector_account_id)
    try:
        async with deps.connectors.guard(payment.connector_account_id, "retrieve_refund"):
            result = await connector.retrieve_refund(refund.provider_reference)
    except (OutcomeUnknown, ProviderUnreachable):
        return False
    return await refunds.settle_from_provider(deps, refund, result)
