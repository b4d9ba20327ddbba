"""Settlements: what a provider paid out (a Stripe payout, a Paystack settlement) and the
balance transactions it is made of. Pure: the statuses, the transaction types, and the one
rule every amount obeys, ``gross - fee = net`` exactly in minor units.

Signs follow the provider's balance: a charge is positive, a refund negative (its ``gross``
is minus the refunded amount), a fee the provider keeps is positive ``fee``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol


class SettlementStatus(StrEnum):
    """Stripe's payout statuses; Paystack's settlement statuses map onto them."""

    PENDING = "pending"
    IN_TRANSIT = "in_transit"
    PAID = "paid"
    FAILED = "failed"
    CANCELED = "canceled"


class SettlementTransactionType(StrEnum):
    CHARGE = "charge"  # a payment's money coming in
    REFUND = "refund"  # money going back to a customer (negative)
    ADJUSTMENT = "adjustment"  # a provider-side correction (disputes, reversals ...)
    FEE = "fee"  # a fee charged on its own (not on a charge)
    OTHER = "other"  # a kind paygrid does not interpret; counted, never linked


class ImportErrorCode(StrEnum):
    """Why a provider's settlement was not stored (``settlement_import_errors``)."""

    AMOUNTS_INCONSISTENT = "amounts_inconsistent"  # gross - fee != net, or totals disagree
    MALFORMED = "malformed"  # a field paygrid needs is missing or of the wrong type


# A window the periodic import looks back over, so a payout's later status changes
# (pending -> in_transit -> paid) are picked up.
LOOKBACK_DAYS: Final = 35


class Amounts(Protocol):
    @property
    def gross(self) -> int: ...

    @property
    def fee(self) -> int: ...

    @property
    def net(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Totals:
    gross: int
    fee: int
    net: int


def balanced(amounts: Amounts) -> bool:
    """``gross - fee = net``, exactly."""
    return amounts.gross - amounts.fee == amounts.net


def totals(items: Sequence[Amounts]) -> Totals:
    return Totals(
        gross=sum(item.gross for item in items),
        fee=sum(item.fee for item in items),
        net=sum(item.net for item in items),
    )


def inconsistency(
    provider_totals: Totals | None, provider_net: int, transactions: Sequence[Amounts]
) -> str | None:
    """Why a settlement's amounts cannot be stored, or ``None`` when they are sound. With the
    provider's own totals (Paystack), those must balance; without them (a Stripe payout says
    only its net), the transactions' sums must add up to the payout."""
    for position, item in enumerate(transactions):
        if not balanced(item):
            return f"transaction {position}: gross {item.gross} - fee {item.fee} != net {item.net}"
    if provider_totals is not None:
        if not balanced(provider_totals):
            return (
                f"settlement: gross {provider_totals.gross} - fee {provider_totals.fee}"
                f" != net {provider_totals.net}"
            )
        if provider_totals.net != provider_net:
            return f"settlement: net {provider_totals.net} != paid out {provider_net}"
        return None
    summed = totals(transactions)
    if summed.net != provider_net:
        return f"settlement: the transactions' net {summed.net} != paid out {provider_net}"
    return None


def settlement_totals(provider_totals: Totals | None, transactions: Sequence[Amounts]) -> Totals:
    """The totals stored for a settlement: the provider's when it gives them, else the sums
    of its transactions."""
    return provider_totals if provider_totals is not None else totals(transactions)
