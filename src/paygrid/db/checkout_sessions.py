"""Checkout session rows, and the publishable key each merchant's hosted page embeds.

Every status write is guarded in SQL: a session is completed (or expired) only from
``open``, and linked to at most one payment (``payment_id`` is also UNIQUE)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.domain.checkout import CheckoutSessionStatus
from paygrid.domain.payment_methods import PaymentMethodType


@dataclass(frozen=True, slots=True)
class NewCheckoutSession:
    """What a new session is created with; the table fills in the rest (status ``open``,
    ``created_at``)."""

    id: str
    merchant_id: str
    livemode: bool
    amount: int
    currency: str
    customer_id: str | None
    customer_email: str | None
    description: str | None
    success_url: str
    cancel_url: str
    payment_method_types: list[PaymentMethodType]
    metadata: dict[str, str]
    form_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class CheckoutSessionRow:
    """One ``checkout_sessions`` row."""

    id: str
    merchant_id: str
    livemode: bool
    status: CheckoutSessionStatus
    amount: int
    currency: str
    customer_id: str | None
    customer_email: str | None
    description: str | None
    success_url: str
    cancel_url: str
    payment_method_types: list[PaymentMethodType]
    metadata: dict[str, str]
    payment_id: str | None
    form_token: str
    expires_at: datetime
    completed_at: datetime | None
    created_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> CheckoutSessionRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        return cls(
            **{
                **values,
                "status": CheckoutSessionStatus(record["status"]),
                "payment_method_types": [
                    PaymentMethodType(t) for t in record["payment_method_types"]
                ],
            }
        )


def _row(record: asyncpg.Record | None) -> CheckoutSessionRow | None:
    return None if record is None else CheckoutSessionRow.from_record(record)


async def insert_session(conn: Executor, new: NewCheckoutSession) -> CheckoutSessionRow:
    columns = [f.name for f in fields(new)]
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    record = await conn.fetchrow(
        f"INSERT INTO checkout_sessions ({', '.join(columns)}) VALUES ({params}) RETURNING *",
        *(getattr(new, c) for c in columns),
    )
    assert record is not None
    return CheckoutSessionRow.from_record(record)


async def get_session(
    conn: Executor, merchant_id: str, livemode: bool, session_id: str
) -> CheckoutSessionRow | None:
    return _row(
        await conn.fetchrow(
            "SELECT * FROM checkout_sessions WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
            session_id,
            merchant_id,
            livemode,
        )
    )


async def get_session_unscoped(conn: Executor, session_id: str) -> CheckoutSessionRow | None:
    """By id alone: for the hosted page, which the customer's browser reaches without a key."""
    return _row(await conn.fetchrow("SELECT * FROM checkout_sessions WHERE id = $1", session_id))


async def list_sessions(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    status: CheckoutSessionStatus | None,
    payment: str | None,
) -> tuple[list[CheckoutSessionRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("status = $?", status)
    filters.add_if("payment_id = $?", payment)
    records, has_more = await fetch_page(conn, "checkout_sessions", filters, page)
    return [CheckoutSessionRow.from_record(r) for r in records], has_more


async def link_payment(
    conn: Executor, session_id: str, payment_id: str
) -> CheckoutSessionRow | None:
    """Record the session's payment, unless it is no longer open or has another one."""
    return _row(
        await conn.fetchrow(
            "UPDATE checkout_sessions SET payment_id = $2"
            " WHERE id = $1 AND status = 'open' AND (payment_id IS NULL OR payment_id = $2)"
            " RETURNING *",
            session_id,
            payment_id,
        )
    )


async def complete(
    conn: Connection, session_id: str, payment_id: str, now: datetime
) -> CheckoutSessionRow | None:
    """open -> complete at ``now`` (the caller's clock), for the session's own payment;
    ``None`` if it was not open. (A session past its expiry time still completes: the
    customer has paid.)"""
    return _row(
        await conn.fetchrow(
            "UPDATE checkout_sessions SET status = 'complete', completed_at = $3"
            " WHERE id = $1 AND status = 'open' AND payment_id = $2 RETURNING *",
            session_id,
            payment_id,
            now,
        )
    )


async def expire(
    conn: Connection, session_id: str, *, due_by: datetime | None = None
) -> CheckoutSessionRow | None:
    """open -> expired (only if due by ``due_by``, when given); ``None`` if it was not open."""
    return _row(
        await conn.fetchrow(
            "UPDATE checkout_sessions SET status = 'expired'"
            " WHERE id = $1 AND status = 'open'"
            " AND ($2::timestamptz IS NULL OR expires_at <= $2) RETURNING *",
            session_id,
            due_by,
        )
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
