"""The settlement side of the connector contract: what a provider paid out and the balance
transactions each payout is made of, in our types. Connectors of providers that settle
(Stripe, Paystack) implement ``SettlementSource``; the mapping from their payloads is pure
and lives in each provider package."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from paygrid.connectors.base import ConnectorError
from paygrid.domain.settlements import SettlementStatus, SettlementTransactionType, Totals


@dataclass(frozen=True, slots=True)
class ProviderSettlementTransaction:
    """One balance transaction of a settlement, as the provider reports it (minor units,
    signed as in the balance)."""

    provider_id: str  # the provider's id of the balance transaction (txn_..., Paystack id)
    type: SettlementTransactionType
    currency: str  # ISO 4217, upper case
    gross: int
    fee: int
    net: int
    created_at: datetime
    source_id: str | None = None  # what moved the money at the provider: ch_..., re_...
    # What paygrid stores for the money movement, to link it: an authorize attempt's
    # ``provider_reference`` (Stripe's PaymentIntent, Paystack's transaction reference) ...
    payment_reference: str | None = None
    # ... or a refund's ``provider_reference`` (Stripe's re_..., Paystack's refund id).
    refund_reference: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderSettlement:
    """One payout to the merchant's bank account."""

    provider_id: str
    status: SettlementStatus
    currency: str  # ISO 4217, upper case
    net: int  # what was (or will be) paid out
    arrival_date: datetime
    created_at: datetime
    # The provider's own gross, fee and net, when it states them (Paystack); a Stripe
    # payout states only its amount, and its totals are its transactions' sums.
    totals: Totals | None = None


class MalformedSettlement(ConnectorError):
    """The provider's settlement data lacks a field paygrid needs, or has the wrong type."""


@runtime_checkable
class SettlementSource(Protocol):
    """A connector that can list its provider's settlements."""

    async def list_settlements(self, since: datetime) -> list[ProviderSettlement]:
        """Every settlement created at or after ``since``, newest first. Raises
        ``MalformedSettlement`` for data it cannot read, ``ConnectorError`` otherwise."""
        ...

    async def settlement_transactions(
        self, settlement: ProviderSettlement
    ) -> list[ProviderSettlementTransaction]:
        """Every balance transaction of ``settlement`` (the payout's own transfer excluded)."""
        ...
