"""Whether an invoice's payment is under way: what ``/void`` (and the deletion of its
customer) must not cut across. The payment of the invoice's current attempt carries the key
``invoice:{id}:attempt:{n}`` (``invoice_payments``), so it is found by that key."""

from __future__ import annotations

from typing import Final

from paygrid.db import payments as payments_db
from paygrid.db.executor import Executor
from paygrid.db.invoices import InvoiceRow
from paygrid.domain import invoices as domain
from paygrid.domain.invoices import InvoiceAction
from paygrid.domain.payments import PaymentStatus


async def refuse_while_charging(conn: Executor, row: InvoiceRow, action: InvoiceAction) -> None:
    """409 while the payment of the invoice's current attempt (``invoice:{id}:attempt:{n}``)
    is under way or has succeeded: its ``/pay`` is about to mark the invoice paid."""
    key = domain.attempt_key(row.id, row.attempt_count + 1)
    payment = await payments_db.get_by_idempotency_key(conn, row.merchant_id, row.livemode, key)
    if payment is not None and payment.status in _CHARGING:
        raise domain.InvoiceInvalidState(
            f"You cannot {action.value} this invoice while its payment {payment.id} is "
            f"{payment.status.value}.",
            current_status=row.status.value,
        )


_CHARGING: Final = frozenset(
    {
        PaymentStatus.PROCESSING,
        PaymentStatus.REQUIRES_ACTION,
        PaymentStatus.REQUIRES_CAPTURE,
        PaymentStatus.SUCCEEDED,
    }
)
