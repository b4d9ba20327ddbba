"""Queries that erase one customer's personal data across tables (``paygrid customers erase``).

Every function runs in the caller's transaction; the customer row is locked first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from paygrid.db.customers import CustomerRow
from paygrid.db.executor import Connection


@dataclass(frozen=True, slots=True)
class ErasedPayment:
    """A payment's personal fields as they were before the erasure blanked them."""

    id: str
    receipt_email: str | None
    description: str | None
    metadata: dict[str, object]


@dataclass(frozen=True, slots=True)
class ErasedMethod:
    """A payment method's metadata as it was before the erasure cleared it."""

    id: str
    metadata: dict[str, object]


@dataclass(frozen=True, slots=True)
class EventData:
    id: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SavedResponse:
    """The saved response body of an idempotent request."""

    key: str
    response_body: bytes


async def lock_customer(conn: Connection, merchant_id: str, customer_id: str) -> CustomerRow | None:
    """The customer, in either mode, locked for the erasure."""
    record = await conn.fetchrow(
        "SELECT * FROM customers WHERE id = $1 AND merchant_id = $2 FOR UPDATE",
        customer_id,
        merchant_id,
    )
    return None if record is None else CustomerRow.from_record(record)


async def redact_customer(conn: Connection, customer_id: str) -> None:
    await conn.execute(
        "UPDATE customers SET email = NULL, name = NULL, phone = NULL, metadata = '{}'"
        " WHERE id = $1",
        customer_id,
    )
    # The hosted invoice pages' snapshot of the customer, and the PDFs that print it (the
    # next download renders them again, without the person).
    await conn.execute(
        "UPDATE hosted_invoices h SET customer_name = NULL, customer_email = NULL,"
        " pdf = NULL, pdf_rendered_at = NULL"
        " FROM invoices i WHERE i.id = h.invoice_id AND i.customer_id = $1",
        customer_id,
    )


async def redact_payments(
    conn: Connection, merchant_id: str, livemode: bool, customer_id: str, email: str | None
) -> list[ErasedPayment]:
    """Blank the personal fields of the customer's payments, and of payments that named the
    customer's email as receipt email; metadata keeps its keys. Returns each payment's id and
    former receipt email, description and metadata."""
    records = await conn.fetch(
        "UPDATE payments p SET receipt_email = NULL, description = NULL, updated_at = now(),"
        " metadata = (SELECT coalesce(jsonb_object_agg(key, '[erased]'), '{}')"
        "  FROM jsonb_object_keys(p.metadata) AS key)"
        " FROM (SELECT id, receipt_email, description, metadata FROM payments"
        "  WHERE merchant_id = $1"
        "  AND livemode = $2 AND (customer_id = $3"
        "  OR ($4::text IS NOT NULL AND lower(receipt_email) = lower($4)))"
        "  ORDER BY id FOR UPDATE) old"
        " WHERE p.id = old.id"
        " RETURNING p.id, old.receipt_email, old.description, old.metadata",
        merchant_id,
        livemode,
        customer_id,
        email,
    )
    return [
        ErasedPayment(r["id"], r["receipt_email"], r["description"], r["metadata"]) for r in records
    ]


async def redact_payment_methods(conn: Connection, customer_id: str) -> list[ErasedMethod]:
    """Clear the metadata of the customer's payment methods; returns ids and former metadata."""
    records = await conn.fetch(
        "UPDATE payment_methods pm SET metadata = '{}' FROM (SELECT id, metadata"
        " FROM payment_methods WHERE customer_id = $1 ORDER BY id FOR UPDATE) old"
        " WHERE pm.id = old.id RETURNING pm.id, old.metadata",
        customer_id,
    )
    return [ErasedMethod(r["id"], r["metadata"]) for r in records]


async def act_as(conn: Connection, actor: str) -> None:
    """Name the actor the audit triggers record, for this transaction only."""
    await conn.execute("SELECT set_config('paygrid.actor', $1::text, true)", actor)


def _mentions(first_param: int, needles: list[str]) -> str:
    """SQL: the text of a jsonb column (``{col}``) contains one of the needles."""
    return " OR ".join(
        f"strpos(lower({{col}}), ${i})::int > 0"
        for i in range(first_param, first_param + len(needles))
    )


def _json_needles(needles: list[str]) -> list[str]:
    """Needles as they appear inside JSON text (quotes and backslashes escaped), lowercased."""
    return [json.dumps(n.lower(), ensure_ascii=False)[1:-1] for n in needles if n]


async def events_to_redact(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    object_ids: list[str],
    needles: list[str],
) -> list[EventData]:
    """Events about the person's objects, or whose snapshot mentions one of the needles."""
    wanted = _json_needles(needles)
    mentions = _mentions(4, wanted).format(col="data::text")
    records = await conn.fetch(
        "SELECT id, data FROM events WHERE merchant_id = $1 AND livemode = $2"
        f" AND (object_id = ANY($3::text[]){' OR ' + mentions if mentions else ''})"
        " ORDER BY id FOR UPDATE",
        merchant_id,
        livemode,
        object_ids,
        *wanted,
    )
    return [EventData(r["id"], r["data"]) for r in records]


async def update_event_data(conn: Connection, changes: list[tuple[str, dict[str, Any]]]) -> None:
    await conn.executemany("UPDATE events SET data = $2 WHERE id = $1", changes)


async def idempotent_responses_to_redact(
    conn: Connection, merchant_id: str, livemode: bool, needles: list[str]
) -> list[SavedResponse]:
    """Saved responses of idempotent requests that mention one of the needles."""
    wanted = _json_needles(needles)
    if not wanted:
        return []
    mentions = _mentions(3, wanted).format(col="convert_from(response_body, 'UTF8')")
    records = await conn.fetch(
        "SELECT key, response_body FROM idempotency_keys WHERE merchant_id = $1"
        f" AND livemode = $2 AND response_body IS NOT NULL AND ({mentions}) FOR UPDATE",
        merchant_id,
        livemode,
        *wanted,
    )
    return [SavedResponse(r["key"], r["response_body"]) for r in records]


async def update_idempotent_responses(
    conn: Connection, merchant_id: str, livemode: bool, changes: list[tuple[str, bytes]]
) -> None:
    await conn.executemany(
        "UPDATE idempotency_keys SET response_body = $4"
        " WHERE merchant_id = $1 AND livemode = $2 AND key = $3",
        [(merchant_id, livemode, key, body) for key, body in changes],
    )
