"""Saved payment methods: tokens from a connector plus display details (never the PAN)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db.executor import Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.db.rows import column_values
from paygrid.db.statements import Statement
from paygrid.domain.payment_methods import PaymentMethodType


@dataclass(frozen=True, slots=True)
class PaymentMethodRow:
    """One ``payment_methods`` row."""

    id: str
    merchant_id: str
    livemode: bool
    type: PaymentMethodType
    card_brand: str
    card_last4: str
    card_exp_month: int
    card_exp_year: int
    connector: str
    connector_reference: str
    connector_account_id: str | None
    channel: str | None
    card_country: str | None
    customer_id: str | None
    metadata: dict[str, str]
    created_at: datetime
    detached_at: datetime | None = None
    bound_payment_id: str | None = None
    mandate_id: str | None = None  # the acceptance of off-session charges, once set up

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> PaymentMethodRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        return cls(**{**values, "type": PaymentMethodType(record["type"])})

    @property
    def attached(self) -> bool:
        return self.customer_id is not None


@dataclass(frozen=True, slots=True)
class MethodForPayment:
    """A method a payment is to use, and whether it is unattached and already bound to
    another payment (the one it first paid for)."""

    method: PaymentMethodRow
    used_by_other_payment: bool


def _row(record: asyncpg.Record | None) -> PaymentMethodRow | None:
    return None if record is None else PaymentMethodRow.from_record(record)


async def insert_payment_method(
    conn: Executor,
    *,
    pm_id: str,
    merchant_id: str,
    livemode: bool,
    customer_id: str | None,
    brand: str,
    last4: str,
    exp_month: int,
    exp_year: int,
    connector: str,
    reference: str,
    metadata: dict[str, str],
) -> PaymentMethodRow:
    record = await conn.fetchrow(
        "INSERT INTO payment_methods (id, merchant_id, livemode, customer_id, type, card_brand,"
        " card_last4, card_exp_month, card_exp_year, connector, connector_reference, metadata)"
        " VALUES ($1, $2, $3, $4, $12, $5, $6, $7, $8, $9, $10, $11) RETURNING *",
        pm_id,
        merchant_id,
        livemode,
        customer_id,
        brand,
        last4,
        exp_month,
        exp_year,
        connector,
        reference,
        metadata,
        PaymentMethodType.CARD,
    )
    assert record is not None
    return PaymentMethodRow.from_record(record)


async def get_payment_method(
    conn: Executor, merchant_id: str, livemode: bool, pm_id: str
) -> PaymentMethodRow | None:
    return _row(
        await conn.fetchrow(
            "SELECT * FROM payment_methods WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
            pm_id,
            merchant_id,
            livemode,
        )
    )


async def get_attached(
    conn: Executor, merchant_id: str, livemode: bool, pm_id: str, customer_id: str
) -> PaymentMethodRow | None:
    """The method if it is attached to ``customer_id``, locked against a concurrent detach
    until the caller's transaction ends."""
    return _row(
        await conn.fetchrow(
            "SELECT * FROM payment_methods WHERE id = $1 AND merchant_id = $2"
            " AND livemode = $3 AND customer_id = $4 FOR SHARE",
            pm_id,
            merchant_id,
            livemode,
            customer_id,
        )
    )


async def get_for_payment(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    pm_id: str,
    *,
    payment_id: str | None,
    idempotency_key: str | None,
) -> MethodForPayment | None:
    """The method a payment is to use, with ``used_by_other_payment``: it is unattached and
    bound to another payment (the one it first paid for). "Another" is any payment but
    ``payment_id`` (a confirm) or the one created with ``idempotency_key`` (a create resumed
    after a crash). One query; the statement that writes the payment checks again
    (``lock_for_use``)."""
    record = await conn.fetchrow(
        "SELECT pm.*, pm.customer_id IS NULL AND pm.bound_payment_id IS NOT NULL"
        "  AND pm.bound_payment_id IS DISTINCT FROM $4"
        "  AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.id = pm.bound_payment_id"
        "   AND p.idempotency_key = $5)"
        " AS used_by_other_payment"
        " FROM payment_methods pm WHERE pm.id = $1 AND pm.merchant_id = $2 AND pm.livemode = $3",
        pm_id,
        merchant_id,
        livemode,
        payment_id,
        idempotency_key,
    )
    if record is None:
        return None
    return MethodForPayment(
        PaymentMethodRow.from_record(record), bool(record["used_by_other_payment"])
    )


@dataclass(frozen=True, slots=True)
class Use:
    """A payment about to pay with a saved method, as the ownership rule allowed it when the
    method was read: ``attached`` to the payment's customer, or unattached and free for
    this payment."""

    method_id: str
    payment_id: str
    customer_id: str | None
    attached: bool


def lock_for_use(statement: Statement, use: Use, *, lock_customer: bool) -> str:
    """Add a clause that locks the method and has one row only if ``use`` is still allowed:
    the rule is checked again on the locked row, so a concurrent first use, detach or
    customer deletion that committed meanwhile is seen. Returns the clause's name; write
    the payment or attempt only from it, then call ``bind_use``.

    ``lock_customer`` (a new payment): the payment's customer, not deleted, is locked first.
    The new row would take that lock at the end of the statement anyway; taking it before
    the method's keeps the order of deleting a customer (customer, then its methods)."""
    gate = ""
    if lock_customer and use.customer_id is not None:
        customer = statement.bind(use.customer_id)
        statement.clauses.append(
            f"uc AS (SELECT 1 FROM customers WHERE id = {customer} AND deleted_at IS NULL"
            " FOR KEY SHARE)"
        )
        gate = " AND EXISTS (SELECT 1 FROM uc)"
    where = f"id = {statement.bind(use.method_id)}{gate}"
    if use.attached:
        where += f" AND customer_id = {statement.bind(use.customer_id)}"
        lock = "FOR SHARE"
    else:
        payment = statement.bind(use.payment_id)
        where += (
            " AND customer_id IS NULL AND detached_at IS NULL"
            f" AND (bound_payment_id IS NULL OR bound_payment_id = {payment})"
        )
        lock = "FOR NO KEY UPDATE"
    statement.clauses.append(f"ul AS (SELECT 1 FROM payment_methods WHERE {where} {lock})")
    return "ul"


def bind_use(statement: Statement, use: Use, *, after: str) -> None:
    """Bind an unattached method to its payment once ``after`` (the payment or attempt
    written from ``lock_for_use``'s clause) produced a row."""
    if use.attached:
        return
    method = statement.bind(use.method_id)
    payment = statement.bind(use.payment_id)
    statement.clauses.append(
        f"ub AS (UPDATE payment_methods SET bound_payment_id = {payment}"
        f" WHERE id = {method} AND EXISTS (SELECT 1 FROM {after}) RETURNING 1)"
    )


async def attach(conn: Executor, pm_id: str, customer_id: str) -> PaymentMethodRow | None:
    """Attach to ``customer_id`` unless another customer holds it (``None`` then)."""
    return _row(
        await conn.fetchrow(
            "UPDATE payment_methods SET customer_id = $2, detached_at = NULL"
            " WHERE id = $1 AND (customer_id IS NULL OR customer_id = $2) RETURNING *",
            pm_id,
            customer_id,
        )
    )


async def detach(conn: Executor, pm_id: str, now: datetime) -> PaymentMethodRow | None:
    """Detach from its customer at ``now`` (the caller's clock); ``None`` when it was not
    attached."""
    return _row(
        await conn.fetchrow(
            "UPDATE payment_methods SET customer_id = NULL, detached_at = $2"
            " WHERE id = $1 AND customer_id IS NOT NULL RETURNING *",
            pm_id,
            now,
        )
    )


async def detach_all(conn: Executor, customer_id: str, now: datetime) -> list[PaymentMethodRow]:
    """Detach every method of a customer (deleted or erased) at ``now``, in the caller's
    transaction."""
    records = await conn.fetch(
        "UPDATE payment_methods SET customer_id = NULL, detached_at = $2"
        " WHERE customer_id = $1 RETURNING *",
        customer_id,
        now,
    )
    return [PaymentMethodRow.from_record(r) for r in records]


async def list_payment_methods(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest, customer_id: str | None
) -> tuple[list[PaymentMethodRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("customer_id = $?", customer_id)
    records, has_more = await fetch_page(conn, "payment_methods", filters, page)
    return [PaymentMethodRow.from_record(r) for r in records], has_more


def values_of(row: PaymentMethodRow, *, payment_id: str) -> dict[str, Any]:
    """The columns to insert a payment method built in Python for the payment
    ``payment_id``, bound to it (inside a larger statement)."""
    return {**column_values(row), "bound_payment_id": payment_id}


async def insert_row(conn: Executor, row: PaymentMethodRow, *, payment_id: str) -> None:
    """Insert a payment method built in Python (``services.payment_methods.new_method_row``)
    for the payment ``payment_id``, bound to it."""
    statement = Statement()
    statement.insert("m", "payment_methods", values_of(row, payment_id=payment_id))
    await conn.execute(statement.sql("SELECT 1"), *statement.args)
