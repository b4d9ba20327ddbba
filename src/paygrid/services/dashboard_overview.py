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
from paygrid.domain.payments import PaymentStatus
from paygrid.domain.reports import LATEST, Dimension, SummaryRequest
from paygrid.services.context import Tenant
from paygrid.services.reports import payments_summary

VOLUME_GROUPS = (Dimension.DAY, Dimension.STATUS, Dimension.CURRENCY)


async def daily_volume(deps: Deps, tenant: Tenant, since: datetime) -> list[DailyVolume]:
    """Money received per UTC day and currency since ``since`` (by payment creation day):
    the payments summary's succeeded rows (a payment has received money exactly when it
    succeeded). Read from the primary: the overview shows a payment made a moment ago."""
    request = SummaryRequest(since, LATEST, "UTC", VOLUME_GROUPS)
    rows = await payments_summary.summary_rows(deps, tenant, request, replica=False)
    return [
        DailyVolume(r.day, r.currency, r.amount_received, r.count)
        for r in rows
        if r.status is PaymentStatus.SUCCEEDED and r.day is not None
    ]


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
