"""The bulk reads a reconciliation run compares with the provider: one connector account's
authorize attempts and refunds of a window, always scoped by merchant, mode and account, as
the pure matcher's rows. One statement per side, so a window of 100,000 payments is read
in one pass (index ``payments_by_created``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import asyncpg

from paygrid.db.connector_accounts import ConnectorAccountRow
from paygrid.db.executor import Executor
from paygrid.domain.payments import AttemptStatus, PaymentStatus
from paygrid.domain.reconciliation import PaygridCharge, PaygridRefund
from paygrid.domain.refunds import RefundStatus

# A Paystack attempt's reference is its own id until the provider's answer is stored.
_CHARGES: Final = (
    "SELECT p.id AS payment_id, a.id AS attempt_id,"
    " coalesce(a.provider_reference, a.id) AS reference, a.status AS attempt_status,"
    " p.status AS payment_status,"
    " CASE WHEN p.amount_received > 0 THEN p.amount_received ELSE p.amount END AS amount,"
    " p.currency, p.fee"
    " FROM payments p JOIN payment_attempts a ON a.payment_id = p.id"
    " AND a.operation = 'authorize' AND a.connector_account_id = $3"
    " WHERE p.merchant_id = $1 AND p.livemode = $2"
)


def _charge(record: asyncpg.Record) -> PaygridCharge:
    return PaygridCharge(
        payment_id=record["payment_id"],
        attempt_id=record["attempt_id"],
        reference=record["reference"],
        attempt_status=AttemptStatus(record["attempt_status"]),
        payment_status=PaymentStatus(record["payment_status"]),
        amount=record["amount"],
        currency=record["currency"].strip().upper(),
        fee=record["fee"],
    )


async def charges_in_window(
    conn: Executor, account: ConnectorAccountRow, start: datetime, end: datetime
) -> list[PaygridCharge]:
    """The account's payments created in [start, end), one row per authorize attempt."""
    records = await conn.fetch(
        # The merchant's payments of the window (``payments_by_created``), those whose own
        # account (their latest attempt's) is this one; an earlier attempt here of a payment
        # that failed over is found by reference.
        _CHARGES + " AND p.connector_account_id = $3 AND p.created_at >= $4 AND p.created_at < $5",
        account.merchant_id,
        account.livemode,
        account.id,
        start,
        end,
    )
    return [_charge(r) for r in records]


async def charges_by_reference(
    conn: Executor, account: ConnectorAccountRow, references: Sequence[str]
) -> list[PaygridCharge]:
    """The account's attempts (of any time, whichever account the payment ended at) with
    one of these references."""
    if not references:
        return []
    records = await conn.fetch(
        _CHARGES + " AND coalesce(a.provider_reference, a.id) = ANY($4::text[])",
        account.merchant_id,
        account.livemode,
        account.id,
        list(references),
    )
    return [_charge(r) for r in records]


async def refunds_in_window(
    conn: Executor, account: ConnectorAccountRow, start: datetime, end: datetime
) -> list[PaygridRefund]:
    """The refunds of the account's payments created in [start, end)."""
    records = await conn.fetch(
        "SELECT r.id, r.payment_id, r.provider_reference, r.amount, r.status FROM refunds r"
        " JOIN payments p ON p.id = r.payment_id"
        " WHERE r.merchant_id = $1 AND r.livemode = $2 AND p.connector_account_id = $3"
        " AND r.created_at >= $4 AND r.created_at < $5",
        account.merchant_id,
        account.livemode,
        account.id,
        start,
        end,
    )
    return [_refund(r) for r in records]


async def refunds_by_id(
    conn: Executor, account: ConnectorAccountRow, refund_ids: Sequence[str]
) -> dict[str, PaygridRefund]:
    """The account's merchant's refunds (of payments at this account) with these ids: the
    ones provider refunds name. Another merchant's refund is never read."""
    if not refund_ids:
        return {}
    records = await conn.fetch(
        "SELECT r.id, r.payment_id, r.provider_reference, r.amount, r.status FROM refunds r"
        " JOIN payments p ON p.id = r.payment_id"
        " WHERE r.merchant_id = $1 AND r.livemode = $2 AND p.connector_account_id = $3"
        " AND r.id = ANY($4::text[])",
        account.merchant_id,
        account.livemode,
        account.id,
        list(refund_ids),
    )
    return {r["id"]: _refund(r) for r in records}


def _refund(record: asyncpg.Record) -> PaygridRefund:
    status = RefundStatus(record["status"])
    return PaygridRefund(
        refund_id=record["id"],
        payment_id=record["payment_id"],
        reference=record["provider_reference"],
        amount=record["amount"],
        succeeded=status is RefundStatus.SUCCEEDED,
        pending=status is RefundStatus.PENDING,
    )


async def known_refund_references(
    conn: Executor, account: ConnectorAccountRow, references: Sequence[str]
) -> set[str]:
    """Which of these provider refund ids the account's refunds (of any time) carry."""
    if not references:
        return set()
    records = await conn.fetch(
        "SELECT r.provider_reference FROM refunds r JOIN payments p ON p.id = r.payment_id"
        " WHERE r.merchant_id = $1 AND r.livemode = $2 AND p.connector_account_id = $3"
        " AND r.provider_reference = ANY($4::text[])",
        account.merchant_id,
        account.livemode,
        account.id,
        list(references),
    )
    return {r["provider_reference"] for r in records}


async def daily_accounts(conn: Executor, providers: Sequence[str]) -> list[tuple[str, str]]:
    """Enabled live accounts of providers that can be reconciled, with their merchant's
    time zone."""
    records = await conn.fetch(
        "SELECT a.id, m.timezone FROM connector_accounts a JOIN merchants m"
        " ON m.id = a.merchant_id WHERE a.status = 'enabled' AND a.livemode"
        " AND a.provider = ANY($1::text[]) ORDER BY a.id",
        list(providers),
    )
    return [(r["id"], r["timezone"]) for r in records]
