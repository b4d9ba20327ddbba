"""Process one reconciliation run: queued -> running, read the provider's charges and
refunds since the window's start, compare them with paygrid's, store the new
discrepancies (finding one again inserts nothing), heal what is safe when asked, and
complete with the counts and ``reconciliation_run.completed``, in one transaction. A
provider that cannot answer fails the run (with the reason); nothing half-written."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

import structlog

from paygrid.connectors.base import (
    ConnectorError,
    NoSuchCharge,
    OutcomeUnknown,
    ProviderUnreachable,
)
from paygrid.connectors.reconciliation import MissingChargeCheck, ReconciliationSource
from paygrid.db import reconciliation_runs as runs_db
from paygrid.db import transactions
from paygrid.db.connector_accounts import get_account_unscoped
from paygrid.db.executor import Connection
from paygrid.db.reconciliation_runs import RunRow
from paygrid.dependencies import Deps
from paygrid.domain.events import EventType
from paygrid.domain.reconciliation import PaygridCharge, missing_at_provider
from paygrid.domain.reconciliation_runs import RunStatus
from paygrid.schemas.reconciliation import ReconciliationRun
from paygrid.services.reconciliation.comparing import compare_window, confirmed_missing
from paygrid.services.reconciliation.healing import heal
from paygrid.services.snapshots import emit_object

log = structlog.get_logger("paygrid.reconciliation")

# Called with the stage a run reached and the objects compared so far (the CLI's bar).
Progress = Callable[[str, int], Awaitable[None]]


class NotReconcilable(ConnectorError):
    """This account's connector cannot list its provider's charges and refunds."""


async def process(deps: Deps, run_id: str, progress: Progress | None = None) -> RunRow | None:
    """Run a queued run (or resume one whose worker died); ``None`` for an unknown run."""
    run = await runs_db.get_run_unscoped(deps.pool, run_id)
    if run is None or run.status in (RunStatus.COMPLETED, RunStatus.FAILED):
        return run
    if run.status is RunStatus.QUEUED:
        run = await runs_db.move_run(deps.pool, run.id, RunStatus.RUNNING, deps.clock.now())
        if run is None:
            return await runs_db.get_run_unscoped(deps.pool, run_id)
    try:
        return await _reconcile(deps, run, progress)
    except ConnectorError as error:
        log.warning("reconciliation.failed", run_id=run.id, error=str(error))
        return await runs_db.move_run(
            deps.pool, run.id, RunStatus.FAILED, deps.clock.now(), failure_message=str(error)
        )


async def _reconcile(deps: Deps, run: RunRow, progress: Progress | None) -> RunRow | None:
    account = await get_account_unscoped(deps.pool, run.connector_account_id)
    assert account is not None and account.merchant_id == run.merchant_id
    connector = await deps.connectors.connector_for(deps.pool, account.id)
    if not isinstance(connector, ReconciliationSource):
        raise NotReconcilable(f"{account.provider} accounts cannot be reconciled yet")
    since = int(run.window_start.timestamp())
    await _report(progress, "listing the provider's charges and refunds", 0)
    charges = await connector.reconciliation_charges(since)
    refunds = await connector.reconciliation_refunds(since)
    found = await compare_window(
        deps.pool, account, (run.window_start, run.window_end), charges, refunds
    )

    async def confirm(charge: PaygridCharge) -> bool:
        if isinstance(connector, MissingChargeCheck):
            return await connector.charge_exists(charge.attempt_id, charge.reference) is False
        try:
            await connector.retrieve(charge.attempt_id, charge.reference)
        except NoSuchCharge:
            return True
        except (OutcomeUnknown, ProviderUnreachable):
            return False  # the provider cannot say: nothing is reported on a guess
        return False

    missing = await confirmed_missing(found.unlisted, confirm)
    findings = [*found.findings, *(missing_at_provider(c) for c in missing)]
    compared = found.compared + len(found.unlisted)
    await runs_db.record_progress(deps.pool, run.id, compared, deps.clock.now())
    await _report(progress, "compared", compared)
    new = await transactions.run(
        deps.pool, lambda conn: runs_db.insert_findings(conn, run, findings, deps.clock.now())
    )
    if run.heal:
        await _report(progress, "healing", compared)
    healed = await heal(deps, run) if run.heal else 0
    counts = dict(Counter(d.type.value for d in new))
    return await _complete(deps, run, counts, healed, len(findings) - len(new))


async def _report(progress: Progress | None, stage: str, compared: int) -> None:
    if progress is not None:
        await progress(stage, compared)


async def _complete(
    deps: Deps, run: RunRow, counts: dict[str, int], healed: int, known: int
) -> RunRow | None:
    async def complete(conn: Connection) -> RunRow | None:
        done = await runs_db.move_run(
            conn,
            run.id,
            RunStatus.COMPLETED,
            deps.clock.now(),
            counts=counts,
            healed=healed,
            already_known=known,
        )
        if done is not None:
            view = ReconciliationRun.from_row(done).model_dump(mode="json")
            await emit_object(conn, done, EventType.RECONCILIATION_RUN_COMPLETED, view)
        return done

    done = await transactions.run(deps.pool, complete)
    log.info("reconciliation.completed", run_id=run.id, counts=counts, healed=healed)
    return done
