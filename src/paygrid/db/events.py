"""The event outbox: rows written in the same transaction as the change they describe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
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


async def get_event(
    conn: Executor, merchant_id: str, livemode: bool, event_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM events WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        event_id,
        merchant_id,
        livemode,
    )


async def get_event_by_id(conn: Executor, event_id: str) -> asyncpg.Record | None:
    """An event whatever its merchant: for background jobs that act on events the outbox
    handed them, never for a request, which must stay within its tenant (``get_event``)."""
    return await conn.fetchrow("SELECT * FROM events WHERE id = $1", event_id)


async def list_events(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    event_type: str | None = None,
    created_gte: datetime | None = None,
    created_lte: datetime | None = None,
) -> tuple[list[asyncpg.Record], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("type = $?", event_type)
    filters.add_if("created_at >= $?", created_gte)
    filters.add_if("created_at <= $?", created_lte)
    return await fetch_page(conn, "events", filters, page)
