"""Hosted invoice pages: the token of each finalized invoice's page, the snapshot of the
merchant and customer as they were at finalize, and the PDF, stored once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from paygrid.db.executor import Connection, Executor


@dataclass(frozen=True, slots=True)
class HostedInvoiceRow:
    """One ``hosted_invoices`` row, without its PDF bytes."""

    invoice_id: str
    merchant_id: str
    livemode: bool
    token: str
    form_token: str
    merchant_name: str
    customer_name: str | None
    customer_email: str | None
    pdf_rendered_at: datetime | None
    created_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> HostedInvoiceRow:
        return cls(**{f.name: record[f.name] for f in fields(cls)})


_COLUMNS = ", ".join(HostedInvoiceRow.__dataclass_fields__)


async def record(conn: Connection, tokens: Mapping[str, tuple[str, str]], now: datetime) -> None:
    """One row per invoice of ``tokens`` (invoice id → page token and form token), in the
    finalizing transaction: the merchant's and customer's names and email as they are now."""
    if not tokens:
        return
    await conn.execute(
        "INSERT INTO hosted_invoices (invoice_id, merchant_id, livemode, token, form_token,"
        " merchant_name, customer_name, customer_email, created_at)"
        " SELECT i.id, i.merchant_id, i.livemode, t.token, t.form_token, m.name, c.name,"
        " c.email, $4"
        " FROM unnest($1::text[], $2::text[], $3::text[]) AS t(invoice_id, token, form_token)"
        " JOIN invoices i ON i.id = t.invoice_id"
        " JOIN merchants m ON m.id = i.merchant_id"
        " JOIN customers c ON c.id = i.customer_id"
        " ON CONFLICT (invoice_id) DO NOTHING",
        list(tokens),
        [token for token, _ in tokens.values()],
        [form_token for _, form_token in tokens.values()],
        now,
    )


async def by_token(conn: Executor, token: str) -> HostedInvoiceRow | None:
    found = await conn.fetchrow(f"SELECT {_COLUMNS} FROM hosted_invoices WHERE token = $1", token)
    return None if found is None else HostedInvoiceRow.from_record(found)


async def by_invoice(conn: Executor, invoice_id: str) -> HostedInvoiceRow | None:
    found = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM hosted_invoices WHERE invoice_id = $1", invoice_id
    )
    return None if found is None else HostedInvoiceRow.from_record(found)


async def stored_pdf(conn: Executor, invoice_id: str) -> bytes | None:
    value = await conn.fetchval("SELECT pdf FROM hosted_invoices WHERE invoice_id = $1", invoice_id)
    return None if value is None else bytes(value)


async def store_pdf(conn: Executor, invoice_id: str, pdf: bytes, now: datetime) -> bytes:
    """Store the invoice's PDF unless one is stored already (first writer wins), and return
    the stored one: two first downloads at once serve the same bytes."""
    stored = await conn.fetchval(
        "UPDATE hosted_invoices SET pdf = $2, pdf_rendered_at = $3"
        " WHERE invoice_id = $1 AND pdf IS NULL RETURNING pdf",
        invoice_id,
        pdf,
        now,
    )
    if stored is None:  # another download stored it first (read in a fresh snapshot)
        stored = await stored_pdf(conn, invoice_id)
    assert stored is not None
    return bytes(stored)
