"""Payments and their attempts, as typed rows. Every status write is guarded by the allowed
source statuses from the domain transition table; zero rows updated means a conflicting
change won."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, TypedDict

import asyncpg

from paygrid.db import audit
from paygrid.db import payment_methods as pm_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.idempotency import ClaimRequest, KeyAlreadyClaimed, claim_clause, completion_clause
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.db.statements import Statement
from paygrid.domain.payments import (
    OPEN_ATTEMPT_STATUSES,
    AttemptOperation,
    AttemptStatus,
    CaptureMethod,
    PaymentStatus,
)

Row = asyncpg.Record


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """One ``payments`` row."""

    id: str
    merchant_id: str
    livemode: bool
    status: PaymentStatus
    amount: int
    currency: str
    capture_method: CaptureMethod
    amount_capturable: int
    amount_received: int
    amount_refunded: int
    customer_id: str | None
    payment_method_id: str | None
    connector: str | None
    connector_account_id: str | None
    description: str | None
    return_url: str | None
    order_id: str | None
    reference: str
    metadata: dict[str, str]
    last_payment_error: dict[str, Any] | None
    next_action: dict[str, Any] | None
    cancellation_reason: str | None
    canceled_at: datetime | None
    idempotency_key: str | None
    receipt_email: str | None
    payment_method_types: list[str]
    created_at: datetime
    updated_at: datetime
    # Saved methods (docs/billing.md): save the method for off-session charges, or be one.
    setup_future_usage: str | None = None
    off_session: bool = False
    mandate_data: dict[str, Any] | None = None  # the customer's acceptance, to record
    # Settlements (docs/settlements.md): the provider's fee and what is left, once known.
    fee: int | None = None
    net: int | None = None

    @classmethod
    def from_record(cls, record: Row) -> PaymentRow:
        return cls(
            **{
                **dict(record.items()),
                "status": PaymentStatus(record["status"]),
                "capture_method": CaptureMethod(record["capture_method"]),
                "payment_method_types": list(record["payment_method_types"]),
            }
        )


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One ``payment_attempts`` row: one call to a provider for a payment."""

    id: str
    payment_id: str
    operation: AttemptOperation
    connector: str
    connector_account_id: str | None
    status: AttemptStatus
    amount: int
    payment_method_id: str | None
    refund_id: str | None
    provider_reference: str | None
    error_code: str | None
    decline_code: str | None
    error_message: str | None
    latency_ms: int | None
    created_at: datetime
    completed_at: datetime | None
    sync_count: int
    next_sync_at: datetime | None

    @classmethod
    def from_record(cls, record: Row) -> AttemptRow:
        return cls(
            **{
                **dict(record.items()),
                "operation": AttemptOperation(record["operation"]),
                "status": AttemptStatus(record["status"]),
            }
        )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ATTEMPT_STATUSES


class PaymentChanges(TypedDict, total=False):
    """The columns a status write may change besides the status itself."""

    payment_method_id: str | None
    return_url: str
    amount_capturable: int
    amount_received: int
    last_payment_error: dict[str, Any] | None
    next_action: dict[str, Any] | None
    cancellation_reason: str | None
    canceled_at: datetime
    connector: str
    connector_account_id: str | None


@dataclass(frozen=True, slots=True)
class Transition:
    """A payment's move to ``target``, allowed only from ``sources``."""

    sources: frozenset[PaymentStatus]
    target: PaymentStatus
    changes: PaymentChanges
    at: datetime


_SELECT = "SELECT * FROM payments WHERE id = $1 AND merchant_id = $2 AND livemode = $3"
_SELECT_FOR_UPDATE = _SELECT + " FOR UPDATE"


async def create_with_attempt(
    conn: Executor,
    *,
    payment: PaymentRow,
    method: pm_db.PaymentMethodRow | None,
    attempt: AttemptRow | None,
    event: dict[str, Any],
    skipped_attempts: Iterable[AttemptRow] = (),
    method_use: pm_db.Use | None = None,
    claim: ClaimRequest | None = None,
    response: bytes | None = None,
) -> tuple[bool, bool]:
    """Insert a payment with its new payment method (bound to it), first attempt and
    ``payment.created`` event in one statement. With ``method_use`` (a saved method), only
    if the method may still pay for it (``pm_db.lock_for_use``). Returns (created, method
    usable); not created with a usable method: its idempotency key already created a
    payment. Nothing is written unless created. With ``claim``, the request's idempotency
    key is claimed first and gates everything else (``KeyAlreadyClaimed`` when the key is in
    the table); with ``response`` too, it is stored answered."""
    statement = Statement()
    context = audit.context_clause(statement)
    gates = []
    if claim is not None:
        # The key is created when the payment is: one clock reading, no extra round trip.
        gates.append(claim_clause(statement, claim, now=payment.created_at, response=response))
    if method_use is not None:
        gates.append(pm_db.lock_for_use(statement, method_use, lock_customer=True))
    statement.insert_row(
        "p",
        "payments",
        payment,
        after=", ".join(gates) or None,
        on_conflict="ON CONFLICT (merchant_id, livemode, idempotency_key) DO NOTHING",
    )
    if method is not None:
        bound = pm_db.values_of(method, payment_id=payment.id)
        statement.insert("m", "payment_methods", bound, after="p")
    for index, skipped in enumerate(skipped_attempts):
        # Accounts that could not be reached while routing come first, as closed attempts.
        statement.insert_row(f"s{index}", "payment_attempts", skipped, after="p")
    if attempt is not None:
        statement.insert_row("a", "payment_attempts", attempt, after="p")
    statement.insert("e", "events", event, after="p")
    usable = claimed = "1"
    if method_use is not None:
        pm_db.bind_use(statement, method_use, after="p")
        usable = f"(SELECT count(*) FROM {gates[-1]})"
    if claim is not None:
        claimed = f"(SELECT count(*) FROM {gates[0]})"
    select = (
        f"SELECT (SELECT count(*) FROM p) AS created, {usable} AS usable, {claimed} AS claimed,"
        f" {context} AS audit_context"
    )
    with audit.inline_context():
        row = await conn.fetchrow(statement.sql(select), *statement.args)
    assert row is not None
    if not row["claimed"]:
        raise KeyAlreadyClaimed
    return bool(row["created"]), bool(row["usable"])


# What a provider's answer changes on its attempt.
_OUTCOME_COLUMNS = (
    "status",
    "provider_reference",
    "latency_ms",
    "error_code",
    "decline_code",
    "error_message",
    "completed_at",
    "next_sync_at",
)
_outcome_of = attrgetter(*_OUTCOME_COLUMNS)


async def record_attempt_outcome(
    conn: Executor,
    *,
    attempt: AttemptRow,
    transition: Transition | None,
    event: dict[str, Any],
    completion: tuple[ClaimRequest, bytes] | None = None,
) -> tuple[bool, bool]:
    """Record a provider answer in one statement: close the attempt (only if still open)
    with ``attempt``'s outcome columns, move the payment (only from ``transition``'s allowed
    sources, with its changes), and write ``event`` when the payment moved (or, with no
    transition, when the attempt changed). Returns (attempt updated, payment updated)."""
    statement = Statement()
    open_statuses = "status IN ('pending', 'requires_action', 'unknown')"
    payment = statement.bind(attempt.payment_id)
    # The payment row is locked first, as every operation on a payment does: the attempt's
    # update waits for it (an uncorrelated EXISTS runs once, before the scan).
    statement.clauses.append(f"l AS (SELECT id FROM payments WHERE id = {payment} FOR UPDATE)")
    outcome = dict(zip(_OUTCOME_COLUMNS, _outcome_of(attempt), strict=True))
    outcome["status"] = attempt.status.value
    statement.update(
        "a",
        "payment_attempts",
        outcome,
        f"id = {statement.bind(attempt.id)} AND {open_statuses} AND EXISTS (SELECT 1 FROM l)",
    )
    source = "a"
    if transition is not None:
        changes = {
            "status": transition.target.value,
            "updated_at": transition.at,
            **transition.changes,
        }
        allowed = statement.bind([s.value for s in transition.sources], "text[]")
        where = f"id = {payment} AND status = ANY({allowed}) AND EXISTS (SELECT 1 FROM a)"
        statement.update("p", "payments", changes, where)
        source = "p"
    statement.insert("e", "events", event, after=source)
    if completion is not None:  # the response is this outcome: stored only if it is written
        claim, response = completion
        completion_clause(statement, claim, status=200, body=response, after=source)
    context = audit.context_clause(statement)
    select = f"SELECT {context} AS audit_context, (SELECT count(*) FROM a) AS attempt, " + (
        "(SELECT count(*) FROM p) AS payment" if transition is not None else "0 AS payment"
    )
    with audit.inline_context():
        row = await conn.fetchrow(statement.sql(select), *statement.args)
    assert row is not None
    return bool(row["attempt"]), bool(row["payment"])


async def lock_payment(conn: Connection, payment_id: str) -> None:
    """Lock a payment's row for the rest of the transaction. Every transaction that changes
    a payment or its attempts or refunds takes this lock first, so two of them never wait
    on each other in opposite orders (a deadlock)."""
    await conn.execute("SELECT 1 FROM payments WHERE id = $1 FOR UPDATE", payment_id)


async def get_by_idempotency_key(
    conn: Executor, merchant_id: str, livemode: bool, key: str
) -> PaymentRow | None:
    record = await conn.fetchrow(
        "SELECT * FROM payments WHERE merchant_id = $1 AND livemode = $2 AND idempotency_key = $3",
        merchant_id,
        livemode,
        key,
    )
    return None if record is None else PaymentRow.from_record(record)


async def find_payment(
    conn: Executor, merchant_id: str, livemode: bool, payment_id: str, *, lock: bool = False
) -> PaymentRow | None:
    record = await conn.fetchrow(
        _SELECT_FOR_UPDATE if lock else _SELECT, payment_id, merchant_id, livemode
    )
    return None if record is None else PaymentRow.from_record(record)


async def payment_by_id(conn: Executor, payment_id: str) -> PaymentRow | None:
    """Load a payment by id alone: only for provider redirects, which carry no API key, and
    the worker's jobs."""
    record = await conn.fetchrow("SELECT * FROM payments WHERE id = $1", payment_id)
    return None if record is None else PaymentRow.from_record(record)


async def transition(conn: Executor, payment_id: str, move: Transition) -> PaymentRow | None:
    """Move a payment to ``move.target`` only if its status is one of ``move.sources``."""
    changes: dict[str, Any] = dict(move.changes)
    assignments = "".join(f", {column} = ${i}" for i, column in enumerate(changes, start=5))
    record = await conn.fetchrow(
        f"UPDATE payments SET status = $2, updated_at = $4{assignments}"
        " WHERE id = $1 AND status = ANY($3::text[]) RETURNING *",
        payment_id,
        move.target.value,
        [status.value for status in move.sources],
        move.at,
        *changes.values(),
    )
    return None if record is None else PaymentRow.from_record(record)


async def reserve_refund(
    conn: Connection, payment_id: str, amount: int, now: datetime
) -> PaymentRow | None:
    """Count ``amount`` against the refundable balance at ``now``; ``None`` if it does not
    fit."""
    record = await conn.fetchrow(
        "UPDATE payments SET amount_refunded = amount_refunded + $2, updated_at = $3"
        " WHERE id = $1 AND status = 'succeeded' AND amount_refunded + $2 <= amount_received"
        " RETURNING *",
        payment_id,
        amount,
        now,
    )
    return None if record is None else PaymentRow.from_record(record)


async def release_refund(
    conn: Connection, payment_id: str, amount: int, now: datetime
) -> PaymentRow:
    row = await conn.fetchrow(
        "UPDATE payments SET amount_refunded = amount_refunded - $2, updated_at = $3"
        " WHERE id = $1 RETURNING *",
        payment_id,
        amount,
        now,
    )
    assert row is not None
    return PaymentRow.from_record(row)


async def list_payments(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    status: str | None = None,
    customer: str | None = None,
    currency: str | None = None,
    reference: str | None = None,
    created_gte: datetime | None = None,
    created_lte: datetime | None = None,
) -> tuple[list[PaymentRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("status = $?", status)
    filters.add_if("customer_id = $?", customer)
    filters.add_if("currency = $?", currency)
    filters.add_if("reference = $?", reference)
    filters.add_if("created_at >= $?", created_gte)
    filters.add_if("created_at <= $?", created_lte)
    records, has_more = await fetch_page(conn, "payments", filters, page)
    return [PaymentRow.from_record(r) for r in records], has_more


# -- attempts -------------------------------------------------------------------------------


async def insert_attempt(conn: Executor, attempt: AttemptRow) -> None:
    """Insert an attempt built in Python (``services.payments.attempts.new_attempt``)."""
    statement = Statement()
    statement.insert_row("a", "payment_attempts", attempt)
    await conn.execute(statement.sql("SELECT 1"), *statement.args)


async def insert_attempt_with_method(conn: Connection, use: pm_db.Use, attempt: AttemptRow) -> bool:
    """Insert a pending authorize attempt of ``use.payment_id`` paying with a saved method,
    only if the method may still pay for it (``pm_db.lock_for_use``); False if not."""
    statement = Statement()
    gate = pm_db.lock_for_use(statement, use, lock_customer=False)
    statement.insert_row("a", "payment_attempts", attempt, after=gate)
    pm_db.bind_use(statement, use, after="a")
    row = await conn.fetchrow(statement.sql("SELECT count(*) AS n FROM a"), *statement.args)
    assert row is not None
    return bool(row["n"])


async def set_return_url(conn: Executor, payment_id: str, return_url: str) -> bool:
    """Where the customer goes back after authenticating a payment that waits for it (an
    off-session charge the customer resumes on the hosted invoice page)."""
    status = await conn.execute(
        "UPDATE payments SET return_url = $2 WHERE id = $1 AND status = 'requires_action'",
        payment_id,
        return_url,
    )
    return bool(status.endswith(" 1"))


async def set_payment_method(conn: Executor, payment_id: str, pm_id: str) -> None:
    await conn.execute(
        "UPDATE payments SET payment_method_id = $2 WHERE id = $1 AND payment_method_id IS NULL",
        payment_id,
        pm_id,
    )


async def finish_attempt(
    conn: Executor,
    attempt_id: str,
    *,
    status: AttemptStatus,
    provider_reference: str | None,
    latency_ms: int | None,
    error_code: str | None = None,
    decline_code: str | None = None,
    error_message: str | None = None,
    now: datetime,
) -> AttemptRow | None:
    """Record an attempt's outcome (a final one completes it at ``now``, the caller's
    clock); only attempts still open (pending, awaiting action or of unknown outcome)
    change, so a late or repeated answer is a no-op."""
    record = await conn.fetchrow(
        "UPDATE payment_attempts SET status = $2,"
        " provider_reference = coalesce($3, provider_reference),"
        " latency_ms = coalesce($4, latency_ms), error_code = $5, decline_code = $6,"
        " error_message = $7,"
        " completed_at = CASE WHEN $2 IN ('pending', 'requires_action', 'unknown') THEN NULL"
        "  ELSE $8::timestamptz END,"
        " next_sync_at = CASE WHEN $2 IN ('pending', 'requires_action', 'unknown')"
        "  THEN next_sync_at END"
        " WHERE id = $1 AND status IN ('pending', 'requires_action', 'unknown') RETURNING *",
        attempt_id,
        status.value,
        provider_reference,
        latency_ms,
        error_code,
        decline_code,
        error_message,
        now,
    )
    return None if record is None else AttemptRow.from_record(record)


async def open_attempt(
    conn: Executor, payment_id: str, operation: AttemptOperation
) -> AttemptRow | None:
    """The newest attempt of ``operation`` whose outcome is not final yet."""
    record = await conn.fetchrow(
        "SELECT * FROM payment_attempts WHERE payment_id = $1 AND operation = $2"
        " AND status IN ('pending', 'requires_action', 'unknown') ORDER BY id DESC LIMIT 1",
        payment_id,
        operation.value,
    )
    return None if record is None else AttemptRow.from_record(record)


async def refund_attempt(conn: Executor, refund_id: str) -> AttemptRow | None:
    record = await conn.fetchrow(
        "SELECT * FROM payment_attempts WHERE refund_id = $1 ORDER BY id DESC LIMIT 1", refund_id
    )
    return None if record is None else AttemptRow.from_record(record)


async def latest_authorization(conn: Executor, payment_id: str) -> AttemptRow | None:
    """The newest authorize attempt that reached the provider with a reference."""
    record = await conn.fetchrow(
        "SELECT * FROM payment_attempts WHERE payment_id = $1 AND operation = 'authorize'"
        " AND provider_reference IS NOT NULL ORDER BY id DESC LIMIT 1",
        payment_id,
    )
    return None if record is None else AttemptRow.from_record(record)


async def attempts_of(conn: Executor, payment_ids: list[str]) -> list[AttemptRow]:
    """The attempts of ``payment_ids``, oldest first per payment."""
    records = await conn.fetch(
        "SELECT * FROM payment_attempts WHERE payment_id = ANY($1::text[]) ORDER BY payment_id, id",
        payment_ids,
    )
    return [AttemptRow.from_record(r) for r in records]


@dataclass(frozen=True, slots=True)
class StatusCount:
    """How many payments share a status, connector, currency and mode."""

    status: str
    connector: str | None
    currency: str
    livemode: bool
    payments: int


async def count_by_status(conn: Executor) -> list[StatusCount]:
    """Payments per status, connector, currency and mode, across all merchants (metrics)."""
    records = await conn.fetch(
        "SELECT status, connector, currency, livemode, count(*) AS payments FROM payments"
        " GROUP BY status, connector, currency, livemode"
    )
    return [StatusCount(**dict(r.items())) for r in records]
