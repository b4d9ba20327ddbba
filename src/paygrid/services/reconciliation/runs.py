"""Create, list and retrieve reconciliation runs (``/v1/reconciliation_runs``). Creating one
queues it for the worker (job ``reconciliation.run``) in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from paygrid.db import jobs as jobs_db
from paygrid.db import reconciliation_runs as runs_db
from paygrid.db import transactions
from paygrid.db.connector_accounts import get_account_unscoped
from paygrid.db.executor import Connection
from paygrid.db.pagination import PageRequest
from paygrid.db.reconciliation_runs import RunRow
from paygrid.dependencies import Deps
from paygrid.domain.connector_accounts import ConnectorAccountStatus
from paygrid.domain.errors import InvalidRequest, ResourceMissing
from paygrid.domain.reconciliation_runs import RunTrigger
from paygrid.schemas.reconciliation import (
    MAX_WINDOW_SECONDS,
    ReconciliationRun,
    ReconciliationRunCreate,
)
from paygrid.services.connector_accounts import get_row
from paygrid.services.context import Tenant

RUN: Final = "reconciliation.run"
# Providers whose connectors implement ``ReconciliationSource``.
RECONCILING_PROVIDERS: Final = ("paystack", "stripe")


async def create_run(
    deps: Deps,
    tenant: Tenant,
    params: ReconciliationRunCreate,
    trigger: RunTrigger = RunTrigger.API,
    *,
    queue: bool = True,
) -> ReconciliationRun:
    """Queue a run of one of the merchant's accounts over [from, to) (``queue=False``: the
    caller runs it)."""
    if params.to <= params.from_:
        raise InvalidRequest("to must be after from.", param="to")
    if params.to - params.from_ > MAX_WINDOW_SECONDS:
        raise InvalidRequest("A run covers at most 92 days.", param="to")
    account = await get_row(deps.pool, tenant, params.connector_account)
    if account.provider not in RECONCILING_PROVIDERS:
        raise InvalidRequest(
            f"Connector account '{account.id}' is a {account.provider} account; "
            f"reconciliation covers {', '.join(RECONCILING_PROVIDERS)} accounts.",
            param="connector_account",
        )
    if account.status is not ConnectorAccountStatus.ENABLED:
        raise InvalidRequest(
            f"Connector account '{account.id}' is disabled.", param="connector_account"
        )
    window = (_time(params.from_), _time(params.to))

    async def insert(conn: Connection) -> RunRow:
        run = await runs_db.insert_run(
            conn,
            merchant_id=tenant.merchant_id,
            livemode=tenant.livemode,
            connector_account_id=account.id,
            window=window,
            heal=params.heal,
            trigger=trigger,
            now=deps.clock.now(),
        )
        assert run is not None, "only scheduled runs are unique per window"
        if queue:
            await enqueue(conn, run)
        return run

    return ReconciliationRun.from_row(await transactions.run(deps.pool, insert))


async def create_cli_run(
    deps: Deps, account_id: str, window: tuple[datetime, datetime], *, heal: bool
) -> RunRow:
    """A run of any merchant's account made by an operator (``paygrid reconcile``), run in
    the CLI's process rather than queued."""
    account = await get_account_unscoped(deps.pool, account_id)
    if account is None:
        raise ResourceMissing(f"No such connector account: '{account_id}'", param="account")
    tenant = Tenant(merchant_id=account.merchant_id, livemode=account.livemode)
    params = ReconciliationRunCreate.model_validate(
        {
            "connector_account": account_id,
            "from": int(window[0].timestamp()),
            "to": int(window[1].timestamp()),
            "heal": heal,
        }
    )
    made = await create_run(deps, tenant, params, RunTrigger.CLI, queue=False)
    row = await runs_db.get_run(deps.pool, tenant.merchant_id, tenant.livemode, made.id)
    assert row is not None
    return row


async def enqueue(conn: Connection, run: RunRow) -> None:
    await jobs_db.enqueue(conn, RUN, {"run": run.id}, unique_key=f"{RUN}:{run.id}")


async def get_run(deps: Deps, tenant: Tenant, run_id: str) -> ReconciliationRun:
    row = await runs_db.get_run(deps.pool, tenant.merchant_id, tenant.livemode, run_id)
    if row is None:
        raise ResourceMissing(f"No such reconciliation run: '{run_id}'", param="id")
    return ReconciliationRun.from_row(row)


async def list_runs(
    deps: Deps, tenant: Tenant, page: PageRequest
) -> tuple[list[ReconciliationRun], bool]:
    rows, has_more = await runs_db.list_runs(deps.pool, tenant.merchant_id, tenant.livemode, page)
    return [ReconciliationRun.from_row(r) for r in rows], has_more


def _time(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)
