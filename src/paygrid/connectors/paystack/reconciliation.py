"""Pure translation of Paystack's transaction list (``GET /transaction``) and refund list
(``GET /refund``) into what reconciliation compares. A transaction's ``reference`` is
paygrid's attempt id; its ``fees`` is the fee Paystack states for it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import assert_never

from paygrid.connectors.paystack import mapping, refund_notes
from paygrid.connectors.paystack.mapping import Json, RefundStatus, TransactionStatus
from paygrid.domain.reconciliation import (
    ChargeState,
    ProviderCharge,
    ProviderRefund,
    RefundState,
)


def charge_state(status: TransactionStatus) -> ChargeState:
    match status:
        case TransactionStatus.SUCCESS:
            return ChargeState.SUCCEEDED
        case TransactionStatus.REVERSED:
            return ChargeState.REVERSED
        case TransactionStatus.FAILED:
            return ChargeState.FAILED
        case TransactionStatus.PENDING | TransactionStatus.PROCESSING | TransactionStatus.QUEUED:
            return ChargeState.PROCESSING
        case (
            TransactionStatus.ABANDONED
            | TransactionStatus.ONGOING
            | TransactionStatus.SEND_PIN
            | TransactionStatus.SEND_OTP
            | TransactionStatus.SEND_PHONE
            | TransactionStatus.SEND_BIRTHDAY
            | TransactionStatus.SEND_ADDRESS
            | TransactionStatus.OPEN_URL
            | TransactionStatus.PAY_OFFLINE
        ):
            return ChargeState.REQUIRES_ACTION
        case _:
            assert_never(status)


def refund_state(status: RefundStatus) -> RefundState:
    """A refund's status, exhaustively (as ``mapping`` reads a refund call's answer):
    Paystack keeps refunds pending or processing for days before they are processed."""
    match status:
        case RefundStatus.PROCESSED:
            return RefundState.SUCCEEDED
        case RefundStatus.PENDING | RefundStatus.PROCESSING | RefundStatus.NEEDS_ATTENTION:
            return RefundState.PENDING
        case RefundStatus.FAILED:
            return RefundState.FAILED
        case _:
            assert_never(status)


def charge(item: Json) -> ProviderCharge:
    """One item of ``GET /transaction``'s ``data``."""
    fees = item.get("fees")
    return ProviderCharge(
        reference=mapping._text(item, "reference"),
        state=charge_state(mapping._status(TransactionStatus, item)),
        amount=mapping.amount(item),
        currency=mapping._text(item, "currency").upper(),
        fee=fees if isinstance(fees, int) and not isinstance(fees, bool) else None,
        created=unix(item.get("createdAt") or item.get("created_at")),
    )


def refund(item: Json) -> ProviderRefund | None:
    """One item of ``GET /refund``'s ``data``; ``None`` without a transaction reference.
    A refund paygrid made names its refund id and the merchant's key in its
    ``merchant_note`` (``refund_notes``), which ``paygrid restore`` re-imports it under."""
    reference = item.get("transaction_reference")
    if not isinstance(reference, str) or not reference:
        return None
    note = refund_notes.read_refund_note(item.get("merchant_note"))
    return ProviderRefund(
        reference=str(mapping._identifier(item)),
        charge_reference=reference,
        amount=mapping.amount(item),
        currency=mapping._text(item, "currency").upper(),
        state=refund_state(mapping._status(RefundStatus, item)),
        created=unix(item.get("createdAt")),
        refund_id=note.refund_id,
        idempotency_key=note.idempotency_key,
    )


def unix(value: object) -> int:
    """An ISO 8601 time as Unix seconds; an unreadable one is raised as Paystack's error."""
    if not isinstance(value, str):
        raise mapping.UnexpectedResponse(f"Paystack sent no creation time (got {value!r})")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise mapping.UnexpectedResponse(f"Paystack sent an unreadable time {value!r}") from None
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


def page(envelope: Json) -> tuple[list[Json], int | None]:
    """A list page's items and the next page number (``None`` after the last)."""
    data = envelope.get("data")
    if not isinstance(data, list):
        raise mapping.UnexpectedResponse("a Paystack list without a data array")
    items: list[Json] = [item for item in data if isinstance(item, dict)]
    meta = envelope.get("meta")
    next_page = None
    if isinstance(meta, dict):
        number, count = mapping._as_int(meta.get("page")), mapping._as_int(meta.get("pageCount"))
        if number is not None and count is not None and number < count:
            next_page = number + 1
    return items, next_page
