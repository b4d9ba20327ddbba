"""Load the public shape of objects inside a transaction, for responses and event payloads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from paygrid.db import events as events_db
from paygrid.db import payments as payments_db
from paygrid.db.executor import Connection, Executor
from paygrid.domain.events import EventType
from paygrid.schemas.common import RowLike
from paygrid.schemas.payments import Payment


async def payment_view(conn: Executor, row: RowLike) -> Payment:
    return Payment.from_row(row, await payments_db.list_attempts(conn, [row["id"]]))


async def emit(
    conn: Connection, row: asyncpg.Record, event_type: EventType, snapshot: dict[str, Any]
) -> None:
    """Write an event for ``row``'s merchant and mode in the caller's transaction."""
    await events_db.insert_event(
        conn,
        merchant_id=row["merchant_id"],
        livemode=row["livemode"],
        event_type=event_type.value,
        object_id=row["id"],
        snapshot=snapshot,
    )


async def emit_payment(
    conn: Connection,
    row: asyncpg.Record,
    event_type: EventType,
    attempts: Sequence[asyncpg.Record] | None = None,
) -> Payment:
    """Write ``event_type`` with the payment's snapshot; pass ``attempts`` when the caller
    already holds all of them, to save a query."""
    view = await payment_view(conn, row) if attempts is None else Payment.from_row(row, attempts)
    await emit(conn, row, event_type, view.model_dump(mode="json"))
    return view
