"""The dashboard's payment search: one box matching an id, a reference, a receipt or
customer email, or an amount in any currency, combined with filters by state, currency,
connector and creation day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from paygrid.db import payment_search as search_db
from paygrid.db.payment_search import PaymentSummary as PaymentSummary  # what search returns
from paygrid.dependencies import Deps
from paygrid.domain.pagination import PageRequest
from paygrid.services.context import Tenant


@dataclass(frozen=True, slots=True)
class PaymentSearch:
    """What the payments page asks for; ``None`` fields do not filter."""

    query: str | None = None
    # ``query`` read as a major-unit amount, in minor units, per currency it is valid in.
    amounts: tuple[tuple[str, int], ...] = ()
    status: str | None = None  # a state as the dashboard shows it (refunds included)
    currency: str | None = None
    connector: str | None = None
    created_gte: datetime | None = None
    created_lte: datetime | None = None


async def search_payments(
    deps: Deps, tenant: Tenant, page: PageRequest, search: PaymentSearch
) -> tuple[list[PaymentSummary], bool]:
    """One page of the tenant's payments matching ``search``, newest first."""
    return await search_db.search_payments(
        deps.pool,
        tenant.merchant_id,
        tenant.livemode,
        page,
        query=search.query,
        amounts=list(search.amounts),
        status=search.status,
        currency=search.currency,
        connector=search.connector,
        created_gte=search.created_gte,
        created_lte=search.created_lte,
    )


async def payment_connectors(deps: Deps, tenant: Tenant) -> list[str]:
    """The connectors the tenant's payments went through, for the filter's choices."""
    return await search_db.payment_connectors(deps.pool, tenant.merchant_id, tenant.livemode)
