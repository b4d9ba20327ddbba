"""Checkout session rows, and the publishable key each merchant's hosted page embeds.

Every status write is guarded in SQL: a session is completed (or expired) only from
``open``, and linked to at most one payment (``payment_id`` is also UNIQUE)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page

Row = asyncpg.Record

_COLUMNS = (
    "id",
    "merchant_id",
    "livemode",
    "amount",
    "currency",
    "customer_id",
    "customer_email",
    "description",
    "success_url",
    "cancel_url",
    "payment_method_types",
    "metadata",
    "form_token",
    "expires_at",
)


async def insert_session(conn: Executor, values: dict[str, Any]) -> Row:
    assert set(values) == set(_COLUMNS), set(values) ^ set(_COLUMNS)
    params = ", ".join(f"${i}" for i in range(1, len(_COLUMNS) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO checkout_sessions ({', '.join(_COLUMNS)}) VALUES ({params}) RETURNING *",
        *(values[c] for c in _COLUMNS),
    )
    assert row is not None
    return row


async def get_session(
    conn: Executor, merchant_id: str, livemode: bool, session_id: str
) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM checkout_sessions WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        session_id,
        merchant_id,
        livemode,
    )


async def get_session_unscoped(conn: Executor, session_id: str) -> Row | None:
    """By id alone: for the hosted page, which the customer's browser reaches without a key."""
    return await conn.fetchrow("SELECT * FROM checkout_sessions WHERE id = $1", session_id)


async def list_sessions(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    status: str | None,
    payment: str | None,
) -> tuple[list[Row], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("status = $?", status)
    filters.add_if("payment_id = $?", payment)
    return await fetch_page(conn, "checkout_sessions", filters, page)


async def link_payment(conn: Executor, session_id: str, payment_id: str) -> Row | None:
    """Record the session's payment, unless it is no longer open or has another one."""
    return await conn.fetchrow(
        "UPDATE checkout_sessions SET payment_id = $2"
        " WHERE id = $1 AND status = 'open' AND (payment_id IS NULL OR payment_id = $2)"
        " RETURNING *",
        session_id,
        payment_id,
    )


async def complete(conn: Connection, session_id: str, payment_id: str) -> Row | None:
    """open -> complete, for the session's own payment; ``None`` if it was not open. (A
    session past its expiry time still completes: the customer has paid.)"""
    return await conn.fetchrow(
        "UPDATE checkout_sessions SET status = 'complete', completed_at = now()"
        " WHERE id = $1 AND status = 'open' AND payment_id = $2 RETURNING *",
        session_id,
        payment_id,
    )


async def expire(
    conn: Connection, session_id: str, *, due_by: datetime | None = None
) -> Row | None:
    """open -> expired (only if due by ``due_by``, when given); ``None`` if it was not open."""
    return await conn.fetchrow(
        "UPDATE checkout_sessions SET status = 'expired'"
        " WHERE id = $1 AND status = 'open' AND ($2::timestamptz IS NULL OR expires_at <= $2)"
        " RETURNING *",
        session_id,
        due_by,
    )


async def checkout_key(conn: Executor, merchant_id: str, livemode: bool) -> str | None:
    """The merchant's hosted-page publishable key, unless it was revoked."""
    value = await conn.fetchval(
        "SELECT c.key FROM checkout_keys c JOIN api_keys k ON k.id = c.api_key_id"
        " WHERE c.merchant_id = $1 AND c.livemode = $2 AND k.revoked_at IS NULL",
        merchant_id,
        livemode,
    )
    return None if value is None else str(value)


async def lock_checkout_key(conn: Connection, merchant_id: str, livemode: bool) -> None:
    """Serialize issuing a merchant's hosted-page key (two first page views at once)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('checkout_key:' || $1 || ':' || $2::boolean::text))",
        merchant_id,
        livemode,
    )


async def save_checkout_key(
    conn: Connection, merchant_id: str, livemode: bool, api_key_id: str, key: str
) -> None:
    await conn.execute(
        "INSERT INTO checkout_keys (merchant_id, livemode, api_key_id, key)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (merchant_id, livemode)"
        " DO UPDATE SET api_key_id = EXCLUDED.api_key_id, key = EXCLUDED.key",
        merchant_id,
        livemode,
        api_key_id,
        key,
    )
