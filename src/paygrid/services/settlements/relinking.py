"""Linking transactions stored before paygrid knew their payment or refund: a charge whose
attempt's provider reference arrived after the payout was imported (status sync found the
PaymentIntent of a timed-out create). Each import of the account retries them, sets the
fees they settle and emits ``payment.fee_settled``, once."""

from __future__ import annotations

from typing import Final

from paygrid.db import settlement_links as links_db
from paygrid.db import settlements as settlements_db
from paygrid.db.connector_accounts import ConnectorAccountRow
from paygrid.dependencies import Deps
from paygrid.domain.settlements import SettlementTransactionType
from paygrid.services.settlements.fees import settle_fees

BATCH: Final = 500
CHARGE: Final = SettlementTransactionType.CHARGE
REFUND: Final = SettlementTransactionType.REFUND


async def relink(deps: Deps, account: ConnectorAccountRow) -> int:
    """Link what can be linked now; returns how many payments' fees became known."""
    waiting = await settlements_db.unlinked(deps.pool, account.id, BATCH)
    if not waiting:
        return 0
    scope = (deps.pool, account.merchant_id, account.livemode, account.id)
    charges = [t.provider_reference or "" for t in waiting if t.type is CHARGE]
    refunds = [t.provider_reference or "" for t in waiting if t.type is REFUND]
    payments = await links_db.payments_by_reference(*scope, charges)
    refunds_found = await links_db.refunds_by_reference(*scope, refunds)
    settled = 0
    for row in waiting:
        reference = row.provider_reference or ""
        payment_id = payments.get(reference) if row.type is CHARGE else None
        refund_id = refunds_found.get(reference) if row.type is REFUND else None
        if payment_id is None and refund_id is None:
            continue
        async with deps.pool.acquire() as conn, conn.transaction():
            linked = await settlements_db.link(conn, row.id, payment_id, refund_id)
            if linked is not None:
                settled += await settle_fees(conn, [linked], deps.clock.now())
    return settled
