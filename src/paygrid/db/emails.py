"""The email send log (``emails``, migration 0023) as typed rows, its guarded status
writes, and the queries behind card expiry notices."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Final

import asyncpg

from paygrid.db.executor import Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.db.rows import column_names, row_values
from paygrid.domain.emails import EmailAction, EmailKind, EmailStatus, allowed_sources, target


@dataclass(frozen=True, slots=True)
class EmailRow:
    """One ``emails`` row: an email with its rendered content and where it is in sending."""

    id: str
    merchant_id: str
    livemode: bool
    kind: EmailKind
    object_id: str
    reason_key: str
    customer_id: str | None
    event_id: str | None
    recipient: str
    sender: str
    subject: str
    text_body: str
    html_body: str
    message_id: str
    status: EmailStatus
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> EmailRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        kind, status = EmailKind(record["kind"]), EmailStatus(record["status"])
        return cls(**{**values, "kind": kind, "status": status})


def _email(record: asyncpg.Record | None) -> EmailRow | None:
    return None if record is None else EmailRow.from_record(record)


async def insert_email(conn: Executor, email: EmailRow) -> EmailRow | None:
    """Record ``email`` unless one of its kind, object and reason exists: None then."""
    names = column_names(email)
    placeholders = ", ".join(f"${n}" for n in range(1, len(names) + 1))
    record = await conn.fetchrow(
        f"INSERT INTO emails ({', '.join(names)}) VALUES ({placeholders})"
        " ON CONFLICT (kind, object_id, reason_key) DO NOTHING RETURNING *",
        *row_values(email),
    )
    return _email(record)


async def transition(
    conn: Executor,
    email_id: str,
    action: EmailAction,
    now: datetime,
    *,
    last_error: str | None = None,
) -> EmailRow | None:
    """Apply ``action`` if the email is in one of its allowed sources; None when it is not
    (another worker moved it). ``begin`` counts an attempt; ``delivered`` stamps ``sent_at``."""
    record = await conn.fetchrow(
        "UPDATE emails SET status = $3, updated_at = $4,"
        " attempts = attempts + CASE WHEN $3 = 'sending' THEN 1 ELSE 0 END,"
        " sent_at = CASE WHEN $3 = 'sent' THEN $4 ELSE sent_at END,"
        " last_error = CASE WHEN $3 = 'sent' THEN NULL ELSE coalesce($5, last_error) END"
        " WHERE id = $1 AND status = ANY($2::text[]) RETURNING *",
        email_id,
        [s.value for s in allowed_sources(action)],
        target(action).value,
        now,
        last_error,
    )
    return _email(record)


async def list_emails(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    kind: EmailKind | None = None,
    status: EmailStatus | None = None,
) -> tuple[list[EmailRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("kind = $?", None if kind is None else kind.value)
    filters.add_if("status = $?", None if status is None else status.value)
    rows, has_more = await fetch_page(conn, "emails", filters, page)
    return [EmailRow.from_record(row) for row in rows], has_more


@dataclass(frozen=True, slots=True)
class ExpiringCard:
    """A customer's default card whose expiry notice is not recorded yet."""

    merchant_id: str
    livemode: bool
    customer_id: str
    email: str
    payment_method_id: str
    card_brand: str
    card_last4: str
    exp_month: int
    exp_year: int
    notice_at: datetime


# Default cards of live customers with an email and no notice for this expiry yet, with
# the moment the notice is due (``domain.emails.card_expiry_notice_at``, in SQL: 30 days
# before the end of the expiry month). ``{customers}``: whose; the caller adds the moment
# (the notice is due from ``notice_at`` until the card expires).
_NOTICE_AT: Final = (
    "make_timestamptz(pm.card_exp_year, pm.card_exp_month, 1, 0, 0, 0, 'UTC')"
    " + interval '1 month' - interval '30 days'"
)
_EXPIRING: Final = (
    "SELECT c.merchant_id, c.livemode, c.id AS customer_id, c.email,"
    " pm.id AS payment_method_id, pm.card_brand, pm.card_last4,"
    " pm.card_exp_month AS exp_month, pm.card_exp_year AS exp_year,"
    f" {_NOTICE_AT} AS notice_at"
    " FROM customers c JOIN payment_methods pm ON pm.id = c.default_payment_method_id"
    " AND pm.customer_id = c.id"
    " WHERE c.deleted_at IS NULL AND c.email IS NOT NULL AND {customers}"
    " AND NOT EXISTS (SELECT 1 FROM emails e WHERE e.kind = 'card_expiring'"
    " AND e.object_id = pm.id AND e.reason_key = 'expires:'"
    " || lpad(pm.card_exp_year::text, 4, '0') || '-' || lpad(pm.card_exp_month::text, 2, '0'))"
)


def _card(record: asyncpg.Record) -> ExpiringCard:
    return ExpiringCard(**{f.name: record[f.name] for f in fields(ExpiringCard)})


async def next_card_notice_on_clock(conn: Executor, clock_id: str) -> datetime | None:
    """The earliest notice due for the customers of test clock ``clock_id`` whose card has
    not expired at the clock's time (it may be at or before that time)."""
    sql = _EXPIRING.format(customers="c.test_clock_id = $1")
    value: datetime | None = await conn.fetchval(
        f"SELECT min(x.notice_at) FROM ({sql}) x"
        " JOIN test_clocks t ON t.id = $1 WHERE x.notice_at + interval '30 days' > t.frozen_time",
        clock_id,
    )
    return value


async def card_notices_on_clock(
    conn: Executor, clock_id: str, moment: datetime
) -> list[ExpiringCard]:
    """The notices due at ``moment`` for the customers of test clock ``clock_id``."""
    sql = _EXPIRING.format(customers="c.test_clock_id = $1")
    records = await conn.fetch(
        f"SELECT * FROM ({sql}) x WHERE x.notice_at <= $2"
        " AND x.notice_at + interval '30 days' > $2 ORDER BY x.payment_method_id",
        clock_id,
        moment,
    )
    return [_card(r) for r in records]


async def card_notices_on_system_clock(
    conn: Executor, now: datetime, limit: int
) -> list[ExpiringCard]:
    """The notices due at ``now`` for customers on the system clock."""
    sql = _EXPIRING.format(customers="c.test_clock_id IS NULL")
    records = await conn.fetch(
        f"SELECT * FROM ({sql}) x WHERE x.notice_at <= $1"
        " AND x.notice_at + interval '30 days' > $1 ORDER BY x.payment_method_id LIMIT $2",
        now,
        limit,
    )
    return [_card(r) for r in records]


async def customer_email(conn: Executor, customer_id: str) -> str | None:
    """A live customer's email (None when it has none or is gone)."""
    email: str | None = await conn.fetchval(
        "SELECT email FROM customers WHERE id = $1 AND deleted_at IS NULL", customer_id
    )
    return email


async def erase_for_customer(conn: Executor, customer_id: str) -> None:
    """GDPR erasure: the customer's emails lose their address and bodies (the log keeps
    kind, object, subject and status); one not sent yet never will be."""
    await conn.execute(
        "UPDATE emails SET recipient = '[erased]', text_body = '', html_body = '',"
        " status = CASE WHEN status IN ('queued', 'sending') THEN 'failed' ELSE status END,"
        " last_error = CASE WHEN status IN ('queued', 'sending') THEN 'erased'"
        " ELSE last_error END WHERE customer_id = $1",
        customer_id,
    )
