"""The figures a merchant's day starts with, one currency at a time (amounts in different
currencies are never added together)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from paygrid.db import dashboard as dashboard_db
from paygrid.services.context import Deps, Tenant


@dataclass(frozen=True, slots=True)
class CurrencyDay:
    """One currency's day: amounts in its minor units."""

    currency: str
    volume: int  # received, on payments created that day
    payments: int  # payments created that day that received money
    attempts: int  # finished authorization attempts
    succeeded: int  # of which authorized or captured
    refunded: int  # refunds made that day, pending or succeeded
    refunds: int

    @property
    def success_rate(self) -> float | None:
        """Succeeded authorizations per finished one; None without any."""
        return self.succeeded / self.attempts if self.attempts else None


async def day_by_currency(deps: Deps, tenant: Tenant, day: date) -> list[CurrencyDay]:
    """Each currency with any payment, attempt or refund on ``day`` (a UTC day)."""
    start = datetime.combine(day, time.min, UTC)
    rows = await dashboard_db.day_by_currency(
        deps.pool, tenant.merchant_id, tenant.livemode, start, start + timedelta(days=1)
    )
    return [
        CurrencyDay(
            currency=r["currency"].strip(),
            volume=r["volume"],
            payments=r["payments"],
            attempts=r["attempts"],
            succeeded=r["succeeded"],
            refunded=r["refunded"],
            refunds=r["refunds"],
        )
        for r in rows
    ]
