"""The event outbox: rows written in the same transaction as the change they describe."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db.engine import JsonText
from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.ids import new_ordered_id


@dataclass(frozen=True, slots=True)
class EventRow:
    """An ``events`` row: what changed, with ``data["object"]`` the object's snapshot."""

    id: str
    merchant_id: str
    livemode: bool
    type: str
    object_id: str
    data: dict[str, Any]
    created_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> EventRow:
        return cls(
            id=record["id"],
            merchant_id=record["merchant_id"],
            livemode=record["livemode"],
            type=record["type"],
            object_id=record["object_id"],
            data=record["data"],
            created_at=record["created_at"],
        )


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event built in Python before it is written (its id and time chosen here)."""

    id: str
    merchant_id: str
    livemode: bool
    type: str
    object_id: str
    data: dict[str, Any]
    created_at: datetime

    def values(self) -> dict[str, Any]:
        """The column values, for writing the event inside a larger statement."""
        return {
            "id": self.id,
            "merchant_id": self.merchant_id,
            "livemode": self.livemode,
            "type": self.type,
            "object_id": self.object_id,
            "data": self.data,
            "created_at": self.created_at,
        }


async def insert_event(
    conn: Connection,
    *,
    merchant_id: str,
    livemode: bool,
    event_type: str,
    object_id: str,
    snapshot: dict[str, Any],
    created_at: datetime | None = None,
) -> str:
    """Write an event in the caller's transaction. ``created_at`` is the time the change
    happened on the clock of the object's customer (a test clock's frozen time, Stripe's
    ``created``); without it, the database's. The id orders the events as they were
    written (``new_ordered_id``), whatever their ``created_at``."""
    event_id = new_ordered_id("evt")
    await conn.execute(
        "INSERT INTO events (id, merchant_id, livemode, type, object_id, data, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()))",
        event_id,
        merchant_id,
        livemode,
        event_type,
        object_id,
        {"object": snapshot},
        created_at,
    )
    return event_id


async def insert_events(conn: Connection, events: Sequence[NewEventOf]) -> None:
    """``insert_event`` for many events in one statement, each written as ``insert_event``
    writes it (ordered ids in the given order, ``created_at`` or the database's time)."""
    if not events:
        return
    await conn.execute(
        "INSERT INTO events (id, merchant_id, livemode, type, object_id, data, created_at)"
        " SELECT i, m, l, t, o, d, coalesce(c, now()) FROM unnest($1::text[], $2::text[],"
        " $3::boolean[], $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[])"
        " AS e(i, m, l, t, o, d, c)",
        [new_ordered_id("evt") for _ in events],
        [e.merchant_id for e in events],
        [e.livemode for e in events],
        [e.event_type for e in events],
        [e.object_id for e in events],
        [{"object": e.snapshot} for e in events],
        [e.created_at for e in events],
    )


@dataclass(frozen=True, slots=True)
class NewEventOf:
    """An event to write with ``insert_events``: about ``object_id``, with its snapshot,
    at ``created_at`` (None: the database's time)."""

    merchant_id: str
    livemode: bool
    event_type: str
    object_id: str
    snapshot: dict[str, Any]
    created_at: datetime | None


def new_event(
    *,
    merchant_id: str,
    livemode: bool,
    event_type: str,
    object_id: str,
    snapshot: dict[str, Any],
    created_at: datetime,
) -> NewEvent:
    """A new event about ``object_id``, with the object's snapshot."""
    return NewEvent(
        id=new_ordered_id("evt"),
        merchant_id=merchant_id,
        livemode=livemode,
        type=event_type,
        object_id=object_id,
        data={"object": snapshot},
        created_at=created_at,
    )


def event_row(
    *,
    merchant_id: str,
    livemode: bool,
    event_type: str,
    object_id: str,
    snapshot: dict[str, Any] | JsonText,
    created_at: datetime,
) -> dict[str, Any]:
    """The column values of a new event, for writing it inside a larger statement. A
    snapshot serialised already (the response it also is) is embedded as it is."""
    data: dict[str, Any] | JsonText = (
        JsonText('{"object":' + snapshot + "}")
        if isinstance(snapshot, JsonText)
        else {"object": snapshot}
    )
    return {
        "id": new_ordered_id("evt"),
        "merchant_id": merchant_id,
        "livemode": livemode,
        "type": event_type,
        "object_id": object_id,
        "data": data,
        "created_at": created_at,
    }


async def get_event(
    conn: Executor, merchant_id: str, livemode: bool, event_id: str
) -> EventRow | None:
    row = await conn.fetchrow(
        "SELECT * FROM events WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        event_id,
        merchant_id,
        livemode,
    )
    return None if row is None else EventRow.from_record(row)


async def get_event_by_id(conn: Executor, event_id: str) -> EventRow | None:
    """An event whatever its merchant: for background jobs that act on events the outbox
    handed them, never for a request, which must stay within its tenant (``get_event``)."""
    row = await conn.fetchrow("SELECT * FROM events WHERE id = $1", event_id)
    return None if row is None else EventRow.from_record(row)


async def list_events(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    event_type: str | None = None,
    created_gte: datetime | None = None,
    created_lte: datetime | None = None,
) -> tuple[list[EventRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("type = $?", event_type)
    filters.add_if("created_at >= $?", created_gte)
    filters.add_if("created_at <= $?", created_lte)
    rows, has_more = await fetch_page(conn, "events", filters, page)
    return [EventRow.from_record(row) for row in rows], has_more
