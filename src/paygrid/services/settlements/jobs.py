"""The settlement import on the worker's job framework: ``settlements.import_due`` runs every
``IMPORT_EVERY`` and queues one ``settlements.import`` per enabled Stripe or Paystack account
(live and test), due ``IMPORT_DELAY`` later and unique while queued or running, so N workers
import an account once an hour; ``request_import`` queues the same job on demand
(``POST /v1/settlement_imports``), or brings the queued one forward to now.

The delay spreads the first imports after a deploy away from the worker's start (the
periodic pass is due as soon as a worker first starts)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from paygrid.db import jobs as jobs_db
from paygrid.db import settlement_links as links_db
from paygrid.db.connector_accounts import get_account_unscoped
from paygrid.dependencies import Deps
from paygrid.domain.connector_accounts import ConnectorAccountStatus
from paygrid.domain.errors import InvalidRequest
from paygrid.schemas.settlements import SettlementImport
from paygrid.services.connector_accounts import get_row
from paygrid.services.context import Tenant
from paygrid.services.settlements.importing import import_account

IMPORT_DUE: Final = "settlements.import_due"
IMPORT: Final = "settlements.import"
IMPORT_EVERY: Final = timedelta(hours=1)
IMPORT_DELAY: Final = timedelta(minutes=30)
# Providers whose connectors implement ``SettlementSource``.
SETTLING_PROVIDERS: Final = ("stripe", "paystack")


def _unique_key(account_id: str) -> str:
    return f"{IMPORT}:{account_id}"


async def import_due(_payload: dict[str, Any], deps: Deps) -> None:
    """Queue an import of every account of a settling provider."""
    due = deps.clock.now() + IMPORT_DELAY
    for account in await links_db.accounts_to_import(deps.pool, SETTLING_PROVIDERS):
        await jobs_db.enqueue(
            deps.pool,
            IMPORT,
            {"connector_account": account.id},
            run_at=due,
            unique_key=_unique_key(account.id),
        )


async def import_one(payload: dict[str, Any], deps: Deps) -> None:
    """Import one account's settlements; a provider failure raises, and the job retries."""
    account = await get_account_unscoped(deps.pool, str(payload["connector_account"]))
    if account is None or account.status is not ConnectorAccountStatus.ENABLED:
        return
    await import_account(deps, account)


async def request_import(deps: Deps, tenant: Tenant, account_id: str) -> SettlementImport:
    """Queue an import of one of the merchant's accounts now (one at a time per account)."""
    account = await get_row(deps.pool, tenant, account_id)
    if account.provider not in SETTLING_PROVIDERS:
        raise InvalidRequest(
            f"Connector account '{account_id}' is a {account.provider} account, which has no "
            "settlements to import.",
            param="connector_account",
        )
    if account.status is not ConnectorAccountStatus.ENABLED:
        raise InvalidRequest(
            f"Connector account '{account_id}' is disabled.", param="connector_account"
        )
    now = deps.clock.now()
    key = _unique_key(account.id)
    job = await jobs_db.enqueue(
        deps.pool, IMPORT, {"connector_account": account.id}, run_at=now, unique_key=key
    )
    if job is None:  # one is queued (by the hourly pass) or running: make it due now
        await jobs_db.hasten(deps.pool, key, now)
    return SettlementImport(
        connector_account=account.id,
        status="queued" if job is not None else "already_queued",
        livemode=account.livemode,
    )
