"""Status sync (the janitor): asks providers about attempts whose outcome is unknown (a
timeout, a reset connection, an ambiguous 5xx) on the schedule
``PAYGRID_STATUS_SYNC_SCHEDULE`` (1 m, 5 m, 30 m, 2 h, then every 24 h), settles refunds the
provider accepted as pending, and closes ``requires_action`` payments whose customer never
came back within ``PAYGRID_REQUIRES_ACTION_EXPIRY_HOURS``.

While an attempt's outcome is unknown its payment stays ``processing``, and nothing here or
anywhere else sends it to another provider: only this sync (or a provider webhook) settles it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog

from paygrid.connectors.base import OutcomeUnknown, ProviderUnreachable
from paygrid.db import payments as payments_db
from paygrid.db import status_sync as sync_db
from paygrid.domain.errors import PaygridError
from paygrid.domain.payments import AttemptOutcome, PaymentStatus
from paygrid.services import captures, refunds
from paygrid.services.authorization import sync_attempt
from paygrid.services.context import Deps, Tenant

log = structlog.get_logger("paygrid.status_sync")

SYNC: Final = "payments.status_sync"
BATCH: Final = 100
# An attempt still ``pending`` this long after it started lost its process mid-call.
STALE_PENDING: Final = timedelta(minutes=15)


@dataclass(slots=True)
class SyncReport:
    resolved: int = 0  # attempts whose outcome became definite
    still_unknown: int = 0
    expired: int = 0  # requires_action payments closed after the action window
    refunds_settled: int = 0


async def run(deps: Deps, now: datetime | None = None) -> SyncReport:
    """One pass over everything due; the job ``payments.status_sync`` runs it periodically."""
    now = now or datetime.now(UTC)
    report = SyncReport()
    await sync_db.stale_pending_attempts(deps.pool, now - STALE_PENDING, BATCH)
    for attempt in await sync_db.claim_due_attempts(deps.pool, now, BATCH):
        payment = await payments_db.get_payment_unscoped(deps.pool, attempt["payment_id"])
        assert payment is not None
        waiting_for_customer = attempt["status"] == "requires_action"
        outcome = await sync_attempt(deps, payment, attempt)
        if waiting_for_customer and outcome in (None, AttemptOutcome.REQUIRES_ACTION):
            await _expire(deps, payment, attempt)
            report.expired += 1
        elif outcome is None:
            delays = deps.settings.sync_delays()
            delay = delays[min(attempt["sync_count"], len(delays) - 1)]
            await sync_db.set_next_sync(deps.pool, attempt["id"], now + timedelta(seconds=delay))
            report.still_unknown += 1
        else:
            report.resolved += 1
    for refund in await sync_db.claim_due_refunds(deps.pool, now, BATCH):
        if await _sync_refund(deps, refund):
            report.refunds_settled += 1
        else:
            delay = deps.settings.sync_delays()[-1 if refund["provider_reference"] else 0]
            await sync_db.set_refund_next_sync(
                deps.pool, refund["id"], now + timedelta(seconds=delay)
            )
    if report.resolved or report.expired or report.refunds_settled:
        log.info("status_sync.pass", **dataclasses.asdict(report))
    return report


async def job(_payload: dict[str, Any], deps: Deps) -> None:
    await run(deps)


async def _expire(deps: Deps, payment: Any, attempt: Any) -> None:
    """The customer never finished the redirect: cancel the payment (voiding at the provider
    where it can) and close the attempt."""
    tenant = Tenant(payment["merchant_id"], payment["livemode"])
    if payment["status"] == PaymentStatus.REQUIRES_ACTION:
        with contextlib.suppress(PaygridError):  # it moved on meanwhile, or the void failed
            await captures.cancel_payment(deps, tenant, payment["id"], "abandoned")
    await payments_db.finish_attempt(
        deps.pool,
        attempt["id"],
        status="failed",
        provider_reference=None,
        latency_ms=None,
        error_code="action_expired",
        error_message="The customer did not complete the required action in time.",
    )


async def _sync_refund(deps: Deps, refund: Any) -> bool:
    if refund["provider_reference"] is None:
        return False
    payment = await payments_db.get_payment_unscoped(deps.pool, refund["payment_id"])
    assert payment is not None
    connector = await deps.connectors.connector_for(deps.pool, payment["connector_account_id"])
    try:
        async with deps.connectors.guard(payment["connector_account_id"], "retrieve_refund"):
            result = await connector.retrieve_refund(refund["provider_reference"])
    except (OutcomeUnknown, ProviderUnreachable):
        return False
    return await refunds.settle_from_provider(deps, refund, result)
