"""Reconciliation on the worker's job framework.

- ``reconciliation.run`` processes one run (queued by the API, unique per run).
- ``reconciliation.daily_due`` runs every ``DAILY_EVERY`` and queues, for every enabled live
  Paystack account, its next daily run: ``reconciliation.daily``, due at
  ``PAYGRID_RECONCILIATION_DAILY_AT`` (06:00) in the merchant's time zone, covering the 24
  hours before, unique per account and window while queued or running; the run it makes is
  unique per account and window too, so N workers run it once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from paygrid.db import jobs as jobs_db
from paygrid.db import reconciliation_reads as reads
from paygrid.db import reconciliation_runs as runs_db
from paygrid.db import transactions
from paygrid.db.connector_accounts import get_account_unscoped
from paygrid.db.executor import Connection
from paygrid.db.reconciliation_runs import RunRow
from paygrid.dependencies import Deps
from paygrid.domain.connector_accounts import ConnectorAccountStatus
from paygrid.domain.reconciliation_runs import RunTrigger, daily_window
from paygrid.services.reconciliation import running
from paygrid.services.reconciliation.runs import RECONCILING_PROVIDERS

DAILY_DUE: Final = "reconciliation.daily_due"
DAILY: Final = "reconciliation.daily"
DAILY_EVERY: Final = timedelta(minutes=15)


async def run_job(payload: dict[str, Any], deps: Deps) -> None:
    await running.process(deps, str(payload["run"]))


async def daily_due(_payload: dict[str, Any], deps: Deps) -> None:
    """Queue each live account's next daily run (once: unique per account and window)."""
    now = deps.clock.now()
    at = deps.settings.reconciliation_daily_at
    for account_id, timezone in await reads.daily_accounts(deps.pool, RECONCILING_PROVIDERS):
        start, end = daily_window(now, timezone, at)
        await jobs_db.enqueue(
            deps.pool,
            DAILY,
            {"connector_account": account_id, "from": _unix(start), "to": _unix(end)},
            run_at=end,
            unique_key=f"{DAILY}:{account_id}:{_unix(start)}",
        )


async def daily(payload: dict[str, Any], deps: Deps) -> None:
    """Make the scheduled run of one account's window (unless made already) and run it."""
    account = await get_account_unscoped(deps.pool, str(payload["connector_account"]))
    if account is None or account.status is not ConnectorAccountStatus.ENABLED:
        return
    window = (_time(int(payload["from"])), _time(int(payload["to"])))

    async def make(conn: Connection) -> RunRow | None:
        return await runs_db.insert_run(
            conn,
            merchant_id=account.merchant_id,
            livemode=account.livemode,
            connector_account_id=account.id,
            window=window,
            heal=False,
            trigger=RunTrigger.SCHEDULE,
            now=deps.clock.now(),
        )

    run = await transactions.run(deps.pool, make)
    if run is not None:
        await running.process(deps, run.id)


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _time(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)
