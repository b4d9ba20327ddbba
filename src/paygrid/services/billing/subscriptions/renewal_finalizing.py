"""A batch of renewal drafts finalized together (``invoices.finalize_invoice`` for each):
``open`` with the merchant's next numbers, taken in the finalizing transaction in invoice
order, merchants in a fixed order, and each with its hosted invoice page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from paygrid.db import renewals as renewals_db
from paygrid.db.executor import Connection
from paygrid.db.invoices import InvoiceRow
from paygrid.db.renewals import Finalization
from paygrid.domain import invoices as invoices_domain
from paygrid.domain.invoices import InvoiceAction
from paygrid.domain.subscriptions import SubscriptionStatus
from paygrid.services.billing.hosted_links import new_link, publish

# Subscriptions claimed by one transaction.
BATCH_SIZE: Final = 500
# invoice.upcoming this long before a renewal (Stripe's default; not for shorter periods).
UPCOMING_NOTICE: Final = timedelta(days=7)
S = SubscriptionStatus


async def finalize_batch(
    conn: Connection, drafts: Sequence[InvoiceRow], now: datetime, base_url: str
) -> list[InvoiceRow]:
    """``invoices.finalize_invoice`` for each draft: ``open`` with the merchant's next
    numbers, taken in this transaction in invoice order (merchants in a fixed order), and
    a hosted page under ``base_url``."""
    links = {row.id: new_link(base_url) for row in drafts}
    by_merchant: dict[tuple[str, bool], list[InvoiceRow]] = {}
    for draft in sorted(drafts, key=lambda row: row.id):
        by_merchant.setdefault((draft.merchant_id, draft.livemode), []).append(draft)
    finalizations = []
    for (merchant_id, livemode), rows in sorted(by_merchant.items()):
        prefix, first = await renewals_db.take_numbers(
            conn, merchant_id, livemode, invoices_domain.default_prefix(merchant_id), len(rows)
        )
        for offset, row in enumerate(rows):
            days = row.days_until_due
            due = None if days is None else now + timedelta(days=days)
            number = invoices_domain.invoice_number(prefix, first + offset)
            finalizations.append(Finalization(row.id, number, due, links[row.id].url))
    sources = invoices_domain.allowed_sources(InvoiceAction.FINALIZE)
    opened = await renewals_db.finalize(conn, finalizations, sources, now)
    await publish(conn, {row.id: links[row.id] for row in opened}, now)
    return sorted(opened, key=lambda row: row.id)
