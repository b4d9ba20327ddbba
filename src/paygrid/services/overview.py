"""The figures a merchant's day starts with, one currency at a time (amounts in different
currencies are never added together)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from paygrid.db import dashboard as dashboard_db
from paygrid.db.dashboard import CurrencyDay as CurrencyDay  # what the overview shows
from paygrid.dependencies import Deps
from paygrid.services.context import Tenant


async def day_by_currency(deps: Deps, tenant: Tenant, day: date) -> list[CurrencyDay]:
    """Each currency with any payment, attempt or refund on ``day`` (a UTC day)."""
    start = datetime.combine(day, time.min, UTC)
    return await dashboard_db.day_by_currency(
        deps.pool, tenant.merchant_id, tenant.livemode, start, start + timedelta(days=1)
    )
