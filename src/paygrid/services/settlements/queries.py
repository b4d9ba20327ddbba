"""Reading a merchant's settlements and their transactions (``GET /v1/settlements``)."""

from __future__ import annotations

from datetime import UTC, datetime

from paygrid.db import settlements as settlements_db
from paygrid.db.settlements import SettlementRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import ResourceMissing
from paygrid.domain.pagination import PageRequest
from paygrid.domain.settlements import SettlementStatus
from paygrid.schemas.settlements import Settlement, SettlementTransaction
from paygrid.services.context import Tenant


async def list_settlements(
    deps: Deps,
    tenant: Tenant,
    page: PageRequest,
    *,
    connector_account: str | None = None,
    status: SettlementStatus | None = None,
    arrival_from: int | None = None,
    arrival_before: int | None = None,
) -> tuple[list[Settlement], bool]:
    """Newest first; ``arrival_from`` inclusive and ``arrival_before`` exclusive (Unix time)."""
    rows, has_more = await settlements_db.list_settlements(
        deps.pool,
        tenant.merchant_id,
        tenant.livemode,
        page,
        connector_account_id=connector_account,
        status=status,
        arrival_from=_time(arrival_from),
        arrival_before=_time(arrival_before),
    )
    return [Settlement.from_row(r) for r in rows], has_more


async def get_settlement(deps: Deps, tenant: Tenant, settlement_id: str) -> Settlement:
    return Settlement.from_row(await _row(deps, tenant, settlement_id))


async def list_transactions(
    deps: Deps, tenant: Tenant, settlement_id: str, page: PageRequest
) -> tuple[list[SettlementTransaction], bool]:
    """A settlement's transactions, newest imported first."""
    settlement = await _row(deps, tenant, settlement_id)
    rows, has_more = await settlements_db.list_transactions(
        deps.pool, tenant.merchant_id, tenant.livemode, settlement.id, page
    )
    return [SettlementTransaction.from_row(r) for r in rows], has_more


async def _row(deps: Deps, tenant: Tenant, settlement_id: str) -> SettlementRow:
    row = await settlements_db.get_settlement(
        deps.pool, tenant.merchant_id, tenant.livemode, settlement_id
    )
    if row is None:
        raise ResourceMissing(f"No such settlement: '{settlement_id}'", param="id")
    return row


def _time(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)
