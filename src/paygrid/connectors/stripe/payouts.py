"""Reading Stripe payouts and their balance transactions with the official SDK, for the
settlement import (``paygrid.connectors.settlements``); every translation is in the pure
``settlements`` module. Reads only: any refusal is a ``ConnectorError``, and the import job
retries it."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Final, TypeVar

import stripe

from paygrid.connectors.base import ConnectorError, InvalidCredentials
from paygrid.connectors.settlements import ProviderSettlement, ProviderSettlementTransaction
from paygrid.connectors.stripe import mapping
from paygrid.connectors.stripe import settlements as settlement_mapping

T = TypeVar("T")
PAGE_SIZE: Final = 100


async def list_payouts(client: stripe.StripeClient, since: datetime) -> list[ProviderSettlement]:
    """Payouts created at or after ``since`` (``GET /v1/payouts``), newest first."""
    found: list[ProviderSettlement] = []
    after: str | None = None
    while True:
        page = await read(
            client.v1.payouts.list_async(
                {
                    "limit": PAGE_SIZE,
                    "created": {"gte": int(since.timestamp())},
                    **({"starting_after": after} if after else {}),
                }
            )
        )
        found.extend(settlement_mapping.settlement(p.to_dict()) for p in page.data)
        if not page.has_more or not page.data:
            return found
        after = page.data[-1].id


async def payout_transactions(
    client: stripe.StripeClient, settlement: ProviderSettlement
) -> list[ProviderSettlementTransaction]:
    """The payout's balance transactions, each charge's source expanded to name its
    PaymentIntent (``GET /v1/balance_transactions?payout=``); its own transfer left out."""
    found: list[ProviderSettlementTransaction] = []
    after: str | None = None
    while True:
        page = await read(
            client.v1.balance_transactions.list_async(
                {
                    "payout": settlement.provider_id,
                    "limit": PAGE_SIZE,
                    "expand": ["data.source"],
                    **({"starting_after": after} if after else {}),
                }
            )
        )
        rows = [t.to_dict() for t in page.data]
        found.extend(
            settlement_mapping.settlement_transaction(row)
            for row in rows
            if not settlement_mapping.is_payout_transfer(row)
        )
        if not page.has_more or not page.data:
            return found
        after = page.data[-1].id


async def read(request: Awaitable[T], purpose: str = "settlement") -> T:
    """One SDK read (of a settlement, or of ``purpose``); transport failures classified as
    every Stripe call's are."""
    try:
        return await request
    except stripe.AuthenticationError as error:
        raise InvalidCredentials("Stripe rejected the secret key") from error
    except stripe.StripeError as error:
        failure = mapping.transport_failure(error)
        if failure is not None:
            raise failure from error
        raise ConnectorError(f"Stripe refused a {purpose} read: {error.code}") from error
