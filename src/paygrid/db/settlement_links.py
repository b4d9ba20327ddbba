"""How imported settlement transactions find paygrid's payments and refunds (by the provider
reference paygrid stored for them, within one merchant, mode and connector account) and how
a payment's or refund's fee is set once, when it becomes known."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from paygrid.db.connector_accounts import ConnectorAccountRow
from paygrid.db.executor import Connection, Executor
from paygrid.db.payments import PaymentRow


async def payments_by_reference(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    connector_account_id: str,
    references: Sequence[str],
) -> dict[str, str]:
    """Provider reference -> payment id, for the authorize attempts made at this account
    (``payment_attempts_by_provider_reference`` keeps it an index lookup)."""
    if not references:
        return {}
    records = await conn.fetch(
        "SELECT DISTINCT a.provider_reference, a.payment_id FROM payment_attempts a"
        " JOIN payments p ON p.id = a.payment_id"
        " WHERE a.provider_reference = ANY($4::text[]) AND a.operation = 'authorize'"
        " AND a.connector_account_id = $3 AND p.merchant_id = $1 AND p.livemode = $2",
        merchant_id,
        livemode,
        connector_account_id,
        list(references),
    )
    return {r["provider_reference"]: r["payment_id"] for r in records}


async def refunds_by_reference(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    connector_account_id: str,
    references: Sequence[str],
) -> dict[str, str]:
    """Provider refund id -> refund id, for refunds of payments made at this account."""
    if not references:
        return {}
    records = await conn.fetch(
        "SELECT r.provider_reference, r.id FROM refunds r JOIN payments p ON p.id = r.payment_id"
        " WHERE r.provider_reference = ANY($4::text[]) AND r.merchant_id = $1"
        " AND r.livemode = $2 AND p.connector_account_id = $3",
        merchant_id,
        livemode,
        connector_account_id,
        list(references),
    )
    return {r["provider_reference"]: r["id"] for r in records}


async def settle_payment_fee(
    conn: Connection, payment_id: str, currency: str, fee: int, net: int, now: datetime
) -> PaymentRow | None:
    """Set a payment's fee and net the first time they are known, in its own currency; the
    updated payment, or ``None`` when it already had them (or settled in another currency)."""
    record = await conn.fetchrow(
        "UPDATE payments SET fee = $3, net = $4, updated_at = $5"
        " WHERE id = $1 AND fee IS NULL AND currency = $2 RETURNING *",
        payment_id,
        currency,
        fee,
        net,
        now,
    )
    return None if record is None else PaymentRow.from_record(record)


async def settle_refund_fee(
    conn: Connection, refund_id: str, currency: str, fee: int, net: int
) -> bool:
    """Set a refund's fee and net (signed as in the balance) the first time they are known."""
    updated = await conn.fetchval(
        "UPDATE refunds SET fee = $3, net = $4"
        " WHERE id = $1 AND fee IS NULL AND currency = $2 RETURNING id",
        refund_id,
        currency,
        fee,
        net,
    )
    return updated is not None


async def accounts_to_import(conn: Executor, providers: Sequence[str]) -> list[ConnectorAccountRow]:
    """Enabled connector accounts, live and test, of providers that settle."""
    records = await conn.fetch(
        "SELECT * FROM connector_accounts WHERE status = 'enabled'"
        " AND provider = ANY($1::text[]) ORDER BY id",
        list(providers),
    )
    return [ConnectorAccountRow.from_record(r) for r in records]
