"""Invoices, their lines, pending invoice items and the per-merchant invoice numbering, as
typed rows. Every status write is guarded by the allowed sources of
``paygrid.domain.invoices``; zero rows updated means another request moved the invoice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Final

import asyncpg

from paygrid.db.billing_settings import NUMBER_PREFIX_OF_TENANT
from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.db.rows import column_values
from paygrid.domain.invoices import (
    BillingReason,
    CollectionMethod,
    InvoiceStatus,
    LineType,
    Transition,
)


@dataclass(frozen=True, slots=True)
class InvoiceItemRow:
    """One ``invoice_items`` row; pending while ``invoice_id`` is None."""

    id: str
    merchant_id: str
    livemode: bool
    customer_id: str
    invoice_id: str | None
    currency: str
    price_id: str | None
    unit_amount: int
    quantity: int
    amount: int
    description: str | None
    metadata: dict[str, str]
    period_start: datetime
    period_end: datetime
    proration: bool
    created_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> InvoiceItemRow:
        return cls(**{f.name: record[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class InvoiceLineRow:
    """One ``invoice_lines`` row: an invoice item, or a subscription's price for a period."""

    id: str
    invoice_id: str
    position: int
    type: LineType
    invoice_item_id: str | None
    subscription_id: str | None
    subscription_item_id: str | None
    price_id: str | None
    description: str | None
    currency: str
    unit_amount: int | None
    quantity: int
    amount: int
    proration: bool
    period_start: datetime
    period_end: datetime
    metadata: dict[str, str]

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> InvoiceLineRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        return cls(**{**values, "type": LineType(record["type"])})


@dataclass(frozen=True, slots=True)
class InvoiceRow:
    """One ``invoices`` row (``amount_remaining`` is computed by the database)."""

    id: str
    merchant_id: str
    livemode: bool
    customer_id: str
    status: InvoiceStatus
    collection_method: CollectionMethod
    currency: str
    days_until_due: int | None
    due_date: datetime | None
    auto_advance: bool
    description: str | None
    metadata: dict[str, str]
    number: str | None
    subtotal: int
    total: int
    amount_due: int
    amount_paid: int
    amount_remaining: int
    attempt_count: int
    payment_id: str | None
    default_payment_method_id: str | None
    last_payment_error: dict[str, Any] | None
    billing_reason: BillingReason
    subscription_id: str | None
    period_start: datetime | None
    period_end: datetime | None
    finalized_at: datetime | None
    paid_at: datetime | None
    voided_at: datetime | None
    marked_uncollectible_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # ``{public base url}/i/{token}``, set at finalize (``hosted_invoices``); None for drafts.
    hosted_invoice_url: str | None = None
    # Dunning (issue 14): when the next automatic attempt is due; None when none will be.
    next_payment_attempt: datetime | None = None
    # Dunning's schedule (``db.dunning.ScheduleRow`` reads and writes these).
    retry_position: int = 0
    hard_declined_methods: tuple[str, ...] = ()
    retry_payment_method_id: str | None = None
    action_payment_id: str | None = None
    action_expires_at: datetime | None = None
    retries_exhausted_at: datetime | None = None
    # Printed on the invoice: the billing settings' footer when it was finalized.
    footer: str | None = None

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> InvoiceRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        return cls(
            **{
                **values,
                "status": InvoiceStatus(record["status"]),
                "collection_method": CollectionMethod(record["collection_method"]),
                "billing_reason": BillingReason(record["billing_reason"]),
            }
        )


@dataclass(frozen=True, slots=True)
class PriceFacts:
    """What an invoice item takes from a catalog price."""

    id: str
    currency: str
    unit_amount: int
    active: bool
    recurring: bool


def _invoice(record: asyncpg.Record | None) -> InvoiceRow | None:
    return None if record is None else InvoiceRow.from_record(record)


def _item(record: asyncpg.Record | None) -> InvoiceItemRow | None:
    return None if record is None else InvoiceItemRow.from_record(record)


def _insert_sql(table: str, values: dict[str, Any]) -> str:
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    return f"INSERT INTO {table} ({columns}) VALUES ({params}) RETURNING *"


# ---- invoice items


async def insert_item(conn: Executor, item: InvoiceItemRow) -> InvoiceItemRow:
    values = column_values(item)
    record = await conn.fetchrow(_insert_sql("invoice_items", values), *values.values())
    assert record is not None
    return InvoiceItemRow.from_record(record)


async def get_item(
    conn: Executor, merchant_id: str, livemode: bool, item_id: str
) -> InvoiceItemRow | None:
    return _item(
        await conn.fetchrow(
            "SELECT * FROM invoice_items WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
            item_id,
            merchant_id,
            livemode,
        )
    )


async def delete_pending_item(conn: Executor, item_id: str) -> InvoiceItemRow | None:
    """Delete the item only while no invoice holds it."""
    return _item(
        await conn.fetchrow(
            "DELETE FROM invoice_items WHERE id = $1 AND invoice_id IS NULL RETURNING *", item_id
        )
    )


async def list_items(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    customer_id: str | None,
    pending: bool | None,
) -> tuple[list[InvoiceItemRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("customer_id = $?", customer_id)
    if pending is not None:
        filters.clauses.append("invoice_id IS NULL" if pending else "invoice_id IS NOT NULL")
    records, has_more = await fetch_page(conn, "invoice_items", filters, page)
    return [InvoiceItemRow.from_record(r) for r in records], has_more


async def price_facts(
    conn: Executor, merchant_id: str, livemode: bool, price_id: str
) -> PriceFacts | None:
    record = await conn.fetchrow(
        "SELECT id, currency, unit_amount, active, type = 'recurring' AS recurring FROM prices"
        " WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        price_id,
        merchant_id,
        livemode,
    )
    if record is None:
        return None
    return PriceFacts(
        id=record["id"],
        currency=record["currency"],
        unit_amount=record["unit_amount"],
        active=record["active"],
        recurring=record["recurring"],
    )


async def oldest_pending_currency(conn: Executor, customer_id: str) -> str | None:
    value = await conn.fetchval(
        "SELECT currency FROM invoice_items WHERE customer_id = $1 AND invoice_id IS NULL"
        " ORDER BY id LIMIT 1",
        customer_id,
    )
    return None if value is None else str(value)


async def claim_pending_items(
    conn: Connection, invoice_id: str, customer_id: str, currency: str
) -> list[InvoiceItemRow]:
    """Put the customer's pending items of ``currency`` on the invoice. The rows are locked
    in id order (two claims never deadlock); a concurrent claim waits for the locks and then
    finds the items taken, so an item is never on two invoices."""
    records = await conn.fetch(
        "UPDATE invoice_items SET invoice_id = $1 WHERE invoice_id IS NULL AND id IN ("
        "  SELECT id FROM invoice_items"
        "  WHERE customer_id = $2 AND currency = $3 AND invoice_id IS NULL"
        "  ORDER BY id FOR UPDATE"
        ") RETURNING *",
        invoice_id,
        customer_id,
        currency,
    )
    return sorted((InvoiceItemRow.from_record(r) for r in records), key=lambda row: row.id)


# ---- invoices and lines

_GENERATED: Final = frozenset({"amount_remaining"})


async def insert_invoice(conn: Connection, invoice: InvoiceRow) -> InvoiceRow:
    values = {k: v for k, v in column_values(invoice).items() if k not in _GENERATED}
    record = await conn.fetchrow(_insert_sql("invoices", values), *values.values())
    assert record is not None
    return InvoiceRow.from_record(record)


async def insert_lines(conn: Connection, lines: Sequence[InvoiceLineRow]) -> None:
    if not lines:
        return
    values = [column_values(line) for line in lines]
    columns = list(values[0])
    await conn.executemany(
        _insert_sql("invoice_lines", values[0]).removesuffix(" RETURNING *"),
        [[row[c] for c in columns] for row in values],
    )


async def total_from_lines(conn: Connection, invoice_id: str, now: datetime) -> InvoiceRow:
    """Set a draft's totals from its lines, summed by the database: the total is the sum of
    the lines exactly."""
    record = await conn.fetchrow(
        "UPDATE invoices SET subtotal = s.sum, total = s.sum, amount_due = greatest(s.sum, 0),"
        " updated_at = $2"
        " FROM (SELECT coalesce(sum(amount), 0)::bigint AS sum FROM invoice_lines"
        "       WHERE invoice_id = $1) AS s"
        " WHERE id = $1 AND status = 'draft' RETURNING invoices.*",
        invoice_id,
        now,
    )
    assert record is not None
    return InvoiceRow.from_record(record)


async def get_invoice(
    conn: Executor, merchant_id: str, livemode: bool, invoice_id: str
) -> InvoiceRow | None:
    return _invoice(
        await conn.fetchrow(
            "SELECT * FROM invoices WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
            invoice_id,
            merchant_id,
            livemode,
        )
    )


async def lock_invoice(
    conn: Connection, invoice_id: str, sources: frozenset[InvoiceStatus]
) -> InvoiceRow | None:
    """Lock the invoice if its status is one of ``sources`` (waiting for a concurrent
    change to commit, then looking again)."""
    return _invoice(
        await conn.fetchrow(
            "SELECT * FROM invoices WHERE id = $1 AND status = ANY($2::text[]) FOR UPDATE",
            invoice_id,
            [s.value for s in sources],
        )
    )


async def hold_payment_lock(conn: Connection, invoice_id: str) -> None:
    """Wait for, then hold until the caller's transaction ends, the lock that makes a
    ``/pay`` and a ``/void`` of the invoice take turns (an advisory lock: the charge
    itself runs on other connections, which must not wait for it)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('paygrid.invoice_payment:' || $1))", invoice_id
    )


async def try_payment_lock(conn: Connection, invoice_id: str) -> bool:
    """``hold_payment_lock`` without waiting: False while a ``/pay`` of it runs."""
    return bool(
        await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtext('paygrid.invoice_payment:' || $1))",
            invoice_id,
        )
    )


async def lock_unsettled_of_customer(conn: Connection, customer_id: str) -> list[InvoiceRow]:
    """The customer's ``draft`` and ``open`` invoices, locked in id order (deleting the
    customer voids them)."""
    records = await conn.fetch(
        "SELECT * FROM invoices WHERE customer_id = $1 AND status IN ('draft', 'open')"
        " ORDER BY id FOR UPDATE",
        customer_id,
    )
    return [InvoiceRow.from_record(r) for r in records]


async def lines_of(conn: Executor, invoice_ids: Sequence[str]) -> dict[str, list[InvoiceLineRow]]:
    records = await conn.fetch(
        "SELECT * FROM invoice_lines WHERE invoice_id = ANY($1::text[])"
        " ORDER BY invoice_id, position",
        list(invoice_ids),
    )
    grouped: dict[str, list[InvoiceLineRow]] = {i: [] for i in invoice_ids}
    for record in records:
        line = InvoiceLineRow.from_record(record)
        grouped[line.invoice_id].append(line)
    return grouped


async def list_invoices(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    customer_id: str | None,
    status: InvoiceStatus | None,
    subscription_id: str | None = None,
) -> tuple[list[InvoiceRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("customer_id = $?", customer_id)
    filters.add_if("subscription_id = $?", subscription_id)
    filters.add_if("status = $?", None if status is None else status.value)
    records, has_more = await fetch_page(conn, "invoices", filters, page)
    return [InvoiceRow.from_record(r) for r in records], has_more


async def next_number(
    conn: Connection, merchant_id: str, livemode: bool, default_prefix: str
) -> tuple[str, int]:
    """Take the merchant's next invoice number in the caller's transaction: the counter row
    stays locked until it commits (a concurrent finalize waits) and a rollback gives the
    number back, so numbers are consecutive and never reused. The prefix is the billing
    settings' ``number_prefix``, else ``default_prefix``; the counter goes on across a
    change of prefix, so no number is ever given twice."""
    record = await conn.fetchrow(
        "INSERT INTO invoice_numbering (merchant_id, livemode, prefix, last_number)"
        f" VALUES ($1, $2, {NUMBER_PREFIX_OF_TENANT}, 1) ON CONFLICT (merchant_id, livemode)"
        " DO UPDATE SET last_number = invoice_numbering.last_number + 1,"
        " prefix = EXCLUDED.prefix"
        " RETURNING prefix, last_number",
        merchant_id,
        livemode,
        default_prefix,
    )
    assert record is not None
    return str(record["prefix"]), int(record["last_number"])


# Columns a transition may set besides the status.
_TRANSITION_COLUMNS: Final = frozenset(
    {
        "number",
        "due_date",
        "finalized_at",
        "paid_at",
        "voided_at",
        "marked_uncollectible_at",
        "amount_paid",
        "payment_id",
        "attempt_count",
        "last_payment_error",
        "auto_advance",
        "hosted_invoice_url",
        "footer",
    }
)


async def transition(
    conn: Executor,
    invoice_id: str,
    move: Transition,
    now: datetime,
    changes: dict[str, Any] | None = None,
) -> InvoiceRow | None:
    """Move the invoice to ``move.target`` only if its status is one of ``move.sources``."""
    changes = dict(changes or {})
    assert set(changes) <= _TRANSITION_COLUMNS
    assignments = "".join(f", {column} = ${i}" for i, column in enumerate(changes, start=5))
    return _invoice(
        await conn.fetchrow(
            f"UPDATE invoices SET status = $2, updated_at = $4{assignments}"
            " WHERE id = $1 AND status = ANY($3::text[]) RETURNING *",
            invoice_id,
            move.target.value,
            [s.value for s in move.sources],
            now,
            *changes.values(),
        )
    )


async def record_failed_attempt(
    conn: Connection,
    invoice_id: str,
    *,
    attempt: int,
    sources: frozenset[InvoiceStatus],
    payment_id: str | None,
    error: dict[str, Any],
    now: datetime,
) -> InvoiceRow | None:
    """Count the ``attempt``-th payment as failed, once: a repeat of the same attempt (or one
    the invoice has moved past) changes nothing."""
    return _invoice(
        await conn.fetchrow(
            "UPDATE invoices SET attempt_count = $2, payment_id = coalesce($3, payment_id),"
            " last_payment_error = $4, updated_at = $5"
            " WHERE id = $1 AND attempt_count = $2 - 1 AND status = ANY($6::text[])"
            " RETURNING *",
            invoice_id,
            attempt,
            payment_id,
            error,
            now,
            [s.value for s in sources],
        )
    )
