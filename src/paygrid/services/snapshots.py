"""Load the public shape of objects inside a transaction, for responses and event payloads.
(A payment's own shape and events live with the payment: ``services.payments.views``.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from paygrid.db import events as events_db
from paygrid.db import payments as payments_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.payments import PaymentRow
from paygrid.domain.events import EventType
from paygrid.schemas.payments import Payment


async def payment_view(conn: Executor, payment: PaymentRow) -> Payment:
    """The payment as the API shows it, with its attempts read now."""
    return Payment.from_row(payment, await payments_db.attempts_of(conn, [payment.id]))


class Owned(Protocol):
    """A typed row of a merchant's object (refund, customer, ...): what an event names."""

    @property
    def id(self) -> str: ...

    @property
    def merchant_id(self) -> str: ...

    @property
    def livemode(self) -> bool: ...


async def emit_object(
    conn: Connection,
    row: Owned,
    event_type: EventType,
    snapshot: dict[str, Any],
    *,
    created_at: datetime | None = None,
) -> None:
    """Write an event about ``row`` for its merchant and mode in the caller's transaction;
    ``created_at``: when it happened on the clock of the row's customer (its test clock's
    time, for objects on one), else the database's time."""
    await events_db.insert_event(
        conn,
        merchant_id=row.merchant_id,
        livemode=row.livemode,
        event_type=event_type.value,
        object_id=row.id,
        snapshot=snapshot,
        created_at=created_at,
    )
