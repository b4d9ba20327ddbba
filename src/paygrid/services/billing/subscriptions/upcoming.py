"""``GET /v1/invoices/upcoming?subscription=``: the invoice the subscription's next renewal
will make, computed by the same functions the renewal uses, so the two agree line for
line (unless the subscription changes in between). Nothing is stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from paygrid.db import subscriptions as subs_db
from paygrid.db.executor import Executor
from paygrid.db.prices import PriceRow
from paygrid.db.subscriptions import ProrationRow, SubscriptionItemRow, SubscriptionRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import ResourceMissing
from paygrid.domain.invoices import BillingReason
from paygrid.domain.subscriptions import BILLING, SubscriptionStatus
from paygrid.schemas.invoices import Invoice
from paygrid.services.billing.subscriptions import invoicing
from paygrid.services.billing.subscriptions.views import load, priced_items
from paygrid.services.context import Tenant

# The id the preview carries: it is not an invoice yet (Stripe's has none).
UPCOMING_ID = "upcoming"


async def upcoming_invoice(deps: Deps, tenant: Tenant, subscription_id: str) -> Invoice:
    """The next renewal's invoice: its period, a line per item, then the pending proration
    lines; 404 ``invoice_upcoming_none`` when no renewal is coming (paused, ending at the
    period's end, ended, or not started)."""
    sub = await load(deps.pool, tenant, subscription_id)
    renews = sub.status in BILLING or sub.status is SubscriptionStatus.TRIALING
    if not renews or sub.cancel_at_period_end:
        raise ResourceMissing(
            f"No upcoming invoice for subscription '{subscription_id}'.",
            param="subscription",
            code="invoice_upcoming_none",
        )
    return await preview(deps.pool, sub)


async def preview(conn: Executor, sub: SubscriptionRow) -> Invoice:
    """The next renewal's invoice as the renewal will make it, read in ``conn``."""
    items, prices = await priced_items(conn, sub)
    return preview_of(sub, items, prices, await subs_db.pending_prorations(conn, sub.id))


def preview_of(
    sub: SubscriptionRow,
    items: Sequence[SubscriptionItemRow],
    prices: dict[str, PriceRow],
    pending: Sequence[ProrationRow],
) -> Invoice:
    """``preview`` of the items, prices and pending prorations read already."""
    period = invoicing.next_period(sub)
    draft = invoicing.draft(sub, BillingReason.SUBSCRIPTION_CYCLE, period, period.start)
    draft = replace(draft, id=UPCOMING_ID)
    lines = invoicing.period_lines(draft.id, sub, items, prices, period)
    lines += invoicing.proration_invoice_lines(draft.id, sub, pending, len(lines))
    total = sum(line.amount for line in lines)
    draft = replace(draft, subtotal=total, total=total, amount_due=max(total, 0))
    return Invoice.from_row(replace(draft, amount_remaining=draft.amount_due), lines)
