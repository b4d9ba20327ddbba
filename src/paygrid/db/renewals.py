"""The billing schedule's set-based statements: one statement for a whole batch of due
subscriptions (claim them, read their items, prices and pending prorations, insert their
period invoices and lines, total, number and finalize them, move the subscriptions, mark
the charged invoices paid), instead of one per subscription. Each keeps the guards of its
one-row counterpart in ``db.subscriptions`` and ``db.invoices``: a period's invoice is
inserted ``ON CONFLICT (subscription_id, period_start) DO NOTHING``, every status write is
guarded by the transition table's sources."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from paygrid.db.billing_settings import FOOTER_OF_INVOICE, NUMBER_PREFIX_OF_TENANT
from paygrid.db.executor import Connection, Executor
from paygrid.db.invoices import InvoiceLineRow, InvoiceRow
from paygrid.db.prices import PriceRow
from paygrid.db.rows import column_values
from paygrid.db.subscriptions import ProrationRow, SubscriptionRow
from paygrid.domain.invoices import InvoiceStatus
from paygrid.domain.subscriptions import SubscriptionStatus


@dataclass(frozen=True, slots=True)
class PayerFacts:
    """What charging a customer's invoice needs to know about the customer: its default
    method (``invoice_settings``) and its test clock's time, if it is on one."""

    customer_id: str
    default_payment_method_id: str | None
    frozen_time: datetime | None


@dataclass(frozen=True, slots=True)
class MethodOwner:
    """Whose a payment method is (None: not attached to a customer)."""

    id: str
    merchant_id: str
    livemode: bool
    customer_id: str | None


@dataclass(frozen=True, slots=True)
class Renewal:
    """One subscription's move to its next period: ``latest_invoice_id`` None keeps it."""

    subscription_id: str
    status: SubscriptionStatus
    period_start: datetime
    period_end: datetime
    latest_invoice_id: str | None


@dataclass(frozen=True, slots=True)
class Finalization:
    """An invoice's number and due date, given as it is finalized."""

    invoice_id: str
    number: str
    due_date: datetime | None
    hosted_invoice_url: str | None = None


@dataclass(frozen=True, slots=True)
class Payment:
    """An invoice paid: by ``payment_id`` (None: nothing was owed) at ``paid_at``."""

    invoice_id: str
    payment_id: str | None
    paid_at: datetime


async def lock_batch(conn: Connection, subscription_ids: Sequence[str]) -> list[SubscriptionRow]:
    """Lock the subscriptions of ``subscription_ids`` that nobody else holds (``SKIP
    LOCKED``: a subscription being changed right now is left to the one-by-one pass)."""
    records = await conn.fetch(
        "SELECT * FROM subscriptions WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE SKIP LOCKED",
        list(subscription_ids),
    )
    return [SubscriptionRow.from_record(r) for r in records]


async def prices_by_id(conn: Executor, price_ids: Sequence[str]) -> dict[str, PriceRow]:
    records = await conn.fetch("SELECT * FROM prices WHERE id = ANY($1::text[])", list(price_ids))
    return {str(r["id"]): PriceRow.from_record(r) for r in records}


async def pending_prorations(
    conn: Executor, subscription_ids: Sequence[str]
) -> dict[str, list[ProrationRow]]:
    """Each subscription's pending proration lines, in the order an invoice takes them."""
    records = await conn.fetch(
        "SELECT * FROM subscription_prorations WHERE subscription_id = ANY($1::text[])"
        " AND invoice_id IS NULL ORDER BY subscription_id, created_at, position",
        list(subscription_ids),
    )
    grouped: dict[str, list[ProrationRow]] = {i: [] for i in subscription_ids}
    for record in records:
        row = ProrationRow.from_record(record)
        grouped[row.subscription_id].append(row)
    return grouped


_INVOICE_COLUMNS: Final = ", ".join(
    name for name in InvoiceRow.__dataclass_fields__ if name != "amount_remaining"
)
_LINE_COLUMNS: Final = ", ".join(InvoiceLineRow.__dataclass_fields__)


async def insert_period_invoices(
    conn: Connection, invoices: Sequence[InvoiceRow]
) -> list[InvoiceRow]:
    """Insert the period invoices; those whose period is invoiced already are left out
    (``UNIQUE (subscription_id, period_start)``) and not returned."""
    if not invoices:
        return []
    records = await conn.fetch(
        f"INSERT INTO invoices ({_INVOICE_COLUMNS}) SELECT {_INVOICE_COLUMNS}"
        " FROM jsonb_populate_recordset(NULL::invoices, $1)"
        " ON CONFLICT (subscription_id, period_start) DO NOTHING RETURNING *",
        [column_values(invoice) for invoice in invoices],
    )
    return [InvoiceRow.from_record(r) for r in records]


async def claim_prorations(
    conn: Connection, invoice_by_subscription: dict[str, str]
) -> dict[str, list[ProrationRow]]:
    """Put each subscription's pending proration lines on its invoice (creation order)."""
    records = await conn.fetch(
        "UPDATE subscription_prorations p SET invoice_id = m.invoice_id"
        " FROM unnest($1::text[], $2::text[]) AS m(subscription_id, invoice_id)"
        " WHERE p.subscription_id = m.subscription_id AND p.invoice_id IS NULL RETURNING p.*",
        list(invoice_by_subscription),
        list(invoice_by_subscription.values()),
    )
    grouped: dict[str, list[ProrationRow]] = {}
    for record in records:
        row = ProrationRow.from_record(record)
        grouped.setdefault(row.subscription_id, []).append(row)
    for rows in grouped.values():
        rows.sort(key=lambda row: (row.created_at, row.position))
    return grouped


async def insert_lines(conn: Connection, lines: Sequence[InvoiceLineRow]) -> None:
    if lines:
        await conn.execute(
            f"INSERT INTO invoice_lines ({_LINE_COLUMNS}) SELECT {_LINE_COLUMNS}"
            " FROM jsonb_populate_recordset(NULL::invoice_lines, $1)",
            [column_values(line) for line in lines],
        )


async def total_from_lines(
    conn: Connection, invoice_ids: Sequence[str], now: datetime
) -> list[InvoiceRow]:
    """``db.invoices.total_from_lines`` for many drafts: each total is the sum of its lines,
    summed by the database."""
    records = await conn.fetch(
        "UPDATE invoices i SET subtotal = s.sum, total = s.sum,"
        " amount_due = greatest(s.sum, 0), updated_at = $2"
        " FROM (SELECT t.id, coalesce(sum(l.amount), 0)::bigint AS sum"
        "       FROM unnest($1::text[]) AS t(id) LEFT JOIN invoice_lines l ON l.invoice_id = t.id"
        "       GROUP BY t.id) AS s"
        " WHERE i.id = s.id AND i.status = 'draft' RETURNING i.*",
        list(invoice_ids),
        now,
    )
    return [InvoiceRow.from_record(r) for r in records]


async def take_numbers(
    conn: Connection, merchant_id: str, livemode: bool, default_prefix: str, count: int
) -> tuple[str, int]:
    """Take the merchant's next ``count`` invoice numbers at once in the caller's
    transaction (``db.invoices.next_number``'s lock and rollback hold): the prefix and the
    first of them."""
    record = await conn.fetchrow(
        "INSERT INTO invoice_numbering (merchant_id, livemode, prefix, last_number)"
        f" VALUES ($1, $2, {NUMBER_PREFIX_OF_TENANT}, $4) ON CONFLICT (merchant_id, livemode)"
        " DO UPDATE SET last_number = invoice_numbering.last_number + $4,"
        " prefix = EXCLUDED.prefix"
        " RETURNING prefix, last_number",
        merchant_id,
        livemode,
        default_prefix,
        count,
    )
    assert record is not None
    return str(record["prefix"]), int(record["last_number"]) - count + 1


async def finalize(
    conn: Connection,
    finalizations: Sequence[Finalization],
    sources: frozenset[InvoiceStatus],
    now: datetime,
) -> list[InvoiceRow]:
    """``open`` with their numbers, for the invoices whose status is one of ``sources``."""
    records = await conn.fetch(
        "UPDATE invoices i SET status = 'open', updated_at = $4, number = m.number,"
        f" footer = coalesce(i.footer, {FOOTER_OF_INVOICE}),"
        " finalized_at = $4, due_date = m.due_date, hosted_invoice_url = m.url"
        " FROM unnest($1::text[], $2::text[], $3::timestamptz[], $6::text[])"
        " AS m(id, number, due_date, url)"
        " WHERE i.id = m.id AND i.status = ANY($5::text[]) RETURNING i.*",
        [f.invoice_id for f in finalizations],
        [f.number for f in finalizations],
        [f.due_date for f in finalizations],
        now,
        [s.value for s in sources],
        [f.hosted_invoice_url for f in finalizations],
    )
    return [InvoiceRow.from_record(r) for r in records]


async def renew(
    conn: Connection,
    renewals: Sequence[Renewal],
    sources: frozenset[SubscriptionStatus],
    now: datetime,
) -> list[SubscriptionRow]:
    """Move each subscription to its next period (and status, and latest invoice), guarded
    by ``sources``."""
    records = await conn.fetch(
        "UPDATE subscriptions s SET status = m.status, updated_at = $6,"
        " current_period_start = m.ps, current_period_end = m.pe,"
        " latest_invoice_id = coalesce(m.inv, s.latest_invoice_id)"
        " FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[],"
        "  $5::text[]) AS m(id, status, ps, pe, inv)"
        " WHERE s.id = m.id AND s.status = ANY($7::text[]) RETURNING s.*",
        [r.subscription_id for r in renewals],
        [r.status.value for r in renewals],
        [r.period_start for r in renewals],
        [r.period_end for r in renewals],
        [r.latest_invoice_id for r in renewals],
        now,
        [s.value for s in sources],
    )
    return [SubscriptionRow.from_record(r) for r in records]


async def mark_upcoming_sent(
    conn: Connection,
    subscription_ids: Sequence[str],
    sources: frozenset[SubscriptionStatus],
    now: datetime,
) -> list[SubscriptionRow]:
    """``invoice.upcoming`` sent for each one's current period."""
    records = await conn.fetch(
        "UPDATE subscriptions SET updated_at = $2, upcoming_sent_for = current_period_end"
        " WHERE id = ANY($1::text[]) AND status = ANY($3::text[]) RETURNING *",
        list(subscription_ids),
        now,
        [s.value for s in sources],
    )
    return [SubscriptionRow.from_record(r) for r in records]


async def payer_facts(conn: Executor, customer_ids: Sequence[str]) -> dict[str, PayerFacts]:
    records = await conn.fetch(
        "SELECT cu.id, cu.default_payment_method_id, tc.frozen_time FROM customers cu"
        " LEFT JOIN test_clocks tc ON tc.id = cu.test_clock_id WHERE cu.id = ANY($1::text[])",
        list(customer_ids),
    )
    return {
        str(r["id"]): PayerFacts(str(r["id"]), r["default_payment_method_id"], r["frozen_time"])
        for r in records
    }


async def method_owners(conn: Executor, method_ids: Sequence[str]) -> dict[str, MethodOwner]:
    records = await conn.fetch(
        "SELECT id, merchant_id, livemode, customer_id FROM payment_methods"
        " WHERE id = ANY($1::text[])",
        list(method_ids),
    )
    return {
        str(r["id"]): MethodOwner(r["id"], r["merchant_id"], r["livemode"], r["customer_id"])
        for r in records
    }


async def mark_paid(
    conn: Connection, payments: Sequence[Payment], sources: frozenset[InvoiceStatus]
) -> list[InvoiceRow]:
    """``paid`` (``amount_paid`` the amount due), for those whose status is one of
    ``sources``: one paid meanwhile (a concurrent ``/pay``) is left as it is."""
    records = await conn.fetch(
        "UPDATE invoices i SET status = 'paid', updated_at = m.paid_at, paid_at = m.paid_at,"
        " amount_paid = i.amount_due, payment_id = coalesce(m.payment_id, i.payment_id),"
        " last_payment_error = CASE WHEN m.payment_id IS NULL THEN i.last_payment_error END,"
        # Stripe's attempt_count counts the paying attempt too (dunning, issue 14).
        " attempt_count = i.attempt_count + CASE WHEN m.payment_id IS NULL THEN 0 ELSE 1 END"
        " FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS m(id, payment_id, paid_at)"
        " WHERE i.id = m.id AND i.status = ANY($4::text[]) RETURNING i.*",
        [p.invoice_id for p in payments],
        [p.payment_id for p in payments],
        [p.paid_at for p in payments],
        [s.value for s in sources],
    )
    return [InvoiceRow.from_record(r) for r in records]


async def follow_paid(
    conn: Connection,
    paid: Sequence[tuple[str, str, datetime]],
    sources: frozenset[SubscriptionStatus],
) -> list[SubscriptionRow]:
    """``active``, for each (subscription, invoice, time) whose subscription's latest
    invoice is that invoice and whose status is one of ``sources`` (locked after the
    invoices, as ``/pay`` locks them)."""
    records = await conn.fetch(
        "UPDATE subscriptions s SET status = 'active', updated_at = m.at"
        " FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS m(id, invoice_id, at)"
        " WHERE s.id = m.id AND s.latest_invoice_id = m.invoice_id"
        " AND s.status = ANY($4::text[]) RETURNING s.*",
        [p[0] for p in paid],
        [p[1] for p in paid],
        [p[2] for p in paid],
        [s.value for s in sources],
    )
    return [SubscriptionRow.from_record(r) for r in records]


async def with_invoices_to_collect(
    conn: Executor, subscription_ids: Sequence[str], made_by: datetime
) -> set[str]:
    """Those of the subscriptions with an invoice the schedule would finalize or charge now
    (``db.subscriptions.invoices_to_collect``; a renewal's draft once made at or before
    ``made_by``, its finalize delay over)."""
    records = await conn.fetch(
        "SELECT DISTINCT subscription_id FROM invoices WHERE subscription_id = ANY($1::text[])"
        " AND auto_advance AND ((status = 'draft' AND (billing_reason <> 'subscription_cycle'"
        " OR created_at <= $2)) OR (status = 'open'"
        " AND collection_method = 'charge_automatically' AND attempt_count = 0"
        " AND payment_id IS NULL))",
        list(subscription_ids),
        made_by,
    )
    return {str(r["subscription_id"]) for r in records}


async def lock_renewal_drafts(
    conn: Connection, subscription_ids: Sequence[str], made_by: datetime
) -> list[InvoiceRow]:
    """Lock the subscriptions' renewal drafts made at or before ``made_by`` (their finalize
    delay over), to be finalized; in id order."""
    records = await conn.fetch(
        "SELECT * FROM invoices WHERE subscription_id = ANY($1::text[]) AND status = 'draft'"
        " AND auto_advance AND billing_reason = 'subscription_cycle' AND created_at <= $2"
        " ORDER BY id FOR UPDATE",
        list(subscription_ids),
        made_by,
    )
    return [InvoiceRow.from_record(r) for r in records]


async def hold_payment_locks(conn: Connection, invoice_ids: Sequence[str]) -> None:
    """``db.invoices.hold_payment_lock`` for many invoices at once (in id order), held until
    the caller's transaction ends: a ``/void`` or ``/pay`` of one of them waits for it."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('paygrid.invoice_payment:' || t.id))"
        " FROM (SELECT id FROM unnest($1::text[]) AS u(id) ORDER BY id) AS t",
        sorted(invoice_ids),
    )
