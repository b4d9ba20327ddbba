"""Pure translation of Stripe's lists into what reconciliation compares: PaymentIntents
(``GET /v1/payment_intents``), refunds (``GET /v1/refunds``) and the fees stated on charges'
balance transactions (``GET /v1/balance_transactions?type=charge``).

A PaymentIntent's id is what paygrid keeps as the authorize attempt's provider reference;
its ``metadata.paygrid_attempt_id`` names the attempt, so an attempt whose create timed out
(no reference stored) is still matched. Its fee is the ``fee`` of its latest charge's
balance transaction, when Stripe has made one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import assert_never

from paygrid.connectors.base import ConnectorError
from paygrid.connectors.stripe.mapping import (
    ATTEMPT_METADATA_KEY,
    IDEMPOTENCY_METADATA_KEY,
    REFUND_ID_METADATA_KEY,
    IntentStatus,
    Json,
    RefundStatus,
    status_of,
)
from paygrid.domain.reconciliation import (
    ChargeState,
    ProviderCharge,
    ProviderRefund,
    RefundState,
)


class MalformedListItem(ConnectorError):
    """Stripe sent a list item without a field reconciliation needs."""


def charge_state(status: IntentStatus) -> ChargeState:
    """A PaymentIntent's status, exhaustively. An uncaptured authorization counts as paid:
    paygrid's ``authorized`` attempt agrees with it (money is held, not yet captured)."""
    match status:
        case IntentStatus.SUCCEEDED | IntentStatus.REQUIRES_CAPTURE:
            return ChargeState.SUCCEEDED
        case IntentStatus.PROCESSING:
            return ChargeState.PROCESSING
        case IntentStatus.REQUIRES_ACTION | IntentStatus.REQUIRES_CONFIRMATION:
            return ChargeState.REQUIRES_ACTION
        case IntentStatus.REQUIRES_PAYMENT_METHOD | IntentStatus.CANCELED:
            # Declined (a failed confirm puts it back here) or abandoned: no money moved.
            return ChargeState.FAILED
        case _:
            assert_never(status)


def refund_state(status: RefundStatus) -> RefundState:
    """A Refund's status, exhaustively: pending and requires_action may still fail."""
    match status:
        case RefundStatus.SUCCEEDED:
            return RefundState.SUCCEEDED
        case RefundStatus.PENDING | RefundStatus.REQUIRES_ACTION:
            return RefundState.PENDING
        case RefundStatus.FAILED | RefundStatus.CANCELED:
            return RefundState.FAILED
        case _:
            assert_never(status)


def charge(intent: Json, fees: Mapping[str, int]) -> ProviderCharge:
    """One PaymentIntent; ``fees`` maps a charge id to its balance transaction's fee."""
    state = charge_state(status_of(IntentStatus, intent))
    received = _integer(intent, "amount_received", default=0)
    amount = received if received > 0 else _integer(intent, "amount")
    metadata = intent.get("metadata")
    attempt = metadata.get(ATTEMPT_METADATA_KEY) if isinstance(metadata, Mapping) else None
    latest = _id_of(intent.get("latest_charge"))
    return ProviderCharge(
        reference=_text(intent, "id"),
        state=state,
        amount=amount,
        currency=_text(intent, "currency").upper(),
        fee=fees.get(latest) if latest is not None else None,
        created=_integer(intent, "created"),
        attempt_id=attempt if isinstance(attempt, str) and attempt else None,
    )


def refund(item: Json, intent_of_charge: Mapping[str, str]) -> ProviderRefund | None:
    """One refund, by the PaymentIntent it refunds (named, or found through its charge);
    ``None`` for a refund of a charge with no PaymentIntent (not paygrid's kind)."""
    intent = _id_of(item.get("payment_intent"))
    if intent is None:
        charge_id = _id_of(item.get("charge"))
        intent = intent_of_charge.get(charge_id) if charge_id is not None else None
    if intent is None:
        return None
    metadata = item.get("metadata")
    tags = metadata if isinstance(metadata, Mapping) else {}
    refund_id, key = tags.get(REFUND_ID_METADATA_KEY), tags.get(IDEMPOTENCY_METADATA_KEY)
    return ProviderRefund(
        reference=_text(item, "id"),
        charge_reference=intent,
        amount=_integer(item, "amount"),
        currency=_text(item, "currency").upper(),
        state=refund_state(status_of(RefundStatus, item)),
        created=_integer(item, "created"),
        refund_id=refund_id if isinstance(refund_id, str) and refund_id.startswith("re_") else None,
        idempotency_key=key if isinstance(key, str) else None,
    )


def charge_fees(transactions: Sequence[Json]) -> dict[str, int]:
    """Charge id -> fee, from balance transactions of type ``charge`` (others ignored)."""
    fees: dict[str, int] = {}
    for transaction in transactions:
        source = _id_of(transaction.get("source"))
        if transaction.get("type") == "charge" and source is not None:
            fees[source] = _integer(transaction, "fee")
    return fees


def intents_by_charge(intents: Sequence[Json]) -> dict[str, str]:
    """Latest charge id -> PaymentIntent id, to place refunds that name only the charge."""
    found: dict[str, str] = {}
    for intent in intents:
        latest = _id_of(intent.get("latest_charge"))
        if latest is not None:
            found[latest] = _text(intent, "id")
    return found


def _id_of(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _text(obj: Json, key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedListItem(f"Stripe sent no {key} (got {value!r})")
    return value


def _integer(obj: Json, key: str, *, default: int | None = None) -> int:
    value = obj.get(key)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedListItem(f"Stripe sent a non-integer {key} ({value!r})")
    return value
