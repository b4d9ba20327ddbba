"""Dunning's SQL: an invoice's retry schedule (columns of ``invoices``), the attempt history
(``invoice_dunning_attempts``), what is due, and the card network cap's count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Final

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.invoices import InvoiceRow
from paygrid.db.rows import column_values
from paygrid.domain.dunning import DeclineClass, DunningOutcome


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """An invoice's dunning columns."""

    id: str
    next_payment_attempt: datetime | None
    retry_position: int
    hard_declined_methods: list[str]
    retry_payment_method_id: str | None
    action_payment_id: str | None
    action_expires_at: datetime | None
    retries_exhausted_at: datetime | None

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> ScheduleRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        return cls(**{**values, "hard_declined_methods": list(values["hard_declined_methods"])})


@dataclass(frozen=True, slots=True)
class AttemptLogRow:
    """One ``invoice_dunning_attempts`` row: a failed, skipped or expired attempt."""

    id: str
    merchant_id: str
    livemode: bool
    invoice_id: str
    attempt: int | None
    outcome: DunningOutcome
    payment_id: str | None
    payment_method_id: str | None
    code: str | None
    decline_code: str | None
    classification: DeclineClass | None
    message: str | None
    next_payment_attempt: datetime | None
    exhausted: bool
    created_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> AttemptLogRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        raw = record["classification"]
        klass = None if raw is None else DeclineClass(raw)
        outcome = DunningOutcome(record["outcome"])
        return cls(**{**values, "classification": klass, "outcome": outcome})


_SCHEDULE_COLUMNS: Final = ", ".join(f.name for f in fields(ScheduleRow))


async def schedule_of(conn: Executor, invoice_id: str) -> ScheduleRow | None:
    record = await conn.fetchrow(
        f"SELECT {_SCHEDULE_COLUMNS} FROM invoices WHERE id = $1", invoice_id
    )
    return None if record is None else ScheduleRow.from_record(record)


async def save_schedule(
    conn: Connection, schedule: ScheduleRow, *, classification: DeclineClass | None, now: datetime
) -> InvoiceRow | None:
    """Write the invoice's schedule while it is ``open`` (and the class of its last payment
    error into ``last_payment_error``); None when it is no longer open."""
    record = await conn.fetchrow(
        "UPDATE invoices SET next_payment_attempt = $2, retry_position = $3,"
        " hard_declined_methods = $4, retry_payment_method_id = $5, action_payment_id = $6,"
        " action_expires_at = $7, retries_exhausted_at = $8, updated_at = $9,"
        " last_payment_error = CASE WHEN $10::text IS NULL OR last_payment_error IS NULL"
        "   THEN last_payment_error"
        "   ELSE last_payment_error || jsonb_build_object('classification', $10::text) END"
        " WHERE id = $1 AND status = 'open' RETURNING *",
        schedule.id,
        schedule.next_payment_attempt,
        schedule.retry_position,
        schedule.hard_declined_methods,
        schedule.retry_payment_method_id,
        schedule.action_payment_id,
        schedule.action_expires_at,
        schedule.retries_exhausted_at,
        now,
        None if classification is None else classification.value,
    )
    return None if record is None else InvoiceRow.from_record(record)


async def clear_schedule(conn: Executor, invoice_id: str) -> None:
    """No retry any more (the invoice was paid). An authentication still awaited is left
    to expire: its payment is canceled then (``dunning.action_expiry``)."""
    await conn.execute(
        "UPDATE invoices SET next_payment_attempt = NULL"
        " WHERE id = $1 AND next_payment_attempt IS NOT NULL",
        invoice_id,
    )


async def clear_action(conn: Executor, invoice_id: str, payment_id: str) -> bool:
    """The invoice no longer waits for ``payment_id``'s authentication."""
    status = await conn.execute(
        "UPDATE invoices SET action_payment_id = NULL, action_expires_at = NULL"
        " WHERE id = $1 AND action_payment_id = $2",
        invoice_id,
        payment_id,
    )
    return bool(status.endswith(" 1"))


async def await_action(
    conn: Executor, invoice_id: str, payment_id: str, expires_at: datetime
) -> bool:
    """The open invoice waits for ``payment_id``'s authentication until ``expires_at`` (a
    challenge started on the hosted invoice page), unless it already waits for another."""
    status = await conn.execute(
        "UPDATE invoices SET action_payment_id = $2, action_expires_at = $3"
        " WHERE id = $1 AND status = 'open'"
        " AND (action_payment_id IS NULL OR action_payment_id = $2)",
        invoice_id,
        payment_id,
        expires_at,
    )
    return bool(status.endswith(" 1"))


async def failed_cancels(conn: Executor, invoice_id: str, payment_id: str, code: str) -> int:
    """How many times the expiry could not cancel the invoice's waiting ``payment_id``
    (its history lines of ``code``)."""
    value = await conn.fetchval(
        "SELECT count(*) FROM invoice_dunning_attempts"
        " WHERE invoice_id = $1 AND payment_id = $2 AND code = $3",
        invoice_id,
        payment_id,
        code,
    )
    return int(value or 0)


async def put_off_action(
    conn: Executor, invoice_id: str, payment_id: str, expires_at: datetime | None
) -> bool:
    """The invoice still waits for ``payment_id``, whose expiry comes again at
    ``expires_at`` (None: not any more; the payment stays the invoice's waiting one)."""
    status = await conn.execute(
        "UPDATE invoices SET action_expires_at = $3 WHERE id = $1 AND action_payment_id = $2",
        invoice_id,
        payment_id,
        expires_at,
    )
    return bool(status.endswith(" 1"))


async def invoice_by_id(conn: Executor, invoice_id: str) -> InvoiceRow | None:
    """The invoice, whoever's it is (the worker's jobs name invoices by id)."""
    record = await conn.fetchrow("SELECT * FROM invoices WHERE id = $1", invoice_id)
    return None if record is None else InvoiceRow.from_record(record)


async def insert_attempt(conn: Executor, row: AttemptLogRow) -> bool:
    """Record an attempt, once per (invoice, attempt, outcome)."""
    values = column_values(row)
    if row.classification is not None:
        values["classification"] = row.classification.value
    values["outcome"] = row.outcome.value
    names = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    status = await conn.execute(
        f"INSERT INTO invoice_dunning_attempts ({names}) VALUES ({params})"
        " ON CONFLICT (invoice_id, attempt, outcome) WHERE attempt IS NOT NULL DO NOTHING",
        *values.values(),
    )
    return bool(status.endswith(" 1"))


async def attempts_of(conn: Executor, invoice_id: str) -> list[AttemptLogRow]:
    records = await conn.fetch(
        "SELECT * FROM invoice_dunning_attempts WHERE invoice_id = $1 ORDER BY created_at, id",
        invoice_id,
    )
    return [AttemptLogRow.from_record(r) for r in records]


async def method_payments_between(
    conn: Executor, method_id: str, since: datetime, until: datetime
) -> int:
    """The payments made with ``method_id`` in ``(since, until]`` (by their time, on their
    customer's clock), whatever they were for: the card networks count every attempt on a
    card. A declined payment keeps no method, so its authorization attempts are read.

    Only a saved method is retried, and it is charged only for its own customer's payments
    (``services/payment_method_ownership.py``), so they are found through the customer's
    payments (``payments_by_customer_newest``) and their attempts: no index on the method is
    kept for this, which every payment and attempt written would otherwise pay for."""
    value = await conn.fetchval(
        "SELECT count(*) FROM payment_methods m JOIN payments p ON p.customer_id = m.customer_id"
        " WHERE m.id = $1 AND p.created_at > $2 AND p.created_at <= $3"
        " AND (p.payment_method_id = $1 OR EXISTS (SELECT 1 FROM payment_attempts a"
        "  WHERE a.payment_id = p.id AND a.payment_method_id = $1 AND a.operation = 'authorize'))",
        method_id,
        since,
        until,
    )
    return int(value or 0)


async def hold_method_lock(conn: Connection, method_id: str) -> None:
    """Wait for, then hold until the caller's transaction ends, the lock that serializes
    the card network cap's count and the attempt it lets through, per method (advisory:
    the charge runs on other connections). Always taken after the invoice's payment lock
    (``invoices.try_payment_lock``), never before, so two retries cannot wait on each other."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('paygrid.method_cap:' || $1))", method_id
    )


async def saved_methods_newest_first(conn: Executor, customer_id: str) -> list[str]:
    records = await conn.fetch(
        "SELECT id FROM payment_methods WHERE customer_id = $1 AND detached_at IS NULL"
        " ORDER BY created_at DESC, id DESC",
        customer_id,
    )
    return [str(r["id"]) for r in records]


async def payment_method_of(conn: Executor, payment_id: str) -> str | None:
    """The method a payment charged (a declined one keeps it on its attempt only)."""
    value = await conn.fetchval(
        "SELECT coalesce(p.payment_method_id, (SELECT a.payment_method_id"
        "  FROM payment_attempts a WHERE a.payment_id = p.id AND a.operation = 'authorize'"
        "  AND a.payment_method_id IS NOT NULL ORDER BY a.created_at DESC, a.id DESC LIMIT 1))"
        " FROM payments p WHERE p.id = $1",
        payment_id,
    )
    return None if value is None else str(value)


# Work is due for an open invoice at its next retry, and for any invoice when the
# authentication its payment waits for expires (the payment is canceled then).
_DUE: Final = (
    "least(CASE WHEN i.status = 'open' THEN i.next_payment_attempt END, i.action_expires_at)"
)
_WAITING: Final = "(i.next_payment_attempt IS NOT NULL OR i.action_expires_at IS NOT NULL)"


async def next_due_on_clock(conn: Executor, clock_id: str) -> datetime | None:
    value = await conn.fetchval(
        f"SELECT min({_DUE}) FROM invoices i JOIN customers c ON c.id = i.customer_id"
        f" WHERE c.test_clock_id = $1 AND {_WAITING}",
        clock_id,
    )
    return None if value is None else value


async def due_on_clock(conn: Executor, clock_id: str, moment: datetime) -> list[str]:
    """The open invoices of the clock's customers with work due at ``moment``, in order."""
    records = await conn.fetch(
        f"SELECT i.id FROM invoices i JOIN customers c ON c.id = i.customer_id"
        f" WHERE c.test_clock_id = $1 AND {_WAITING}"
        f" AND {_DUE} <= $2 ORDER BY {_DUE}, i.id",
        clock_id,
        moment,
    )
    return [str(r["id"]) for r in records]


async def due_on_system_clock(conn: Executor, now: datetime, limit: int) -> list[str]:
    records = await conn.fetch(
        f"SELECT i.id FROM invoices i JOIN customers c ON c.id = i.customer_id"
        f" WHERE {_WAITING} AND {_DUE} <= $1 AND c.test_clock_id IS NULL"
        f" ORDER BY {_DUE}, i.id LIMIT $2",
        now,
        limit,
    )
    return [str(r["id"]) for r in records]


async def open_attempted_of_customer(conn: Executor, customer_id: str) -> list[str]:
    """The customer's open invoices collected automatically that have failed an attempt
    (in dunning, or with their schedule over), oldest first."""
    records = await conn.fetch(
        "SELECT id FROM invoices WHERE customer_id = $1 AND status = 'open'"
        " AND collection_method = 'charge_automatically' AND attempt_count > 0"
        " ORDER BY id",
        customer_id,
    )
    return [str(r["id"]) for r in records]


async def close_abandoned_authorizations(
    conn: Connection, payment_id: str, message: str, now: datetime
) -> Sequence[str]:
    """The payment's authorization attempts still waiting for the customer's authentication
    end ``declined`` (``authentication_required``) once the payment is canceled."""
    records = await conn.fetch(
        "UPDATE payment_attempts SET status = 'declined', completed_at = $2,"
        " error_code = coalesce(error_code, 'authentication_required'),"
        " error_message = coalesce(error_message, $3)"
        " WHERE payment_id = $1 AND operation = 'authorize'"
        " AND status IN ('pending', 'requires_action') RETURNING id",
        payment_id,
        now,
        message,
    )
    return [str(r["id"]) for r in records]
