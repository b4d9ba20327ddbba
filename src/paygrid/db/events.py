"""The event outbox: rows written in the same transaction as the change they describe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from paygrid.db.executor import Connection
from paygrid.ids import new_id


async def insert_event(
    conn: Connection,
    *,
    merchant_id: str,
    livemode: bool,
    event_type: str,
    object_id: str,
    snapshot: dict[str, Any],
) -> str:
    event_id = new_id("evt")
    await conn.execute(
        "INSERT INTO events (id, merchant_id, livemode, type, object_id, data)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        event_id,
        merchant_id,
        livemode,
        event_type,
        object_id,
        {"object": snapshot},
    )
    return event_id


def event_row(
    *,
    merchant_id: str,
    livemode: bool,
    event_type: str,
    object_id: str,
    snapshot: dict[str, Any],
    created_at: datetime,
) -> dict[str, Any]:
    """The column values of a new event, for writing it inside a larger statement."""
    return {
        "id": new_id("evt"),
        "merchant_id": merchant_id,
        "livemode": livemode,
        "type": event_type,
        "object_id": object_id,
        "data": {"object": snapshot},
        "created_at": created_at,
    }
