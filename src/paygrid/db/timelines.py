"""A payment's (or refund's) timeline on the dashboard: the events about it and the
webhook deliveries of those events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from paygrid.db.executor import Executor


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    """An event on a payment's (or refund's) timeline."""

    id: str
    type: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EventDelivery:
    """A webhook delivery of such an event, with its endpoint's URL."""

    id: str
    url: str
    status: str
    attempt_count: int
    created_at: datetime


async def events_for_objects(
    conn: Executor, merchant_id: str, livemode: bool, object_ids: list[str]
) -> list[ObjectEvent]:
    rows = await conn.fetch(
        "SELECT id, type, created_at FROM events WHERE merchant_id = $1 AND livemode = $2"
        " AND object_id = ANY($3::text[]) ORDER BY id",
        merchant_id,
        livemode,
        object_ids,
    )
    return [ObjectEvent(r["id"], r["type"], r["created_at"]) for r in rows]


async def deliveries_for_events(conn: Executor, event_ids: list[str]) -> list[EventDelivery]:
    rows = await conn.fetch(
        "SELECT d.id, e.url, d.status, d.attempt_count, d.created_at FROM webhook_deliveries d"
        " JOIN webhook_endpoints e ON e.id = d.endpoint_id"
        " WHERE d.event_id = ANY($1::text[]) ORDER BY d.id",
        event_ids,
    )
    return [
        EventDelivery(r["id"], r["url"], r["status"], r["attempt_count"], r["created_at"])
        for r in rows
    ]
