"""Subscriptions, their items and pending proration lines, as typed rows, and what the
billing schedule asks of them. Every status write is guarded by the allowed sources of
``paygrid.domain.subscriptions``; zero rows updated means another request moved it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg

from paygrid.db.billing_settings import FINALIZE_DELAY_OF_INVOICE
from paygrid.db.executor import Connection, Executor
from paygrid.db.invoices import InvoiceRow
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.db.rows import column_names, row_values
from paygrid.domain.catalog import RecurringInterval
from paygrid.domain.invoices import CollectionMethod
from paygrid.domain.subscriptions import SubscriptionStatus


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    """One ``subscriptions`` row; ``[current_period_start, current_period_end)`` is the
    period being billed (the trial, while trialing)."""

    id: str
    merchant_id: str
    livemode: bool
    customer_id: str
    status: SubscriptionStatus
    currency: str
    interval: RecurringInterval
    interval_count: int
    billing_cycle_anchor: datetime
    current_period_start: datetime
    current_period_end: datetime
    trial_start: datetime | None
    trial_end: datetime | None
    trial_will_end_sent: bool
    upcoming_sent_for: datetime | None  # the period end whose invoice.upcoming was sent
    cancel_at_period_end: bool
    canceled_at: datetime | None
    ended_at: datetime | None
    paused_at: datetime | None
    resumes_at: datetime | None
    collection_method: CollectionMethod
    days_until_due: int | None
    default_payment_method_id: str | None
    latest_invoice_id: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> SubscriptionRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        return cls(
            **{
                **values,
                "status": SubscriptionStatus(record["status"]),
                "interval": RecurringInterval(record["interval"]),
                "collection_method": CollectionMethod(record["collection_method"]),
            }
        )


@dataclass(frozen=True, slots=True)
class SubscriptionItemRow:
    """One ``subscription_items`` row."""

    id: str
    subscription_id: str
    price_id: str
    quantity: int
    metadata: dict[str, str]
    created_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> SubscriptionItemRow:
        return cls(**{f.name: record[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class ProrationRow:
    """One ``subscription_prorations`` row: pending while ``invoice_id`` is None."""

    id: str
    subscription_id: str
    invoice_id: str | None
    position: int  # its order among the lines of one change
    price_id: str
    unit_amount: int
    quantity: int
    amount: int
    period_start: datetime
    period_end: datetime
    created_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> ProrationRow:
        return cls(**{f.name: record[f.name] for f in fields(cls)})


def _sub(record: asyncpg.Record | None) -> SubscriptionRow | None:
    return None if record is None else SubscriptionRow.from_record(record)


def _insert_sql(table: str, names: Sequence[str], returning: bool = True) -> str:
    params = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    tail = " RETURNING *" if returning else ""
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({params}){tail}"


async def insert_subscription(conn: Connection, row: SubscriptionRow) -> SubscriptionRow:
    record = await conn.fetchrow(_insert_sql("subscriptions", column_names(row)), *row_values(row))
    assert record is not None
    return SubscriptionRow.from_record(record)


async def get_subscription(
    conn: Executor, merchant_id: str, livemode: bool, subscription_id: str, *, lock: bool = False
) -> SubscriptionRow | None:
    return _sub(
        await conn.fetchrow(
            "SELECT * FROM subscriptions WHERE id = $1 AND merchant_id = $2 AND livemode = $3"
            + (" FOR UPDATE" if lock else ""),
            subscription_id,
            merchant_id,
            livemode,
        )
    )


async def get_by_id(conn: Executor, subscription_id: str) -> SubscriptionRow | None:
    """A subscription by id, whoever owns it (the schedule knows only the id)."""
    return _sub(await conn.fetchrow("SELECT * FROM subscriptions WHERE id = $1", subscription_id))


async def lock_by_id(conn: Connection, subscription_id: str) -> SubscriptionRow | None:
    """The schedule's lock: the subscription row, whoever owns it."""
    return _sub(
        await conn.fetchrow("SELECT * FROM subscriptions WHERE id = $1 FOR UPDATE", subscription_id)
    )


async def lock_ongoing_of_customer(conn: Connection, customer_id: str) -> list[SubscriptionRow]:
    """The customer's subscriptions that have not ended, locked in id order (deleting the
    customer cancels them)."""
    records = await conn.fetch(
        "SELECT * FROM subscriptions WHERE customer_id = $1"
        " AND status NOT IN ('canceled', 'incomplete_expired') ORDER BY id FOR UPDATE",
        customer_id,
    )
    return [SubscriptionRow.from_record(r) for r in records]


async def list_subscriptions(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    customer_id: str | None,
    status: SubscriptionStatus | None,
    price_id: str | None,
) -> tuple[list[SubscriptionRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("customer_id = $?", customer_id)
    filters.add_if("status = $?", None if status is None else status.value)
    filters.add_if(
        "id IN (SELECT subscription_id FROM subscription_items WHERE price_id = $?)", price_id
    )
    records, has_more = await fetch_page(conn, "subscriptions", filters, page)
    return [SubscriptionRow.from_record(r) for r in records], has_more


# Columns a change may set besides the status.
_CHANGE_COLUMNS: Final = frozenset(
    {
        "billing_cycle_anchor",
        "current_period_start",
        "current_period_end",
        "trial_will_end_sent",
        "upcoming_sent_for",
        "cancel_at_period_end",
        "canceled_at",
        "ended_at",
        "paused_at",
        "resumes_at",
        "default_payment_method_id",
        "latest_invoice_id",
        "metadata",
    }
)


async def transition(
    conn: Executor,
    subscription_id: str,
    sources: frozenset[SubscriptionStatus],
    target: SubscriptionStatus | None,
    now: datetime,
    changes: dict[str, Any] | None = None,
) -> SubscriptionRow | None:
    """Set ``target`` (None: keep the status) and ``changes`` only if the status is one of
    ``sources``; None when it is not (a concurrent change got there first)."""
    changes = dict(changes or {})
    assert set(changes) <= _CHANGE_COLUMNS
    assignments = "".join(f", {column} = ${i}" for i, column in enumerate(changes, start=5))
    return _sub(
        await conn.fetchrow(
            "UPDATE subscriptions SET status = coalesce($2, status), updated_at = $4"
            f"{assignments} WHERE id = $1 AND status = ANY($3::text[]) RETURNING *",
            subscription_id,
            None if target is None else target.value,
            [s.value for s in sources],
            now,
            *changes.values(),
        )
    )


# ---- items


async def items_of(
    conn: Executor, subscription_ids: Sequence[str]
) -> dict[str, list[SubscriptionItemRow]]:
    records = await conn.fetch(
        "SELECT * FROM subscription_items WHERE subscription_id = ANY($1::text[])"
        " ORDER BY subscription_id, created_at, id",
        list(subscription_ids),
    )
    grouped: dict[str, list[SubscriptionItemRow]] = {i: [] for i in subscription_ids}
    for record in records:
        item = SubscriptionItemRow.from_record(record)
        grouped[item.subscription_id].append(item)
    return grouped


async def insert_items(conn: Connection, items: Sequence[SubscriptionItemRow]) -> None:
    if items:
        names = column_names(items[0])
        sql = _insert_sql("subscription_items", names, returning=False)
        await conn.executemany(sql, [row_values(item) for item in items])


async def set_quantity(conn: Connection, item_id: str, quantity: int) -> None:
    await conn.execute(
        "UPDATE subscription_items SET quantity = $2 WHERE id = $1", item_id, quantity
    )


async def delete_items(conn: Connection, item_ids: Sequence[str]) -> None:
    await conn.execute("DELETE FROM subscription_items WHERE id = ANY($1::text[])", list(item_ids))


# ---- prorations


async def insert_prorations(conn: Connection, rows: Sequence[ProrationRow]) -> None:
    if rows:
        names = column_names(rows[0])
        sql = _insert_sql("subscription_prorations", names, returning=False)
        await conn.executemany(sql, [row_values(row) for row in rows])


async def claim_prorations(
    conn: Connection, subscription_id: str, invoice_id: str
) -> list[ProrationRow]:
    """Put the subscription's pending proration lines on ``invoice_id`` (in creation order)."""
    records = await conn.fetch(
        "UPDATE subscription_prorations SET invoice_id = $2"
        " WHERE subscription_id = $1 AND invoice_id IS NULL RETURNING *",
        subscription_id,
        invoice_id,
    )
    return sorted(
        (ProrationRow.from_record(r) for r in records),
        key=lambda row: (row.created_at, row.position),
    )


async def pending_prorations(conn: Executor, subscription_id: str) -> list[ProrationRow]:
    records = await conn.fetch(
        "SELECT * FROM subscription_prorations WHERE subscription_id = $1"
        " AND invoice_id IS NULL ORDER BY created_at, position",
        subscription_id,
    )
    return [ProrationRow.from_record(r) for r in records]


# ---- invoices of subscriptions


async def insert_period_invoice(conn: Connection, invoice: InvoiceRow) -> InvoiceRow | None:
    """Insert a subscription's invoice for the period starting at ``invoice.period_start``;
    None when that period has an invoice already (``UNIQUE (subscription_id,
    period_start)``): a period is never invoiced twice, whatever runs concurrently."""
    values = {k: v for k, v in zip(column_names(invoice), row_values(invoice), strict=True)}
    values.pop("amount_remaining")
    record = await conn.fetchrow(
        _insert_sql("invoices", list(values)).replace(
            " RETURNING *", " ON CONFLICT (subscription_id, period_start) DO NOTHING RETURNING *"
        ),
        *values.values(),
    )
    return None if record is None else InvoiceRow.from_record(record)


# An open invoice the schedule charges and no attempt has touched yet (the predicate of
# the partial index ``invoices_uncollected``, migration 0030).
UNCOLLECTED: Final = (
    "{i}.status = 'open' AND {i}.attempt_count = 0 AND {i}.payment_id IS NULL"
    " AND {i}.subscription_id IS NOT NULL AND {i}.auto_advance"
    " AND {i}.collection_method = 'charge_automatically'"
)


async def invoices_to_collect(conn: Executor, subscription_id: str) -> list[str]:
    """The subscription's invoices the schedule still has to finalize (drafts) or charge
    (open, automatic, never attempted), oldest first."""
    rows = await conn.fetch(
        "SELECT id FROM invoices WHERE subscription_id = $1 AND ("
        f" (status = 'draft' AND auto_advance) OR ({UNCOLLECTED.format(i='invoices')}))"
        " ORDER BY id",
        subscription_id,
    )
    return [str(r["id"]) for r in rows]


async def latest_invoice_paid(conn: Executor, row: SubscriptionRow) -> bool:
    if row.latest_invoice_id is None:
        return False
    status = await conn.fetchval("SELECT status FROM invoices WHERE id = $1", row.latest_invoice_id)
    return bool(status == "paid")


# ---- the schedule

# invoice.upcoming is due 7 days before a renewal that will charge, once per period, for
# periods longer than that (``schedule.UPCOMING_NOTICE``).
UPCOMING_DUE: Final = (
    "s.status IN ('active', 'past_due', 'unpaid') AND NOT s.cancel_at_period_end"
    " AND s.current_period_end - s.current_period_start > interval '7 days'"
    " AND s.upcoming_sent_for IS DISTINCT FROM s.current_period_end"
)
# When a live subscription next has time-driven work: the end of a billed period (or of
# any period with a scheduled cancel), the trial's end and its notice, a pause's end, an
# unpaid first invoice's expiry. NULLs are ignored by least().
DUE_AT: Final = (
    "least("
    " CASE WHEN s.status IN ('active', 'past_due', 'unpaid') OR (s.cancel_at_period_end"
    "   AND s.status IN ('trialing', 'paused')) THEN s.current_period_end END,"
    " CASE WHEN s.status = 'trialing' THEN s.trial_end END,"
    " CASE WHEN s.status = 'trialing' AND NOT s.trial_will_end_sent"
    "   THEN s.trial_end - interval '3 days' END,"
    " CASE WHEN s.status = 'paused' THEN s.resumes_at END,"
    f" CASE WHEN {UPCOMING_DUE} THEN s.current_period_end - interval '7 days' END,"
    " CASE WHEN s.status = 'incomplete' THEN s.created_at + interval '23 hours' END)"
)
# When the latest invoice, a renewal's draft, is due to be finalized: its merchant's
# ``finalize_after_seconds``, else ``invoice_finalize_delay`` (the parameter ``${}``, an
# interval), after it was made.
FINALIZE_DUE: Final = (
    f"(SELECT i.created_at + {FINALIZE_DELAY_OF_INVOICE.format('${}::interval')}"
    " FROM invoices i WHERE i.id = s.latest_invoice_id"
    " AND i.status = 'draft' AND i.auto_advance AND i.billing_reason = 'subscription_cycle')"
)
# When an active subscription's renewal invoice that a crashed pass finalized but never
# charged is due: at its finalization (a worker killed between a renewal batch's commit and
# its charges leaves such invoices; ``schedule._sweep`` charges them with the same key, so
# a charge that did reach the provider is found, not made twice). Only ``active``: a
# collection that fails (a decline, no method) moves the subscription to ``past_due``.
COLLECT_DUE: Final = (
    "(SELECT min(i.finalized_at) FROM invoices i WHERE i.subscription_id = s.id"
    f" AND s.status = 'active' AND {UNCOLLECTED.format(i='i')})"
)
# Not ended, and its customer not deleted (a deleted customer's subscriptions bill nothing).
_LIVE: Final = "s.status NOT IN ('canceled', 'incomplete_expired') AND c.deleted_at IS NULL"


async def next_due_on_clock(
    conn: Executor, clock_id: str, finalize_delay: timedelta
) -> datetime | None:
    """The earliest due moment of the subscriptions of test clock ``clock_id``'s customers
    (a renewal's draft: ``finalize_delay`` after it was made; an uncollected renewal
    invoice: its finalization)."""
    value = await conn.fetchval(
        f"SELECT min(least({DUE_AT}, {FINALIZE_DUE.format(2)}, {COLLECT_DUE}))"
        " FROM subscriptions s JOIN customers c ON c.id = s.customer_id"
        f" WHERE c.test_clock_id = $1 AND {_LIVE}",
        clock_id,
        finalize_delay,
    )
    return None if value is None else value


async def live_on_clock(conn: Executor, clock_id: str) -> list[str]:
    """The live subscriptions of test clock ``clock_id``'s customers, oldest first."""
    rows = await conn.fetch(
        "SELECT s.id FROM subscriptions s JOIN customers c ON c.id = s.customer_id"
        f" WHERE c.test_clock_id = $1 AND {_LIVE} ORDER BY s.id",
        clock_id,
    )
    return [str(r["id"]) for r in rows]


async def due_on_system_clock(
    conn: Executor, now: datetime, limit: int, finalize_delay: timedelta
) -> list[str]:
    """Live subscriptions of customers without a test clock with work due at ``now``: a due
    moment reached (a renewal's draft ``finalize_delay`` old), or a first or overdue
    invoice paid since (their status follows it)."""
    rows = await conn.fetch(
        "SELECT s.id FROM subscriptions s JOIN customers c ON c.id = s.customer_id"
        f" WHERE c.test_clock_id IS NULL AND {_LIVE} AND ({DUE_AT} <= $1"
        "  OR (s.status IN ('incomplete', 'past_due', 'unpaid') AND EXISTS ("
        "   SELECT 1 FROM invoices i WHERE i.id = s.latest_invoice_id AND i.status = 'paid'))"
        f"  OR {FINALIZE_DUE.format(3)} <= $1)"
        " ORDER BY s.id LIMIT $2",
        now,
        limit,
        finalize_delay,
    )
    return [str(r["id"]) for r in rows]


async def uncollected_on_system_clock(conn: Executor, before: datetime, limit: int) -> list[str]:
    """Active subscriptions of customers without a test clock with a renewal invoice
    finalized before ``before`` and never charged (``COLLECT_DUE``), found through the
    partial index ``invoices_uncollected``."""
    rows = await conn.fetch(
        "SELECT DISTINCT s.id FROM invoices i"
        " JOIN subscriptions s ON s.id = i.subscription_id"
        " JOIN customers c ON c.id = s.customer_id"
        f" WHERE {UNCOLLECTED.format(i='i')} AND i.finalized_at < $1"
        f" AND s.status = 'active' AND c.test_clock_id IS NULL AND {_LIVE}"
        " ORDER BY s.id LIMIT $2",
        before,
        limit,
    )
    return [str(r["id"]) for r in rows]
