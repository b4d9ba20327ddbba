"""Pure translation of Paystack settlements (``GET /settlement``) and their transactions
(``GET /settlement/{id}/transactions``) into paygrid's settlement types.

A settlement states its own totals: ``total_processed`` (what customers paid), ``total_fees``,
``deductions`` (refunds and chargebacks taken from it) and ``effective_amount`` (what reached
the bank). paygrid stores ``gross = total_processed - deductions``, ``fee = total_fees``,
``net = effective_amount``, and refuses a settlement where these do not balance. Its
transactions are the charges it paid out, each with its ``fees`` (the transaction's
``reference`` is paygrid's attempt id, which links it to the payment), and the refunds it
deducted (``GET /refund`` items naming it as their ``settlement``), negative and fee-free."""

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
from paygrid.domain.settlements import SettlementStatus, SettlementTransactionType, Totals

Json = Mapping[str, Any]


class PaystackSettlementStatus(StrEnum):
    SUCCESS = "success"
    PROCESSING = "processing"
    PENDING = "pending"
    FAILED = "failed"


def settlement_status(data: Json) -> SettlementStatus:
    raw = data.get("status")
    try:
        status = PaystackSettlementStatus(str(raw))
    except ValueError:
        raise MalformedSettlement(f"unmapped Paystack settlement status {raw!r}") from None
    match status:
        case PaystackSettlementStatus.SUCCESS:
            return SettlementStatus.PAID
        case PaystackSettlementStatus.PROCESSING:
            return SettlementStatus.IN_TRANSIT
        case PaystackSettlementStatus.PENDING:
            return SettlementStatus.PENDING
        case PaystackSettlementStatus.FAILED:
            return SettlementStatus.FAILED
        case _:
            assert_never(status)


def settlement(data: Json) -> ProviderSettlement:
    """One item of ``GET /settlement``'s ``data``."""
    net = _integer(data, "effective_amount")
    deductions = data.get("deductions")
    deducted = 0 if deductions is None else _integer(data, "deductions")
    return ProviderSettlement(
        provider_id=str(_integer(data, "id")),
        status=settlement_status(data),
        currency=_text(data, "currency").upper(),
        net=net,
        arrival_date=_time(data, "settlement_date"),
        created_at=_time(data, "createdAt"),
        totals=Totals(
            gross=_integer(data, "total_processed") - deducted,
            fee=_integer(data, "total_fees"),
            net=net,
        ),
    )


def settlement_transaction(data: Json) -> ProviderSettlementTransaction:
    """One item of ``GET /settlement/{id}/transactions``' ``data`` (a transaction, in the
    shape of ``GET /transaction``'s items)."""
    gross = _integer(data, "amount")
    fee = _integer(data, "fees")
    reference = _text(data, "reference")
    created = data.get("paid_at") or data.get("paidAt") or data.get("createdAt")
    return ProviderSettlementTransaction(
        provider_id=str(_integer(data, "id")),
        type=SettlementTransactionType.CHARGE,
        currency=_text(data, "currency").upper(),
        gross=gross,
        fee=fee,
        net=gross - fee,
        created_at=_parse_time(created, "paid_at"),
        source_id=reference,
        payment_reference=reference,
    )


def refund_transaction(data: Json) -> ProviderSettlementTransaction:
    """A refund a settlement deducted (an item of ``GET /refund``), as a negative transaction:
    Paystack charges no fee on refunds and returns none."""
    refund_id = _integer(data, "id")
    amount = _integer(data, "amount")
    reference = data.get("transaction_reference")
    return ProviderSettlementTransaction(
        provider_id=f"refund_{refund_id}",
        type=SettlementTransactionType.REFUND,
        currency=_text(data, "currency").upper(),
        gross=-amount,
        fee=0,
        net=-amount,
        created_at=_parse_time(data.get("refunded_at") or data.get("createdAt"), "refunded_at"),
        source_id=reference if isinstance(reference, str) and reference else None,
        refund_reference=str(refund_id),
    )


def deducted_by(data: Json, settlement_id: str) -> bool:
    """Whether a refund (an item of ``GET /refund``) was taken from this settlement."""
    settlement = data.get("settlement")
    return settlement is not None and str(settlement) == settlement_id


def refund_created_at(data: Json) -> datetime:
    return _time(data, "createdAt")


def settlement_page(envelope: Json) -> tuple[list[Json], int | None]:
    """A list page's items and the next page number (``None`` after the last page)."""
    data = envelope.get("data")
    if not isinstance(data, list):
        raise MalformedSettlement("a Paystack settlement list without a data array")
    items = [item for item in data if isinstance(item, Mapping)]
    meta = envelope.get("meta")
    next_page = None
    if isinstance(meta, Mapping):
        page, count = meta.get("page"), meta.get("pageCount")
        if isinstance(page, int) and isinstance(count, int) and page < count:
            next_page = page + 1
    return items, next_page


def _integer(data: Json, key: str) -> int:
    value = data.get(key)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedSettlement(f"Paystack sent a non-integer {key} ({value!r})")
    return value


def _text(data: Json, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedSettlement(f"Paystack sent no {key} (got {value!r})")
    return value


def _time(data: Json, key: str) -> datetime:
    return _parse_time(data.get(key), key)


def _parse_time(value: object, key: str) -> datetime:
    if not isinstance(value, str):
        raise MalformedSettlement(f"Paystack sent no {key} (got {value!r})")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedSettlement(f"Paystack sent an unreadable {key} ({value!r})") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
