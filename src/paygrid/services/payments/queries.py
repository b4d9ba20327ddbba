"""Read one payment, or a page of them."""

from __future__ import annotations

from datetime import datetime

from paygrid.db import payments as payments_db
from paygrid.db.pagination import PageRequest
from paygrid.db.payments import AttemptRow
from paygrid.dependencies import Deps
from paygrid.domain.payments import PaymentStatus
from paygrid.schemas.payments import Payment
from paygrid.services.context import Tenant
from paygrid.services.payments.locks import require_payment
from paygrid.services.payments.views import view_of


async def get_payment(deps: Deps, tenant: Tenant, payment_id: str) -> Payment:
    """The tenant's payment with its attempts, or 404."""
    return await view_of(deps.pool, await require_payment(deps.pool, tenant, payment_id))


async def list_payments(
    deps: Deps,
    tenant: Tenant,
    page: PageRequest,
    *,
    status: PaymentStatus | None,
    customer: str | None,
    currency: str | None,
    reference: str | None,
    created_gte: datetime | None = None,
    created_lte: datetime | None = None,
) -> tuple[list[Payment], bool]:
    """A page of the tenant's payments, newest first, each with its attempts."""
    rows, has_more = await payments_db.list_payments(
        deps.pool,
        tenant.merchant_id,
        tenant.livemode,
        page,
        status=status.value if status else None,
        customer=customer,
        currency=currency.upper() if currency else None,
        reference=reference,
        created_gte=created_gte,
        created_lte=created_lte,
    )
    by_payment: dict[str, list[AttemptRow]] = {}
    for attempt in await payments_db.attempts_of(deps.pool, [row.id for row in rows]):
        by_payment.setdefault(attempt.payment_id, []).append(attempt)
    return [Payment.from_row(row, by_payment.get(row.id, [])) for row in rows], has_more
