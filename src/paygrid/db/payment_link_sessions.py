"""The checkout sessions opened from payment links, and the completion slots they take.

The completion limit is enforced here, in SQL: a slot is reserved by one guarded UPDATE of
the link's ``reserved_count`` (``reserved_count < completion_limit``), which concurrent
reservations serialize on the link's row lock, so at most ``completion_limit`` sessions
ever hold or use a slot (a CHECK on the table is the backstop). Every session status write
is guarded by the transition table of ``paygrid.domain.payment_links``."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.domain.payment_links import (
    LinkSessionAction,
    LinkSessionStatus,
    sources,
    target,
)

# A held slot whose payment is still being made (3-D Secure, a provider's page) is kept;
# these payment states mean money moved or may still move.
PAYMENT_IN_FLIGHT = ["succeeded", "processing", "requires_capture", "requires_action"]


@dataclass(frozen=True, slots=True)
class LinkSessionRow:
    """One ``payment_link_sessions`` row: a checkout session opened from a link."""

    checkout_session_id: str
    payment_link_id: str
    merchant_id: str
    livemode: bool
    status: LinkSessionStatus
    payment_id: str | None
    subscription_id: str | None
    customer_id: str | None
    customer_email: str | None
    reserved_at: datetime | None
    completed_at: datetime | None
    created_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> LinkSessionRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        return cls(**{**values, "status": LinkSessionStatus(record["status"])})


async def insert_session(conn: Connection, row: LinkSessionRow) -> LinkSessionRow:
    columns = [f.name for f in fields(row)]
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    record = await conn.fetchrow(
        f"INSERT INTO payment_link_sessions ({', '.join(columns)}) VALUES ({params}) RETURNING *",
        *(getattr(row, c) for c in columns),
    )
    assert record is not None
    return LinkSessionRow.from_record(record)


async def session_of(conn: Executor, checkout_session_id: str) -> LinkSessionRow | None:
    record = await conn.fetchrow(
        "SELECT * FROM payment_link_sessions WHERE checkout_session_id = $1",
        checkout_session_id,
    )
    return None if record is None else LinkSessionRow.from_record(record)


async def mark_reserved(
    conn: Connection, checkout_session_id: str, email: str | None, now: datetime
) -> LinkSessionRow | None:
    """open/released -> reserved; ``None`` if the session is not in such a state."""
    action = LinkSessionAction.RESERVE
    record = await conn.fetchrow(
        "UPDATE payment_link_sessions SET status = $2, reserved_at = $3, customer_email = $4"
        " WHERE checkout_session_id = $1 AND status = ANY($5::text[]) RETURNING *",
        checkout_session_id,
        str(target(action)),
        now,
        email,
        sources(action),
    )
    return None if record is None else LinkSessionRow.from_record(record)


async def take_slot(conn: Connection, link_id: str, now: datetime) -> bool:
    """One more slot, unless the link is inactive, expired or every slot is taken. The
    link's row lock serializes concurrent takers, and each re-reads the count it waited
    for, so no more than ``completion_limit`` are ever taken."""
    taken = await conn.fetchval(
        "UPDATE payment_links SET reserved_count = reserved_count + 1"
        " WHERE id = $1 AND active AND (expires_at IS NULL OR expires_at > $2)"
        " AND (completion_limit IS NULL OR reserved_count < completion_limit)"
        " RETURNING id",
        link_id,
        now,
    )
    return taken is not None


async def complete(
    conn: Connection,
    checkout_session_id: str,
    now: datetime,
    *,
    payment_id: str | None,
    subscription_id: str | None,
    customer_id: str | None,
) -> LinkSessionRow | None:
    """reserved -> completed, and the link counts one more completion; ``None`` if the
    session held no slot (it completed already)."""
    action = LinkSessionAction.COMPLETE
    record = await conn.fetchrow(
        "UPDATE payment_link_sessions SET status = $2, completed_at = $3, payment_id = $4,"
        " subscription_id = $5, customer_id = $6"
        " WHERE checkout_session_id = $1 AND status = ANY($7::text[]) RETURNING *",
        checkout_session_id,
        str(target(action)),
        now,
        payment_id,
        subscription_id,
        customer_id,
        sources(action),
    )
    if record is None:
        return None
    row = LinkSessionRow.from_record(record)
    await conn.execute(
        "UPDATE payment_links SET completed_count = completed_count + 1 WHERE id = $1",
        row.payment_link_id,
    )
    return row


async def record_subscriber(
    conn: Connection,
    checkout_session_id: str,
    *,
    customer_id: str,
    subscription_id: str | None,
) -> bool:
    """Name the customer (then the subscription) a recurring link's reserved session makes,
    as soon as each exists, so a crash before the session settles cannot hide a paid
    subscription from the settle path. ``False`` if the session holds no slot."""
    recorded = await conn.fetchval(
        "UPDATE payment_link_sessions SET customer_id = $2,"
        " subscription_id = COALESCE($3, subscription_id)"
        " WHERE checkout_session_id = $1 AND status = 'reserved' RETURNING checkout_session_id",
        checkout_session_id,
        customer_id,
        subscription_id,
    )
    return recorded is not None


async def subscription_made_for(
    conn: Executor, customer_id: str, checkout_session_id: str
) -> str | None:
    """The newest subscription of ``customer_id`` made for the checkout session (its
    metadata names it): found even if a crash came before ``record_subscriber``."""
    found = await conn.fetchval(
        "SELECT id FROM subscriptions WHERE customer_id = $1"
        " AND metadata->>'checkout_session' = $2 ORDER BY created_at DESC, id DESC LIMIT 1",
        customer_id,
        checkout_session_id,
    )
    return None if found is None else str(found)


async def release_idle(conn: Connection, link_id: str, checkout_session_id: str) -> bool:
    """Give back the session's slot if its payment is not under way: none yet, or one
    that failed (a decline, a canceled or failed attempt). ``False`` if it kept it."""
    released = await conn.fetchval(
        "UPDATE payment_link_sessions s SET status = 'released', reserved_at = NULL"
        " FROM checkout_sessions c LEFT JOIN payments p ON p.id = c.payment_id"
        " WHERE s.checkout_session_id = $2 AND s.payment_link_id = $1"
        " AND s.status = 'reserved'"
        " AND c.id = s.checkout_session_id AND c.status <> 'complete'"
        " AND (p.id IS NULL OR p.status <> ALL($3::text[]))"
        " RETURNING s.checkout_session_id",
        link_id,
        checkout_session_id,
        PAYMENT_IN_FLIGHT,
    )
    if released is None:
        return False
    await conn.execute(
        "UPDATE payment_links SET reserved_count = reserved_count - 1 WHERE id = $1", link_id
    )
    return True


async def stale_sessions(conn: Executor, link_id: str, reserved_before: datetime) -> list[str]:
    """The link's sessions that have held a slot since before ``reserved_before``."""
    records = await conn.fetch(
        "SELECT checkout_session_id FROM payment_link_sessions"
        " WHERE payment_link_id = $1 AND status = 'reserved' AND reserved_at < $2"
        " ORDER BY reserved_at LIMIT 100",
        link_id,
        reserved_before,
    )
    return [str(r["checkout_session_id"]) for r in records]


async def completions(conn: Executor, link_id: str, limit: int = 100) -> list[LinkSessionRow]:
    """The link's completed sessions, newest first."""
    records = await conn.fetch(
        "SELECT * FROM payment_link_sessions WHERE payment_link_id = $1 AND status = 'completed'"
        " ORDER BY completed_at DESC LIMIT $2",
        link_id,
        limit,
    )
    return [LinkSessionRow.from_record(r) for r in records]


async def redact_for_customer(
    conn: Connection, merchant_id: str, livemode: bool, customer_id: str, email: str | None
) -> None:
    """GDPR erasure: forget the email entered on a link's page by the customer (their own
    sessions, and any that entered the customer's email)."""
    await conn.execute(
        "UPDATE payment_link_sessions SET customer_email = NULL"
        " WHERE merchant_id = $1 AND livemode = $2 AND (customer_id = $3"
        " OR ($4::text IS NOT NULL AND lower(customer_email) = lower($4)))",
        merchant_id,
        livemode,
        customer_id,
        email,
    )
