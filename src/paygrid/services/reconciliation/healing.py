"""Heal what is safe, for a run with ``heal``: a payment still waiting on the provider that
has a final answer there is synced through the payment service (its state machine and its
event), a refund made at the provider is imported with its events, and a refund of
paygrid's whose provider answer was lost takes the provider's id and settles as it says.
Each change is audited as ``reconciliation_run:<id>``, and its discrepancy is marked
``healed`` once (a discrepancy no longer open is never healed again). Money differences are
never touched."""

from __future__ import annotations

import structlog

from paygrid.db import payments as payments_db
from paygrid.db import reconciliation_runs as runs_db
from paygrid.db.executor import Connection
from paygrid.db.reconciliation_runs import DiscrepancyRow, RunRow
from paygrid.db.refunds import RefundRow
from paygrid.dependencies import Deps
from paygrid.domain.payments import AttemptOperation, AttemptOutcome
from paygrid.domain.reconciliation import DiscrepancyType, RefundState
from paygrid.services.audit_actor import acting_as_reconciliation_run
from paygrid.services.lost_refund_answers import LostAnswer, reattach_refund
from paygrid.services.payments.sync import sync_attempt
from paygrid.services.provider_refunds import ProviderSideRefund, import_provider_refund

log = structlog.get_logger("paygrid.reconciliation")


async def heal(deps: Deps, run: RunRow) -> int:
    """Heal the account's open healable discrepancies; returns how many were healed."""
    healed = 0
    with acting_as_reconciliation_run(run.id):
        for discrepancy in await runs_db.open_healable(deps.pool, run):
            if await _heal_one(deps, run, discrepancy):
                healed += 1
    return healed


async def _heal_one(deps: Deps, run: RunRow, discrepancy: DiscrepancyRow) -> bool:
    match discrepancy.type:
        case DiscrepancyType.STATUS_MISMATCH:
            return await _sync_status(deps, run, discrepancy)
        case DiscrepancyType.REFUND_MISMATCH if discrepancy.refund_id is not None:
            return await _reattach_refund(deps, run, discrepancy)
        case DiscrepancyType.REFUND_MISMATCH:
            return await _import_refund(deps, run, discrepancy)
        case _:
            return False  # money: for a person


async def _sync_status(deps: Deps, run: RunRow, discrepancy: DiscrepancyRow) -> bool:
    if discrepancy.payment_id is None:
        return False
    payment = await payments_db.find_payment(
        deps.pool, run.merchant_id, run.livemode, discrepancy.payment_id
    )
    if payment is None:
        return False
    attempt = await payments_db.open_attempt(deps.pool, payment.id, AttemptOperation.AUTHORIZE)
    if attempt is None or attempt.connector_account_id != run.connector_account_id:
        return False
    outcome = await sync_attempt(deps, payment, attempt)
    if outcome is None or outcome is AttemptOutcome.REQUIRES_ACTION:
        return False  # the provider could not say after all: stays open
    healed = await runs_db.mark_healed(deps.pool, discrepancy.id, run.id, deps.clock.now())
    log.info("reconciliation.healed_status", run_id=run.id, payment_id=payment.id)
    return healed


async def _reattach_refund(deps: Deps, run: RunRow, discrepancy: DiscrepancyRow) -> bool:
    """Paygrid's refund whose provider answer was lost: it takes the provider's id and
    settles as the provider said (``lost_refund_answers``); imported again, never."""
    if (
        discrepancy.refund_id is None
        or discrepancy.payment_id is None
        or discrepancy.provider_reference is None
        or discrepancy.provider_value not in set(RefundState)
    ):
        return False
    marked: list[bool] = []

    async def mark(conn: Connection, _refund: RefundRow) -> None:
        marked.append(await runs_db.mark_healed(conn, discrepancy.id, run.id, deps.clock.now()))

    lost = LostAnswer(
        merchant_id=run.merchant_id,
        livemode=run.livemode,
        connector_account_id=run.connector_account_id,
        payment_id=discrepancy.payment_id,
        refund_id=discrepancy.refund_id,
        provider_reference=discrepancy.provider_reference,
        state=RefundState(discrepancy.provider_value),
        currency=discrepancy.currency.strip().upper() if discrepancy.currency else None,
    )
    if await reattach_refund(deps, lost, also=mark) is not None:
        log.info("reconciliation.reattached_refund", run_id=run.id, refund_id=lost.refund_id)
    return any(marked)


async def _import_refund(deps: Deps, run: RunRow, discrepancy: DiscrepancyRow) -> bool:
    if (
        discrepancy.payment_id is None
        or discrepancy.provider_reference is None
        or discrepancy.refund_id is not None  # paygrid's own refund: nothing to import
        or discrepancy.provider_value is None
        or discrepancy.currency is None
    ):
        return False
    marked: list[bool] = []

    async def mark(conn: Connection, _refund: RefundRow) -> None:
        marked.append(await runs_db.mark_healed(conn, discrepancy.id, run.id, deps.clock.now()))

    imported = await import_provider_refund(
        deps,
        ProviderSideRefund(
            merchant_id=run.merchant_id,
            livemode=run.livemode,
            payment_id=discrepancy.payment_id,
            provider_reference=discrepancy.provider_reference,
            amount=int(discrepancy.provider_value),
            currency=discrepancy.currency.strip().upper(),
        ),
        also=mark,
    )
    if imported is not None:
        log.info("reconciliation.imported_refund", run_id=run.id, refund_id=imported.id)
    return any(marked)
