"""Import one connector account's settlements: ask the provider for its recent payouts, store
each new one with its transactions in one transaction (linked to paygrid's payments and
refunds by provider reference), set the fee and net of the payments and refunds they settle,
and emit ``payment.fee_settled`` in that same transaction.

Idempotent: settlements and transactions are unique on the provider's ids, and a payment's
fee is set only while it has none, so a re-import stores nothing and emits nothing. A
settlement whose amounts do not balance (``gross - fee != net``, or totals that disagree
with the payout) is never stored: an import error is recorded instead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from paygrid.connectors.settlements import (
    MalformedSettlement,
    ProviderSettlement,
    ProviderSettlementTransaction,
    SettlementSource,
)
from paygrid.db import settlement_links as links_db
from paygrid.db import settlements as settlements_db
from paygrid.db.connector_accounts import ConnectorAccountRow
from paygrid.db.settlements import NewSettlement, NewSettlementTransaction
from paygrid.dependencies import Deps
from paygrid.domain.settlements import (
    LOOKBACK_DAYS,
    ImportErrorCode,
    inconsistency,
    settlement_totals,
)
from paygrid.services.settlements.fees import settle_fees
from paygrid.services.settlements.relinking import relink

log = structlog.get_logger("paygrid.settlements")


@dataclass(slots=True)
class ImportReport:
    settlements_imported: int = 0
    settlements_updated: int = 0  # a known payout whose status or arrival changed
    transactions_imported: int = 0
    fees_settled: int = 0  # payments whose fee became known (one payment.fee_settled each)
    errors: int = 0  # provider objects refused (settlement_import_errors)


async def import_account(
    deps: Deps, account: ConnectorAccountRow, since: datetime | None = None
) -> ImportReport:
    """Import what the account's provider settled since ``since`` (default: the lookback
    window). Raises ``ConnectorError`` when the provider cannot be asked (the job retries)."""
    report = ImportReport()
    connector = deps.connectors.from_row(account)
    if not isinstance(connector, SettlementSource):
        return report
    now = deps.clock.now()
    try:
        found = await connector.list_settlements(since or now - timedelta(days=LOOKBACK_DAYS))
    except MalformedSettlement as malformed:
        await _refuse(deps, account, "settlements", ImportErrorCode.MALFORMED, str(malformed))
        report.errors += 1
        return report
    for settlement in reversed(found):  # oldest first: fees settle in the order they came
        await _import_one(deps, connector, account, settlement, report)
    report.fees_settled += await relink(deps, account)
    if report.settlements_imported or report.settlements_updated or report.errors:
        log.info("settlements.imported", connector_account=account.id, **_fields(report))
    return report


async def _import_one(
    deps: Deps,
    connector: SettlementSource,
    account: ConnectorAccountRow,
    settlement: ProviderSettlement,
    report: ImportReport,
) -> None:
    now = deps.clock.now()
    known = await settlements_db.find_settlement(deps.pool, account.id, settlement.provider_id)
    if known is not None:
        if await settlements_db.update_status(
            deps.pool, known.id, settlement.status, settlement.arrival_date, now
        ):
            report.settlements_updated += 1
        return
    code = ImportErrorCode.AMOUNTS_INCONSISTENT
    problem: str | None
    try:
        transactions = await connector.settlement_transactions(settlement)
    except MalformedSettlement as malformed:
        code, problem, transactions = ImportErrorCode.MALFORMED, str(malformed), []
    else:
        problem = _problem(settlement, transactions)
    if problem is not None:
        await _refuse(deps, account, settlement.provider_id, code, problem)
        report.errors += 1
        return
    new = _new_settlement(account, settlement, transactions)
    linked = await _linked(deps, account, transactions)
    async with deps.pool.acquire() as conn, conn.transaction():
        settlement_id = await settlements_db.insert_settlement(conn, new, now)
        if settlement_id is None:  # a concurrent import stored it first
            return
        rows = await settlements_db.insert_transactions(conn, new, settlement_id, linked, now)
        report.settlements_imported += 1
        report.transactions_imported += len(rows)
        report.fees_settled += await settle_fees(conn, rows, now)


def _problem(
    settlement: ProviderSettlement, transactions: Sequence[ProviderSettlementTransaction]
) -> str | None:
    for item in transactions:
        if item.currency != settlement.currency:
            return (
                f"transaction {item.provider_id} is in {item.currency}, not {settlement.currency}"
            )
    return inconsistency(settlement.totals, settlement.net, transactions)


def _new_settlement(
    account: ConnectorAccountRow,
    settlement: ProviderSettlement,
    transactions: Sequence[ProviderSettlementTransaction],
) -> NewSettlement:
    amounts = settlement_totals(settlement.totals, transactions)
    times = [t.created_at for t in transactions]
    return NewSettlement(
        merchant_id=account.merchant_id,
        livemode=account.livemode,
        connector_account_id=account.id,
        provider=account.provider,
        provider_settlement_id=settlement.provider_id,
        status=settlement.status,
        currency=settlement.currency,
        gross=amounts.gross,
        fee=amounts.fee,
        net=amounts.net,
        transaction_count=len(transactions),
        period_start=min(times, default=None),
        period_end=max(times, default=None),
        arrival_date=settlement.arrival_date,
        provider_created_at=settlement.created_at,
    )


async def _linked(
    deps: Deps, account: ConnectorAccountRow, transactions: Sequence[ProviderSettlementTransaction]
) -> list[NewSettlementTransaction]:
    """The transactions with the paygrid payment or refund each moved money for."""
    scope = (deps.pool, account.merchant_id, account.livemode, account.id)
    payment_refs = [t.payment_reference for t in transactions if t.payment_reference]
    refund_refs = [t.refund_reference for t in transactions if t.refund_reference]
    payments = await links_db.payments_by_reference(*scope, payment_refs)
    refunds = await links_db.refunds_by_reference(*scope, refund_refs)
    return [
        NewSettlementTransaction(
            provider_transaction_id=t.provider_id,
            type=t.type,
            provider_source_id=t.source_id,
            provider_reference=t.payment_reference or t.refund_reference,
            payment_id=payments.get(t.payment_reference or ""),
            refund_id=refunds.get(t.refund_reference or ""),
            currency=t.currency,
            gross=t.gross,
            fee=t.fee,
            net=t.net,
            provider_created_at=t.created_at,
        )
        for t in transactions
    ]


async def _refuse(
    deps: Deps, account: ConnectorAccountRow, object_id: str, code: ImportErrorCode, why: str
) -> None:
    log.warning("settlements.refused", connector_account=account.id, object=object_id, reason=why)
    await settlements_db.insert_import_error(
        deps.pool,
        merchant_id=account.merchant_id,
        livemode=account.livemode,
        connector_account_id=account.id,
        provider_object_id=object_id,
        code=code,
        message=why,
        now=deps.clock.now(),
    )


def _fields(report: ImportReport) -> dict[str, int]:
    return {
        "settlements_imported": report.settlements_imported,
        "settlements_updated": report.settlements_updated,
        "transactions_imported": report.transactions_imported,
        "fees_settled": report.fees_settled,
        "errors": report.errors,
    }
