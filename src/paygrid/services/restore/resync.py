"""Closing the gap between a restored database and the providers: every connector account
lists its provider's charges and refunds since the backup (less a margin for clocks), and
what paygrid made there after the backup is imported back. A charge is re-imported under
the payment id, attempt id and Idempotency-Key paygrid sent along (``reimport``); a refund
made at the provider is imported as reconciliation's healing imports one
(``import_provider_refund``). A refund paygrid made (it names paygrid's refund id) that the
provider still has pending comes back pending, under its id and the merchant's key, for the
provider's webhook or status sync to settle: otherwise the merchant's retry would refund
twice. Failed refunds moved no money and are not imported. A refund the restored database
has, still pending without the provider's id (paygrid lost the provider's answer), takes
the provider's id and settles as the provider says (``lost_refund_answers``), so its
webhook finds it. Whatever is already known is left alone, so running it twice imports
nothing twice.

The simulator is skipped: its "provider" keeps its state in paygrid's own database
(``connectors/simulator/store.py``), so the restore rolled it back with everything else and
there is no gap to close. A provider that cannot list its charges is reported, not
guessed at."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import assert_never

import structlog

from paygrid.connectors.base import ConnectorError
from paygrid.connectors.reconciliation import ReconciliationSource
from paygrid.connectors.resync import ProviderChargeRecord, ResyncSource
from paygrid.db import reconciliation_reads as reads
from paygrid.db import refunds as refunds_db
from paygrid.db import restore as restore_db
from paygrid.db.connector_accounts import ConnectorAccountRow
from paygrid.dependencies import Deps
from paygrid.domain.reconciliation import ProviderRefund, RefundState
from paygrid.services.lost_refund_answers import LostAnswer, reattach_refund
from paygrid.services.provider_refunds import ProviderSideRefund, import_provider_refund
from paygrid.services.restore.reimport import reattach_charge, reimport_charge

log = structlog.get_logger("paygrid.restore")

CLOCK_MARGIN = timedelta(minutes=5)
"""Charges are listed from this long before the backup: paygrid's clock and the provider's
may disagree, and re-listing what is known imports nothing."""
SIMULATOR = "simulator"

Progress = Callable[[str], Awaitable[None]]


@dataclass(slots=True)
class AccountResync:
    """What one account's re-sync found and did."""

    account_id: str
    provider: str
    listed: int = 0
    already_known: int = 0
    imported: int = 0  # payments re-made from their charges
    reattached: int = 0  # later attempts put back on a payment paygrid has
    refunds_imported: int = 0
    refunds_reattached: int = 0  # refunds whose answer was lost, given the provider's id
    skipped: list[str] = field(default_factory=list)  # why, one line each
    error: str | None = None


async def resync(
    deps: Deps, backup_time: datetime, progress: Progress | None = None
) -> list[AccountResync]:
    """Re-sync every connector account for the window since ``backup_time``."""
    since = int((backup_time - CLOCK_MARGIN).timestamp())
    results = []
    for account in await restore_db.all_accounts(deps.pool):
        if progress is not None:
            await progress(f"re-syncing {account.provider} account {account.id}")
        results.append(await _account(deps, account, since))
    return results


async def _account(deps: Deps, account: ConnectorAccountRow, since: int) -> AccountResync:
    found = AccountResync(account.id, account.provider)
    if account.provider == SIMULATOR:
        found.skipped.append("the simulator's state was restored with the database")
        return found
    try:
        connector = await deps.connectors.connector_for(deps.pool, account.id)
        if not isinstance(connector, ResyncSource):
            found.error = f"{account.provider} cannot list its charges for a re-sync"
            return found
        await _charges(deps, account, await connector.resync_charges(since), found)
        if isinstance(connector, ReconciliationSource):
            await _refunds(deps, account, connector, since, found)
    except ConnectorError as error:
        found.error = str(error)
        log.warning("restore.resync_failed", account_id=account.id, error=str(error))
    except Exception as error:  # any other failure of one account: reported, fence kept up
        found.error = f"{type(error).__name__}: {error}"
        log.exception("restore.resync_failed", account_id=account.id)
    return found


async def _charges(
    deps: Deps,
    account: ConnectorAccountRow,
    charges: list[ProviderChargeRecord],
    found: AccountResync,
) -> None:
    found.listed = len(charges)
    known = await restore_db.known_references(deps.pool, account.id, [c.reference for c in charges])
    unknown = [c for c in reversed(charges) if c.reference not in known]  # oldest first
    found.already_known = len(charges) - len(unknown)
    ours = [c for c in unknown if c.payment_id is not None and c.attempt_id is not None]
    found.skipped.extend(f"{c.reference}: not made by paygrid" for c in unknown if c not in ours)
    # A payment's attempts together, oldest first: a decline then a success, a failover.
    attempts: dict[str, list[ProviderChargeRecord]] = {}
    for charge in ours:
        attempts.setdefault(charge.payment_id or "", []).append(charge)
    existing = await restore_db.existing_payments(deps.pool, list(attempts))
    for payment_id, charges in attempts.items():
        if payment_id not in existing:
            first, *charges = charges
            if not await reimport_charge(deps, account, first):
                found.skipped.append(f"{first.reference}: {payment_id} could not be re-made")
                continue
            found.imported += 1
            log.info("restore.reimported_charge", payment_id=payment_id)
        # Attempts made after the backup on a payment paygrid has: put back on it, so a
        # retried confirm finds them instead of charging again.
        for charge in charges:
            if await reattach_charge(deps, account, charge) is None:
                found.skipped.append(f"{charge.reference}: {payment_id} has moved on")
                continue
            found.reattached += 1
            log.info("restore.reattached_charge", payment_id=payment_id)


async def _refunds(
    deps: Deps,
    account: ConnectorAccountRow,
    connector: ReconciliationSource,
    since: int,
    found: AccountResync,
) -> None:
    refunds = await connector.reconciliation_refunds(since)
    known = set(
        await reads.known_refund_references(deps.pool, account, [r.reference for r in refunds])
    )
    # Failed ones too when they name a refund of paygrid's: its lost answer is that failure.
    fresh = [
        r
        for r in reversed(refunds)
        if r.reference not in known and (_importable(r) or r.refund_id is not None)
    ]
    charges = await reads.charges_by_reference(
        deps.pool, account, sorted({r.charge_reference for r in fresh})
    )
    payment_of = {c.reference: c.payment_id for c in charges}
    for refund in fresh:
        payment_id = payment_of.get(refund.charge_reference)
        if payment_id is None:
            if _importable(refund):
                found.skipped.append(f"refund {refund.reference}: its charge is unknown")
            continue
        if await _known_refund(deps, account, refund):
            await _reattach(deps, account, payment_id, refund, found)
        elif _importable(refund):
            await _import(deps, account, payment_id, refund, found)


async def _import(
    deps: Deps,
    account: ConnectorAccountRow,
    payment_id: str,
    refund: ProviderRefund,
    found: AccountResync,
) -> None:
    refund_id, key = refund.refund_id, refund.idempotency_key
    if refund_id is not None and await refunds_db.refund_id_taken(deps.pool, refund_id):
        # Not this merchant's (``_known_refund`` said so) yet taken: another merchant's id
        # in a note or metadata someone wrote at the provider. The refund is the provider's
        # own then, imported under a new id, and the other merchant's is never touched.
        log.warning("restore.refund_names_a_foreign_id", reference=refund.reference)
        refund_id = key = None
        if refund.state is not RefundState.SUCCEEDED:
            return  # only succeeded refunds are imported without paygrid's id
    imported = await import_provider_refund(
        deps,
        ProviderSideRefund(
            merchant_id=account.merchant_id,
            livemode=account.livemode,
            payment_id=payment_id,
            provider_reference=refund.reference,
            amount=refund.amount,
            currency=refund.currency,
            refund_id=refund_id,
            idempotency_key=key,
            state=refund.state,
        ),
    )
    if imported is not None:
        found.refunds_imported += 1


async def _reattach(
    deps: Deps,
    account: ConnectorAccountRow,
    payment_id: str,
    refund: ProviderRefund,
    found: AccountResync,
) -> None:
    """The restored database has the refund the provider's names: paygrid made it before
    the backup and lost the provider's answer. It takes the provider's id and settles as
    the provider says; a refund that is not waiting for that answer is left alone."""
    assert refund.refund_id is not None
    lost = LostAnswer(
        merchant_id=account.merchant_id,
        livemode=account.livemode,
        connector_account_id=account.id,
        payment_id=payment_id,
        refund_id=refund.refund_id,
        provider_reference=refund.reference,
        state=refund.state,
        amount=refund.amount,
        currency=refund.currency,
    )
    if await reattach_refund(deps, lost) is None:
        found.skipped.append(f"refund {refund.reference}: paygrid has {refund.refund_id}")
        return
    found.refunds_reattached += 1
    log.info("restore.reattached_refund", refund_id=refund.refund_id)


def _importable(refund: ProviderRefund) -> bool:
    """Succeeded refunds, and pending ones paygrid made (a pending dashboard refund is left
    alone, as reconciliation leaves it: only succeeded dashboard refunds are imported)."""
    match refund.state:
        case RefundState.SUCCEEDED:
            return True
        case RefundState.PENDING:
            return refund.refund_id is not None
        case RefundState.FAILED:
            return False
        case _:
            assert_never(refund.state)


async def _known_refund(deps: Deps, account: ConnectorAccountRow, refund: ProviderRefund) -> bool:
    """The refund the provider's record names is in the restored database (the merchant's
    own: another merchant's refund is never read)."""
    if refund.refund_id is None:
        return False
    row = await refunds_db.get_refund(
        deps.pool, account.merchant_id, account.livemode, refund.refund_id
    )
    return row is not None
