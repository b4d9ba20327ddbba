"""The payments an invoice's attempts made, for the dashboard's invoice page: each attempt's
payment carries the key ``invoice:{id}:attempt:{n}`` (``invoice_payments``), so they are
found by those keys."""

from __future__ import annotations

from paygrid.db import payments as payments_db
from paygrid.dependencies import Deps
from paygrid.domain import invoices as domain
from paygrid.schemas.payments import Payment
from paygrid.services.billing.invoices import load
from paygrid.services.context import Tenant
from paygrid.services.payments import views as payment_views


async def attempt_payments(deps: Deps, tenant: Tenant, invoice_id: str) -> list[Payment]:
    """The payments of the invoice's attempts, oldest first: one per failed attempt, and the
    one a paid or unfinished attempt made."""
    row = await load(deps.pool, tenant, invoice_id)
    found: list[Payment] = []
    for attempt in range(1, row.attempt_count + 2):
        payment = await payments_db.get_by_idempotency_key(
            deps.pool, tenant.merchant_id, tenant.livemode, domain.attempt_key(row.id, attempt)
        )
        if payment is not None:
            found.append(await payment_views.view_of(deps.pool, payment))
    return found
