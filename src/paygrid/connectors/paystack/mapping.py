"""Pure translation of Paystack's JSON into our connector types. No I/O.

Paystack answers with an envelope ``{status, message, data}``. Transaction and refund statuses
are matched exhaustively; an unknown status raises ``UnexpectedResponse`` instead of guessing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeVar, assert_never

from paygrid.connectors.base import (
    AttemptResult,
    ConnectorError,
    Decline,
    OperationResult,
    OutcomeUnknown,
    ProviderEvent,
    TokenizedCard,
)
from paygrid.domain.payments import AttemptOutcome

Json = Mapping[str, Any]
_Status = TypeVar("_Status", bound=StrEnum)


class UnexpectedResponse(OutcomeUnknown):
    """Paystack answered with a shape or status this connector does not know."""


class EmailRequired(ConnectorError):
    """Paystack needs the customer's email to create a transaction; none was given."""


class UnsupportedChannel(ConnectorError):
    """A payment channel Paystack does not offer was requested."""


class UnsupportedOperation(ConnectorError):
    """Paystack has no manual capture and no void."""


class TransactionStatus(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    REVERSED = "reversed"
    ABANDONED = "abandoned"
    ONGOING = "ongoing"
    PENDING = "pending"
    PROCESSING = "processing"
    QUEUED = "queued"
    SEND_PIN = "send_pin"
    SEND_OTP = "send_otp"
    SEND_PHONE = "send_phone"
    SEND_BIRTHDAY = "send_birthday"
    SEND_ADDRESS = "send_address"
    OPEN_URL = "open_url"
    PAY_OFFLINE = "pay_offline"


class RefundStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    NEEDS_ATTENTION = "needs-attention"
    PROCESSED = "processed"
    FAILED = "failed"


# Our channel names are Paystack's; the table is the allow-list.
CHANNELS: Final[dict[str, str]] = {
    name: name for name in ("card", "bank", "ussd", "mobile_money", "bank_transfer", "qr")
}

# Paystack's gateway_response is free text from the issuer or switch. The issuer answers
# Paystack reports (ISO 8583 response texts, and Paystack's own for its fraud checks) map to
# our code and Stripe's decline_code, so that dunning classifies them as it does Stripe's;
# they are compared without case, spaces or punctuation.
_GATEWAY_DECLINES: Final[dict[str, tuple[str, str]]] = {
    "declined": ("card_declined", "generic_decline"),
    "insufficient funds": ("insufficient_funds", "insufficient_funds"),
    "not sufficient funds": ("insufficient_funds", "insufficient_funds"),
    "expired card": ("expired_card", "expired_card"),
    "do not honor": ("card_declined", "do_not_honor"),
    "do not honour": ("card_declined", "do_not_honor"),
    "access denied": ("card_declined", "do_not_honor"),
    "stolen card pick up": ("card_declined", "stolen_card"),
    "stolen card": ("card_declined", "stolen_card"),
    "lost card pick up": ("card_declined", "lost_card"),
    "lost card": ("card_declined", "lost_card"),
    "pick up card": ("card_declined", "pickup_card"),
    "pick up card special condition": ("card_declined", "pickup_card"),
    "suspected fraud": ("card_declined", "fraudulent"),
    "denied by fraud system": ("card_declined", "fraudulent"),
    "blocked by fraud system": ("card_declined", "fraudulent"),
    "invalid card number": ("card_declined", "invalid_account"),
    "invalid account": ("card_declined", "invalid_account"),
    "account closed": ("card_declined", "invalid_account"),
    "no such issuer": ("card_declined", "invalid_account"),
    "restricted card": ("card_declined", "card_not_supported"),
    "transaction not permitted to cardholder": ("card_declined", "card_not_supported"),
    "transaction not permitted to card holder": ("card_declined", "card_not_supported"),
    "issuer or switch inoperative": ("card_declined", "issuer_not_available"),
    "issuer not available": ("card_declined", "issuer_not_available"),
    "try again later": ("card_declined", "try_again_later"),
    "unable to process transaction": ("processing_error", "processing_error"),
    "system malfunction": ("processing_error", "processing_error"),
}
# Any other text: the first matching keyword decides our decline code; else a plain
# card_declined.
_DECLINE_KEYWORDS: Final[tuple[tuple[str, str], ...]] = (
    ("insufficient", "insufficient_funds"),
    ("expired", "expired_card"),
    ("cvv", "incorrect_cvc"),
    ("cvc", "incorrect_cvc"),
    ("pin", "authentication_failed"),
    ("otp", "authentication_failed"),
    ("token", "authentication_failed"),
    ("timeout", "processing_error"),
    ("timed out", "processing_error"),
    ("inoperative", "processing_error"),
    ("malfunction", "processing_error"),
    ("unavailable", "processing_error"),
    ("error", "processing_error"),
)


def payment_channels(channels: tuple[str, ...]) -> list[str]:
    """Paystack's ``channels[]`` for ours; raises ``UnsupportedChannel`` on an unknown one."""
    try:
        return [CHANNELS[name] for name in channels]
    except KeyError as error:
        raise UnsupportedChannel(f"Paystack does not offer the channel {error.args[0]!r}") from None


PAYMENT_METADATA_KEY = "paygrid_payment_id"
ATTEMPT_METADATA_KEY = "paygrid_attempt_id"
IDEMPOTENCY_METADATA_KEY = "paygrid_idempotency_key"


def paygrid_metadata(
    payment_id: str, attempt_id: str, idempotency_key: str | None
) -> dict[str, str]:
    """What a transaction carries of ours: the payment, the attempt and the merchant's
    Idempotency-Key (what ``paygrid restore`` re-imports a charge under)."""
    metadata = {PAYMENT_METADATA_KEY: payment_id, ATTEMPT_METADATA_KEY: attempt_id}
    if idempotency_key is not None:
        metadata[IDEMPOTENCY_METADATA_KEY] = idempotency_key
    return metadata


def initialize_body(
    *,
    reference: str,
    email: str,
    amount: int,
    currency: str,
    channels: tuple[str, ...],
    callback_url: str,
    payment_id: str,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """The JSON for ``POST /transaction/initialize``."""
    body: dict[str, Any] = {
        "reference": reference,
        "email": email,
        "amount": amount,
        "currency": currency,
        "callback_url": callback_url,
        "metadata": paygrid_metadata(payment_id, reference, idempotency_key),
    }
    if channels:
        body["channels"] = payment_channels(channels)
    return body


def charge_authorization_body(
    *,
    reference: str,
    email: str,
    amount: int,
    currency: str,
    authorization_code: str,
    payment_id: str,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """The JSON for ``POST /transaction/charge_authorization``; here Paystack's spec types
    ``metadata`` as a string (stringified JSON), unlike initialize's object."""
    metadata = paygrid_metadata(payment_id, reference, idempotency_key)
    return {
        "reference": reference,
        "email": email,
        "amount": amount,
        "currency": currency,
        "authorization_code": authorization_code,
        "metadata": json.dumps(metadata, separators=(",", ":")),
    }


def envelope_data(envelope: Json) -> Json:
    """``data`` of a successful envelope, or ``UnexpectedResponse``."""
    data = envelope.get("data")
    if envelope.get("status") is not True or not isinstance(data, Mapping):
        raise UnexpectedResponse(f"Paystack returned an unexpected envelope: {message(envelope)}")
    return data


def message(envelope: Json) -> str:
    text = envelope.get("message")
    return text if isinstance(text, str) and text else "no message"


def is_duplicate_reference(envelope: Json) -> bool:
    return envelope.get("status") is False and "duplicate" in message(envelope).lower()


def initialize_result(envelope: Json) -> AttemptResult:
    """A created transaction: the customer must finish on Paystack's hosted page."""
    data = envelope_data(envelope)
    return AttemptResult(
        AttemptOutcome.REQUIRES_ACTION,
        _text(data, "reference"),
        redirect_url=_text(data, "authorization_url"),
    )


def rejected_request(envelope: Json) -> AttemptResult:
    """Paystack refused to create the charge (validation): nothing was charged."""
    code = envelope.get("code")
    return AttemptResult(
        AttemptOutcome.DECLINED,
        None,
        decline=Decline(
            "processing_error", message(envelope), code if isinstance(code, str) else None
        ),
    )


def transaction_result(data: Json) -> AttemptResult:
    """Map a transaction (verify, charge_authorization, charge.success) to an attempt result.

    ``abandoned`` is Paystack's name for an initialized transaction nobody has paid yet: the
    hosted page still accepts payment, so the customer still has to act. ``ongoing`` and the
    ``send_*``/``open_url``/``pay_offline`` steps wait on the customer too. ``pending``,
    ``processing`` and ``queued`` wait on Paystack or the bank, so the outcome is unknown
    until a later sync or webhook.
    """
    reference = _text(data, "reference")
    channel = _optional_text(data, "channel")
    status = _status(TransactionStatus, data)
    match status:
        case TransactionStatus.SUCCESS:
            return AttemptResult(
                AttemptOutcome.CAPTURED,
                reference,
                saved_method=saved_method(data.get("authorization")),
                channel=channel,
            )
        case TransactionStatus.FAILED | TransactionStatus.REVERSED:
            text = _optional_text(data, "gateway_response") or status.value.capitalize()
            return AttemptResult(
                AttemptOutcome.DECLINED, reference, decline=decline_for(text), channel=channel
            )
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
            return AttemptResult(AttemptOutcome.REQUIRES_ACTION, reference, channel=channel)
        case TransactionStatus.PENDING | TransactionStatus.PROCESSING | TransactionStatus.QUEUED:
            return AttemptResult(AttemptOutcome.UNKNOWN, reference, channel=channel)
        case _:
            assert_never(status)


def decline_for(gateway_response: str) -> Decline:
    """Our decline code for Paystack's gateway_response, keeping Paystack's words."""
    known = _GATEWAY_DECLINES.get(gateway_key(gateway_response))
    if known is not None:
        return Decline(known[0], gateway_response, known[1])
    lowered = gateway_response.lower()
    for keyword, code in _DECLINE_KEYWORDS:
        if keyword in lowered:
            return Decline(code, gateway_response, code)
    return Decline("card_declined", gateway_response, "generic_decline")


def gateway_key(gateway_response: str) -> str:
    """A gateway_response as ``_GATEWAY_DECLINES`` names it: lower case, words only."""
    words = "".join(c if c.isalnum() else " " for c in gateway_response.lower())
    return " ".join(words.split())


def saved_method(authorization: object) -> TokenizedCard | None:
    """A reusable card authorization as a saved method; None when it cannot be reused."""
    if not isinstance(authorization, Mapping) or authorization.get("reusable") is not True:
        return None
    code = authorization.get("authorization_code")
    last4 = authorization.get("last4")
    month = _as_int(authorization.get("exp_month"))
    year = _as_int(authorization.get("exp_year"))
    if not isinstance(code, str) or not isinstance(last4, str) or month is None or year is None:
        return None
    brand = authorization.get("brand") or authorization.get("card_type") or "unknown"
    country = authorization.get("country_code")
    return TokenizedCard(
        code,
        str(brand).strip().lower(),
        last4,
        month,
        year,
        country=country if isinstance(country, str) and country else None,
    )


def refund_result(data: Json) -> OperationResult:
    """A refund's state: ``processed`` succeeded, ``failed`` failed, the rest is pending."""
    reference = str(_identifier(data))
    status = _status(RefundStatus, data)
    match status:
        case RefundStatus.PROCESSED:
            return OperationResult(True, reference)
        case RefundStatus.FAILED:
            return OperationResult(False, reference, failure_reason="refund_failed")
        case RefundStatus.PENDING | RefundStatus.PROCESSING | RefundStatus.NEEDS_ATTENTION:
            return OperationResult(False, reference, pending=True)
        case _:
            assert_never(status)


def rejected_refund(envelope: Json) -> OperationResult:
    """Paystack refused to create the refund (over the refundable amount, unknown charge)."""
    return OperationResult(False, None, failure_reason=message(envelope))


def event_from_payload(payload: Json) -> ProviderEvent:
    """Map a verified webhook body ``{event, data}`` to a ``ProviderEvent``."""
    event = payload.get("event")
    data = payload.get("data")
    if not isinstance(event, str) or not isinstance(data, Mapping):
        raise UnexpectedResponse("a Paystack webhook without event or data")
    if event == "charge.success":
        result = transaction_result(data)
        reference = result.provider_reference
        return ProviderEvent(
            f"{event}:{_identifier(data)}",
            event,
            attempt_id=reference,
            provider_reference=reference,
            attempt_result=result,
        )
    if event.startswith("refund."):
        return _refund_event(event, data)
    identifier = data.get("id") or data.get("reference") or data.get("code") or "unknown"
    return ProviderEvent(f"{event}:{identifier}", event)


def _refund_event(event: str, data: Json) -> ProviderEvent:
    amount(data)  # validates: Paystack's samples send it as a string or an integer
    if data.get("id") is None:
        # Without the refund id the event cannot name our refund; a sync will settle it.
        return ProviderEvent(
            f"{event}:{_optional_text(data, 'transaction_reference')}",
            event,
            provider_reference=_optional_text(data, "transaction_reference"),
        )
    result = refund_result(data)
    return ProviderEvent(
        f"{event}:{result.provider_reference}",
        event,
        provider_reference=_optional_text(data, "transaction_reference"),
        refund_reference=result.provider_reference,
        refund_result=result,
    )


def amount(data: Json) -> int:
    """``data.amount`` as an integer of subunits, whether Paystack sent an int or a string."""
    value = _as_int(data.get("amount"))
    if value is None:
        raise UnexpectedResponse(f"Paystack sent an unreadable amount {data.get('amount')!r}")
    return value


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _identifier(data: Json) -> int | str:
    value = data.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise UnexpectedResponse("a Paystack object without an id")
    return value


def _status(enum: type[_Status], data: Json) -> _Status:
    raw = data.get("status")
    try:
        return enum(str(raw))
    except ValueError:
        raise UnexpectedResponse(f"unmapped Paystack {enum.__name__} {raw!r}") from None


def _text(data: Json, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise UnexpectedResponse(f"Paystack's answer has no {key}")
    return value


def _optional_text(data: Json, key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class ListedTransaction:
    """One row of Paystack's transaction list, as reconciliation compares it with ours."""

    reference: str
    status: str
    amount: int
    currency: str
    paid_at: str | None


def listed_transactions(envelope: Json) -> tuple[list[ListedTransaction], int | None]:
    """The page's transactions and the next page number (``None`` on the last page)."""
    data = envelope.get("data")
    if not isinstance(data, list):
        raise UnexpectedResponse("a Paystack transaction list without a data array")
    rows = [
        ListedTransaction(
            reference=_text(item, "reference"),
            status=_text(item, "status"),
            amount=amount(item),
            currency=_text(item, "currency"),
            paid_at=_optional_text(item, "paid_at") or _optional_text(item, "paidAt"),
        )
        for item in data
        if isinstance(item, Mapping)
    ]
    meta = envelope.get("meta")
    next_page = None
    if isinstance(meta, Mapping):
        page, page_count = _as_int(meta.get("page")), _as_int(meta.get("pageCount"))
        if page is not None and page_count is not None and page < page_count:
            next_page = page + 1
    return rows, next_page
