"""The dashboard overview's history: money received and authorization success per day,
payments by the state the dashboard shows, and webhook deliveries that gave up. (Today's
figures per currency are ``services.overview``'s.)"""

from __future__ import annotations

from datetime import datetime

from paygrid.db import dashboard as dashboard_db
from paygrid.db.dashboard import DailySuccess as DailySuccess
from paygrid.db.dashboard import DailyVolume as DailyVolume
from paygrid.db.dashboard import FailedDelivery as FailedDelivery
from paygrid.db.dashboard import StatusCount as StatusCount
from paygrid.dependencies import Deps
from paygrid.services.context import Tenant


async def daily_volume(deps: Deps, tenant: Tenant, since: datetime) -> list[DailyVolume]:
    """Money received per UTC day and currency since ``since`` (by payment creation day)."""
    return await dashboard_db.daily_volume(deps.pool, tenant.merchant_id, tenant.livemode, since)


async def daily_success(deps: Deps, tenant: Tenant, since: datetime) -> list[DailySuccess]:
    """Finished authorization attempts per UTC day and connector, and how many succeeded."""
    return await dashboard_db.daily_success(deps.pool, tenant.merchant_id, tenant.livemode, since)


async def status_counts(deps: Deps, tenant: Tenant) -> list[StatusCount]:
    """How many payments are in each state the dashboard shows."""
    return await dashboard_db.status_counts(deps.pool, tenant.merchant_id, tenant.livemode)


async def failed_deliveries(deps: Deps, tenant: Tenant, limit: int) -> list[FailedDelivery]:
    """The newest dead-lettered deliveries that no later delivery superseded."""
    return await dashboard_db.failed_deliveries(
        deps.pool, tenant.merchant_id, tenant.livemode, limit
    )
