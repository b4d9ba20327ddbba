"""The dashboard's payment search: one box matching an id, a reference, a receipt or
customer email, or an amount in any currency, with filters by the state the dashboard shows,
currency, connector and creation day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from paygrid.db.executor import Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page

Row = asyncpg.Record

# A payment's state as the dashboard shows it: ``dashboard.states.shown_state`` in SQL.
SHOWN_STATE = (
    "(CASE WHEN status = 'succeeded' AND amount_refunded > 0 THEN"
    " CASE WHEN amount_refunded >= amount_received THEN 'refunded'"
    " ELSE 'partially_refunded' END ELSE status END)"
)
REFUND_STATES = frozenset({"refunded", "partially_refunded"})


@dataclass(frozen=True, slots=True)
class PaymentSummary:
    """A payment as a row of the dashboard's payment list."""

    id: str
    amount: int
    currency: str
    status: str
    amount_received: int
    amount_refunded: int
    reference: str | None
    receipt_email: str | None
    connector: str | None
    created_at: datetime

    @classmethod
    def from_record(cls, row: Row) -> PaymentSummary:
        return cls(
            id=row["id"],
            amount=row["amount"],
            currency=row["currency"],
            status=row["status"],
            amount_received=row["amount_received"],
            amount_refunded=row["amount_refunded"],
            reference=row["reference"],
            receipt_email=row["receipt_email"],
            connector=row["connector"],
            created_at=row["created_at"],
        )


def _add_search(filters: Filters, query: str, amounts: list[tuple[str, int]]) -> None:
    """One OR group: the id, the reference, the receipt or customer email, or an amount
    (``amounts``: the query read as a major-unit amount, per currency)."""
    start = len(filters.args)
    filters.args.extend([query, [c for c, _ in amounts], [a for _, a in amounts], filters.args[0]])
    q, currencies, minors, merchant = (f"${start + i}" for i in range(1, 5))
    filters.clauses.append(
        f"(id = {q} OR reference = {q} OR lower(receipt_email) = lower({q})"
        f" OR customer_id IN (SELECT id FROM customers WHERE merchant_id = {merchant}"
        f"  AND lower(email) = lower({q}))"
        f" OR (currency, amount) IN (SELECT * FROM unnest({currencies}::text[],"
        f"  {minors}::bigint[])))"
    )


async def search_payments(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    query: str | None,
    amounts: list[tuple[str, int]],
    status: str | None,
    currency: str | None,
    connector: str | None,
    created_gte: datetime | None,
    created_lte: datetime | None,
) -> tuple[list[PaymentSummary], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    if query:
        _add_search(filters, query, amounts)
    if status is not None:
        # The plain status first (its index narrows the rows), then the refund state.
        filters.add("status = $?", "succeeded" if status in REFUND_STATES else status)
        filters.add(f"{SHOWN_STATE} = $?", status)
    filters.add_if("currency = $?", currency)
    filters.add_if("connector = $?", connector)
    filters.add_if("created_at >= $?", created_gte)
    filters.add_if("created_at <= $?", created_lte)
    rows, has_more = await fetch_page(conn, "payments", filters, page)
    return [PaymentSummary.from_record(r) for r in rows], has_more


async def payment_connectors(conn: Executor, merchant_id: str, livemode: bool) -> list[str]:
    # A loose index scan: one index probe per distinct connector (there are a handful),
    # where DISTINCT would read every payment of the merchant.
    first, after = (
        "SELECT connector FROM payments WHERE merchant_id = $1 AND livemode = $2"
        f" AND connector > {bound} ORDER BY connector LIMIT 1"
        for bound in ("''", "c.connector")
    )
    rows = await conn.fetch(
        f"WITH RECURSIVE c AS (({first}) UNION ALL SELECT ({after}) FROM c"
        " WHERE c.connector IS NOT NULL) SELECT connector FROM c WHERE connector IS NOT NULL",
        merchant_id,
        livemode,
    )
    return [r["connector"] for r in rows]
