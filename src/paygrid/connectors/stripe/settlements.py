"""Pure translation of Stripe payouts and balance transactions into paygrid's settlement
types (``paygrid.connectors.settlements``). Unit-tested with Stripe's own fixtures.

A payout says only what it paid (``amount``); its gross and fee are the sums of the balance
transactions it carries (``GET /v1/balance_transactions?payout=po_...``), listed with
``expand[]=data.source`` so a charge names its PaymentIntent, which is what paygrid keeps as
an attempt's provider reference. The payout's own transaction (type ``payout``) is left out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, assert_never

from paygrid.connectors.settlements import (
    MalformedSettlement,
    ProviderSettlement,
    ProviderSettlementTransaction,
)
from paygrid.domain.settlements import SettlementStatus, SettlementTransactionType

Json = Mapping[str, Any]


class PayoutStatus(StrEnum):
    PAID = "paid"
    PENDING = "pending"
    IN_TRANSIT = "in_transit"
    CANCELED = "canceled"
    FAILED = "failed"


# Stripe has dozens of balance transaction types and adds more; the ones paygrid interprets
# are named here, every other is ``other`` (stored and counted, never linked).
_TYPES: dict[str, SettlementTransactionType] = {
    "charge": SettlementTransactionType.CHARGE,
    "payment": SettlementTransactionType.CHARGE,
    "refund": SettlementTransactionType.REFUND,
    "payment_refund": SettlementTransactionType.REFUND,
    "adjustment": SettlementTransactionType.ADJUSTMENT,
    "payment_failure_refund": SettlementTransactionType.ADJUSTMENT,
    "refund_failure": SettlementTransactionType.ADJUSTMENT,
    "payment_reversal": SettlementTransactionType.ADJUSTMENT,
    "stripe_fee": SettlementTransactionType.FEE,
    "application_fee": SettlementTransactionType.FEE,
    "tax_fee": SettlementTransactionType.FEE,
}
PAYOUT_TYPES = frozenset({"payout", "payout_cancel", "payout_failure"})


def settlement_status(payout: Json) -> SettlementStatus:
    """Stripe's payout status, exhaustively."""
    raw = payout.get("status")
    try:
        status = PayoutStatus(str(raw))
    except ValueError:
        raise MalformedSettlement(f"unmapped Stripe payout status {raw!r}") from None
    match status:
        case PayoutStatus.PAID:
            return SettlementStatus.PAID
        case PayoutStatus.PENDING:
            return SettlementStatus.PENDING
        case PayoutStatus.IN_TRANSIT:
            return SettlementStatus.IN_TRANSIT
        case PayoutStatus.CANCELED:
            return SettlementStatus.CANCELED
        case PayoutStatus.FAILED:
            return SettlementStatus.FAILED
        case _:
            assert_never(status)


def settlement(payout: Json) -> ProviderSettlement:
    """A Stripe payout."""
    return ProviderSettlement(
        provider_id=_text(payout, "id"),
        status=settlement_status(payout),
        currency=_text(payout, "currency").upper(),
        net=_integer(payout, "amount"),
        arrival_date=_time(payout, "arrival_date"),
        created_at=_time(payout, "created"),
    )


def is_payout_transfer(transaction: Json) -> bool:
    """The payout's own balance transaction (money leaving the balance for the bank)."""
    return transaction.get("type") in PAYOUT_TYPES


def settlement_transaction(transaction: Json) -> ProviderSettlementTransaction:
    """One balance transaction; ``source`` may be an id or, expanded, the object."""
    raw_type = _text(transaction, "type")
    kind = _TYPES.get(raw_type, SettlementTransactionType.OTHER)
    source = transaction.get("source")
    source_id = _source_id(source)
    payment_reference: str | None = None
    refund_reference: str | None = None
    if kind is SettlementTransactionType.CHARGE and isinstance(source, Mapping):
        payment_reference = _source_id(source.get("payment_intent"))
    if kind is SettlementTransactionType.REFUND and source_id is not None:
        refund_reference = source_id
    return ProviderSettlementTransaction(
        provider_id=_text(transaction, "id"),
        type=kind,
        currency=_text(transaction, "currency").upper(),
        gross=_integer(transaction, "amount"),
        fee=_integer(transaction, "fee"),
        net=_integer(transaction, "net"),
        created_at=_time(transaction, "created"),
        source_id=source_id,
        payment_reference=payment_reference,
        refund_reference=refund_reference,
    )


def _source_id(source: object) -> str | None:
    if isinstance(source, str) and source:
        return source
    if isinstance(source, Mapping) and isinstance(source.get("id"), str):
        return str(source["id"])
    return None


def _text(obj: Json, key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedSettlement(f"Stripe sent no {key} (got {value!r})")
    return value


def _integer(obj: Json, key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedSettlement(f"Stripe sent a non-integer {key} ({value!r})")
    return value


def _time(obj: Json, key: str) -> datetime:
    return datetime.fromtimestamp(_integer(obj, key), UTC)
