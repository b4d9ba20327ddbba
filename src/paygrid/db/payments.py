"""Payments and their attempts. Every status write is guarded by the allowed source statuses
from the domain transition table; zero rows updated means a conflicting change won."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db import payment_methods as pm_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.db.statements import Statement

Row = asyncpg.Record

_UPDATABLE = frozenset(
    {
        "payment_method_id",
        "return_url",
        "amount_capturable",
        "amount_received",
        "last_payment_error",
        "next_action",
        "cancellation_reason",
        "canceled_at",
        "connector",
        "connector_account_id",
    }
)


_SELECT = "SELECT * FROM payments WHERE id = $1 AND merchant_id = $2 AND livemode = $3"
_SELECT_FOR_UPDATE = _SELECT + " FOR UPDATE"


async def create_with_attempt(
    conn: Executor,
    *,
    payment: dict[str, Any],
    method: dict[str, Any] | None,
    attempt: dict[str, Any] | None,
    event: dict[str, Any],
    skipped_attempts: Iterable[dict[str, Any]] = (),
    method_use: pm_db.Use | None = None,
) -> tuple[bool, bool]:
    """Insert a payment with its new payment method (bound to it), first attempt and
    ``payment.created`` event in one statement. With ``method_use`` (a saved method), only
    if the method may still pay for it (``pm_db.lock_for_use``). Returns (created, method
    usable); not created with a usable method: its idempotency key already created a
    payment. Nothing is written unless created."""
    statement = Statement()
    gate = None
    if method_use is not None:
        gate = pm_db.lock_for_use(statement, method_use, lock_customer=True)
    statement.insert(
        "p",
        "payments",
        payment,
        after=gate,
        on_conflict="ON CONFLICT (merchant_id, livemode, idempotency_key) DO NOTHING",
    )
    if method is not None:
        bound = {**method, "bound_payment_id": payment["id"]}
        statement.insert("m", "payment_methods", bound, after="p")
    for index, skipped in enumerate(skipped_attempts):
        # Accounts that could not be reached while routing come first, as closed attempts.
        statement.insert(f"s{index}", "payment_attempts", skipped, after="p")
    if attempt is not None:
        statement.insert("a", "payment_attempts", attempt, after="p")
    statement.insert("e", "events", event, after="p")
    usable = "1"
    if method_use is not None:
        pm_db.bind_use(statement, method_use, after="p")
        usable = f"(SELECT count(*) FROM {gate})"
    row = await conn.fetchrow(
        statement.sql(f"SELECT (SELECT count(*) FROM p) AS created, {usable} AS usable"),
        *statement.args,
    )
    assert row is not None
    return bool(row["created"]), bool(row["usable"])


async def record_attempt_outcome(
    conn: Executor,
    *,
    attempt_id: str,
    attempt_changes: dict[str, Any],
    payment_id: str,
    transition: tuple[Iterable[str], dict[str, Any]] | None,
    event: dict[str, Any],
) -> tuple[bool, bool]:
    """Record a provider answer in one statement: close the attempt (only if still open),
    move the payment (only from ``transition``'s allowed sources, with its changes), and
    write ``event`` when the payment moved (or, with no transition, when the attempt
    changed). Returns (attempt updated, payment updated)."""
    statement = Statement()
    open_statuses = "status IN ('pending', 'requires_action', 'unknown')"
    payment = statement.bind(payment_id)
    # The payment row is locked first, as every operation on a payment does: the attempt's
    # update waits for it (an uncorrelated EXISTS runs once, before the scan).
    statement.clauses.append(f"l AS (SELECT id FROM payments WHERE id = {payment} FOR UPDATE)")
    statement.update(
        "a",
        "payment_attempts",
        attempt_changes,
        f"id = {statement.bind(attempt_id)} AND {open_statuses} AND EXISTS (SELECT 1 FROM l)",
    )
    source = "a"
    if transition is not None:
        sources, changes = transition
        allowed = statement.bind(list(sources), "text[]")
        where = f"id = {payment} AND status = ANY({allowed}) AND EXISTS (SELECT 1 FROM a)"
        statement.update("p", "payments", changes, where)
        source = "p"
    statement.insert("e", "events", event, after=source)
    select = "SELECT (SELECT count(*) FROM a) AS attempt, " + (
        "(SELECT count(*) FROM p) AS payment" if transition is not None else "0 AS payment"
    )
    row = await conn.fetchrow(statement.sql(select), *statement.args)
    assert row is not None
    return bool(row["attempt"]), bool(row["payment"])


async def get_payment(
    conn: Executor, merchant_id: str, livemode: bool, payment_id: str, *, lock: bool = False
) -> Row | None:
    return await conn.fetchrow(
        _SELECT_FOR_UPDATE if lock else _SELECT,
        payment_id,
        merchant_id,
        livemode,
    )


async def lock_payment(conn: Connection, payment_id: str) -> Row | None:
    """Lock a payment's row for the rest of the transaction. Every transaction that changes
    a payment or its attempts or refunds takes this lock first, so two of them never wait
    on each other in opposite orders (a deadlock)."""
    return await conn.fetchrow("SELECT * FROM payments WHERE id = $1 FOR UPDATE", payment_id)


async def get_payment_unscoped(conn: Executor, payment_id: str) -> Row | None:
    """Load a payment by id alone: only for provider redirects, which carry no API key."""
    return await conn.fetchrow("SELECT * FROM payments WHERE id = $1", payment_id)


async def get_by_idempotency_key(
    conn: Executor, merchant_id: str, livemode: bool, key: str
) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM payments WHERE merchant_id = $1 AND livemode = $2 AND idempotency_key = $3",
        merchant_id,
        livemode,
        key,
    )


async def transition(
    conn: Executor,
    payment_id: str,
    *,
    sources: Iterable[str],
    target: str,
    changes: dict[str, Any] | None = None,
) -> Row | None:
    """Move a payment to ``target`` only if its status is one of ``sources``."""
    changes = changes or {}
    assert set(changes) <= _UPDATABLE, set(changes) - _UPDATABLE
    assignments = "".join(f", {column} = ${i}" for i, column in enumerate(changes, start=4))
    return await conn.fetchrow(
        f"UPDATE payments SET status = $2, updated_at = now(){assignments}"
        " WHERE id = $1 AND status = ANY($3::text[]) RETURNING *",
        payment_id,
        target,
        list(sources),
        *changes.values(),
    )


async def reserve_refund(conn: Connection, payment_id: str, amount: int) -> Row | None:
    """Count ``amount`` against the refundable balance; ``None`` if it does not fit."""
    return await conn.fetchrow(
        "UPDATE payments SET amount_refunded = amount_refunded + $2, updated_at = now()"
        " WHERE id = $1 AND status = 'succeeded' AND amount_refunded + $2 <= amount_received"
        " RETURNING *",
        payment_id,
        amount,
    )


async def release_refund(conn: Connection, payment_id: str, amount: int) -> Row:
    row = await conn.fetchrow(
        "UPDATE payments SET amount_refunded = amount_refunded - $2, updated_at = now()"
        " WHERE id = $1 RETURNING *",
        payment_id,
        amount,
    )
    assert row is not None
    return row


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
) -> tuple[list[Row], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("status = $?", status)
    filters.add_if("customer_id = $?", customer)
    filters.add_if("currency = $?", currency)
    filters.add_if("reference = $?", reference)
    filters.add_if("created_at >= $?", created_gte)
    filters.add_if("created_at <= $?", created_lte)
    return await fetch_page(conn, "payments", filters, page)


# -- attempts -------------------------------------------------------------------------------


async def insert_attempt(
    conn: Connection,
    *,
    attempt_id: str,
    payment_id: str,
    operation: str,
    connector: str,
    amount: int,
    connector_account_id: str | None = None,
    payment_method_id: str | None = None,
    refund_id: str | None = None,
) -> Row:
    row = await conn.fetchrow(
        "INSERT INTO payment_attempts (id, payment_id, operation, connector, status, amount,"
        " payment_method_id, refund_id, connector_account_id)"
        " VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8) RETURNING *",
        attempt_id,
        payment_id,
        operation,
        connector,
        amount,
        payment_method_id,
        refund_id,
        connector_account_id,
    )
    assert row is not None
    return row


async def insert_attempt_with_method(
    conn: Connection,
    use: pm_db.Use,
    *,
    attempt_id: str,
    connector: str,
    amount: int,
    connector_account_id: str | None,
) -> Row | None:
    """Insert a pending authorize attempt of ``use.payment_id`` paying with a saved method,
    only if the method may still pay for it (``pm_db.lock_for_use``); ``None`` if not."""
    statement = Statement()
    gate = pm_db.lock_for_use(statement, use, lock_customer=False)
    columns = {
        "id": attempt_id,
        "payment_id": use.payment_id,
        "operation": "authorize",
        "connector": connector,
        "status": "pending",
        "amount": amount,
        "payment_method_id": use.method_id,
        "connector_account_id": connector_account_id,
    }
    statement.insert("a", "payment_attempts", columns, after=gate, returning="*")
    pm_db.bind_use(statement, use, after="a")
    return await conn.fetchrow(statement.sql("SELECT * FROM a"), *statement.args)


async def set_payment_method(conn: Executor, payment_id: str, pm_id: str) -> None:
    await conn.execute(
        "UPDATE payments SET payment_method_id = $2 WHERE id = $1 AND payment_method_id IS NULL",
        payment_id,
        pm_id,
    )


async def insert_attempt_row(conn: Executor, row: dict[str, Any]) -> None:
    """Insert an attempt built in Python (a closed one, for an account that was skipped)."""
    statement = Statement()
    statement.insert("a", "payment_attempts", row)
    await conn.execute(statement.sql("SELECT 1"), *statement.args)


async def finish_attempt(
    conn: Executor,
    attempt_id: str,
    *,
    status: str,
    provider_reference: str | None,
    latency_ms: int | None,
    error_code: str | None = None,
    decline_code: str | None = None,
    error_message: str | None = None,
) -> Row | None:
    """Record an attempt's outcome; only attempts still open (pending, awaiting action or of
    unknown outcome) change, so a late or repeated answer is a no-op."""
    return await conn.fetchrow(
        "UPDATE payment_attempts SET status = $2,"
        " provider_reference = coalesce($3, provider_reference),"
        " latency_ms = coalesce($4, latency_ms), error_code = $5, decline_code = $6,"
        " error_message = $7,"
        " completed_at = CASE WHEN $2 IN ('pending', 'requires_action', 'unknown') THEN NULL"
        "  ELSE now() END,"
        " next_sync_at = CASE WHEN $2 IN ('pending', 'requires_action', 'unknown')"
        "  THEN next_sync_at END"
        " WHERE id = $1 AND status IN ('pending', 'requires_action', 'unknown') RETURNING *",
        attempt_id,
        status,
        provider_reference,
        latency_ms,
        error_code,
        decline_code,
        error_message,
    )


async def open_attempt(conn: Executor, payment_id: str, operation: str) -> Row | None:
    """The newest attempt of ``operation`` whose outcome is not final yet."""
    return await conn.fetchrow(
        "SELECT * FROM payment_attempts WHERE payment_id = $1 AND operation = $2"
        " AND status IN ('pending', 'requires_action', 'unknown') ORDER BY id DESC LIMIT 1",
        payment_id,
        operation,
    )


async def refund_attempt(conn: Executor, refund_id: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM payment_attempts WHERE refund_id = $1 ORDER BY id DESC LIMIT 1", refund_id
    )


async def latest_authorization(conn: Executor, payment_id: str) -> Row | None:
    """The newest authorize attempt that reached the provider with a reference."""
    return await conn.fetchrow(
        "SELECT * FROM payment_attempts WHERE payment_id = $1 AND operation = 'authorize'"
        " AND provider_reference IS NOT NULL ORDER BY id DESC LIMIT 1",
        payment_id,
    )


async def list_attempts(conn: Executor, payment_ids: list[str]) -> list[Row]:
    return list(
        await conn.fetch(
            "SELECT * FROM payment_attempts WHERE payment_id = ANY($1::text[])"
            " ORDER BY payment_id, id",
            payment_ids,
        )
    )


async def count_by_status(conn: Executor) -> list[Row]:
    """Payments per status, connector, currency and mode, across all merchants (metrics)."""
    return list(
        await conn.fetch(
            "SELECT status, connector, currency, livemode, count(*) AS payments FROM payments"
            " GROUP BY status, connector, currency, livemode"
        )
    )
