"""Setting the fee and net of the payments and refunds that settlement transactions settle,
once, with ``payment.fee_settled`` in the caller's transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from paygrid.db import settlement_links as links_db
from paygrid.db.executor import Connection
from paygrid.db.settlements import SettlementTransactionRow
from paygrid.domain.events import EventType
from paygrid.domain.settlements import SettlementTransactionType
from paygrid.services.payments.views import emit_payment


async def settle_fees(
    conn: Connection, rows: Sequence[SettlementTransactionRow], now: datetime
) -> int:
    """Set the fee and net of the payments and refunds these transactions settle (the first
    time only); ``payment.fee_settled`` for each payment. Returns how many payments."""
    charges: dict[tuple[str, str], list[SettlementTransactionRow]] = defaultdict(list)
    for row in rows:
        if row.type is SettlementTransactionType.CHARGE and row.payment_id is not None:
            charges[(row.payment_id, row.currency)].append(row)
        elif row.type is SettlementTransactionType.REFUND and row.refund_id is not None:
            await links_db.settle_refund_fee(conn, row.refund_id, row.currency, row.fee, row.net)
    settled = 0
    for (payment_id, currency), items in sorted(charges.items()):  # one lock order
        fee, net = sum(i.fee for i in items), sum(i.net for i in items)
        payment = await links_db.settle_payment_fee(conn, payment_id, currency, fee, net, now)
        if payment is not None:
            await emit_payment(conn, payment, EventType.PAYMENT_FEE_SETTLED)
            settled += 1
    return settled
