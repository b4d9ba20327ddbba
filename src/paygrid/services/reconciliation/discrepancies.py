"""List a merchant's reconciliation discrepancies and resolve one with a note (audited by
the table's trigger as whoever acts: the API key, the dashboard user)."""

from __future__ import annotations

from paygrid.db import reconciliation_runs as runs_db
from paygrid.db.pagination import PageRequest
from paygrid.dependencies import Deps
from paygrid.domain.errors import InvalidRequest, ResourceMissing
from paygrid.domain.reconciliation import DiscrepancyStatus, DiscrepancyType
from paygrid.schemas.reconciliation import ReconciliationDiscrepancy
from paygrid.services.context import Tenant


async def list_discrepancies(
    deps: Deps,
    tenant: Tenant,
    page: PageRequest,
    *,
    run: str | None = None,
    type_: DiscrepancyType | None = None,
    status: DiscrepancyStatus | None = None,
) -> tuple[list[ReconciliationDiscrepancy], bool]:
    rows, has_more = await runs_db.list_discrepancies(
        deps.pool, tenant.merchant_id, tenant.livemode, page, run_id=run, type_=type_, status=status
    )
    return [ReconciliationDiscrepancy.from_row(r) for r in rows], has_more


async def resolve(
    deps: Deps, tenant: Tenant, discrepancy_id: str, note: str
) -> ReconciliationDiscrepancy:
    """open -> resolved with ``note``; one already resolved or healed is a 400."""
    row = await runs_db.get_discrepancy(
        deps.pool, tenant.merchant_id, tenant.livemode, discrepancy_id
    )
    if row is None:
        raise ResourceMissing(f"No such reconciliation discrepancy: '{discrepancy_id}'", param="id")
    resolved = await runs_db.resolve(deps.pool, row.id, note, deps.clock.now())
    if resolved is None:
        raise InvalidRequest(
            f"This discrepancy is {row.status}; only an open one can be resolved.",
            code="discrepancy_not_open",
        )
    return ReconciliationDiscrepancy.from_row(resolved)
