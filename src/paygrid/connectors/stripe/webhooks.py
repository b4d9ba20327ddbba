"""Stripe's inbound webhooks, pure: verify ``Stripe-Signature`` over the raw bytes, then map
the event to a ``ProviderEvent``."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Final

from paygrid.connectors.base import (
    AttemptResult,
    ConnectorError,
    InvalidSignature,
    ProviderEvent,
)
from paygrid.connectors.stripe.mapping import (
    Json,
    attempt_id_of,
    decline_from_error_object,
    redirect_url,
    refund_result,
)
from paygrid.domain.payments import AttemptOutcome

TOLERANCE_SECONDS: Final = 300
SIGNATURE_HEADER: Final = "stripe-signature"
_REFUND_EVENTS: Final = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name (plain dicts are case-sensitive)."""
    found = headers.get(name)
    if found is not None:
        return found
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)


def sign(raw_body: bytes, secret: str, timestamp: int) -> str:
    """The hex ``v1`` signature: HMAC-SHA256 of ``{t}.{body}`` keyed with the whole secret."""
    signed = str(timestamp).encode() + b"." + raw_body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_signature(
    raw_body: bytes,
    signature_header: str | None,
    secret: str | None,
    now: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Raise ``InvalidSignature`` unless one ``v1`` entry matches and ``t`` is within
    ``tolerance`` seconds of ``now`` (either side: a far-future stamp is as suspect as an
    old one, unlike the SDK, which rejects only old ones)."""
    if not secret:
        raise InvalidSignature("no webhook secret is configured for this Stripe account")
    if not signature_header:
        raise InvalidSignature("the Stripe-Signature header is missing")
    timestamp, candidates = _parse_header(signature_header)
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature("the Stripe-Signature timestamp is outside the tolerance")
    expected = sign(raw_body, secret, timestamp)
    # Compare against every entry (no early exit) so timing says nothing about which matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise InvalidSignature("no Stripe-Signature v1 entry matches the body")


def _parse_header(value: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    candidates: list[str] = []
    for item in value.split(","):
        key, sep, content = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not content.isdigit():
                raise InvalidSignature("the Stripe-Signature timestamp is malformed")
            timestamp = int(content)
        elif key == "v1":
            candidates.append(content)
    if timestamp is None:
        raise InvalidSignature("the Stripe-Signature header has no timestamp")
    if not candidates:
        raise InvalidSignature("the Stripe-Signature header has no v1 signature")
    return timestamp, candidates


def parse_event(raw_body: bytes) -> ProviderEvent:
    """Map a verified event body. Types paygrid does not act on are returned with only their
    id and type, to be recorded."""
    try:
        event = json.loads(raw_body)
        event_id = str(event["id"])
        event_type = str(event["type"])
        obj: Json = event["data"]["object"]
    except (ValueError, KeyError, TypeError) as error:
        raise ConnectorError("the Stripe event body is malformed") from error
    if event_type.startswith("payment_intent."):
        return _payment_intent_event(event_id, event_type, obj)
    if event_type in _REFUND_EVENTS:
        return _refund_event(event_id, event_type, obj)
    if event_type == "charge.refunded":
        return _charge_refunded_event(event_id, event_type, obj)
    return ProviderEvent(event_id, event_type)


def _payment_intent_event(event_id: str, event_type: str, intent: Json) -> ProviderEvent:
    reference = str(intent["id"])
    result: AttemptResult | None
    match event_type:
        case "payment_intent.succeeded":
            result = AttemptResult(AttemptOutcome.CAPTURED, reference)
        case "payment_intent.amount_capturable_updated":
            result = AttemptResult(AttemptOutcome.AUTHORIZED, reference)
        case "payment_intent.payment_failed":
            found = decline_from_error_object(intent.get("last_payment_error"))
            result = AttemptResult(AttemptOutcome.DECLINED, reference, decline=found)
        case "payment_intent.processing":
            result = AttemptResult(AttemptOutcome.UNKNOWN, reference)
        case "payment_intent.requires_action":
            url = redirect_url(intent.get("next_action"))
            result = AttemptResult(AttemptOutcome.REQUIRES_ACTION, reference, redirect_url=url)
        case _:  # created, canceled, partially_funded, ...: recorded, nothing to apply
            result = None
    return ProviderEvent(
        event_id,
        event_type,
        attempt_id=attempt_id_of(intent),
        provider_reference=reference,
        attempt_result=result,
    )


def _refund_event(event_id: str, event_type: str, refund: Json) -> ProviderEvent:
    intent = refund.get("payment_intent")
    return ProviderEvent(
        event_id,
        event_type,
        provider_reference=str(intent) if isinstance(intent, str) else None,
        refund_reference=str(refund["id"]),
        refund_result=refund_result(refund),
    )


def _charge_refunded_event(event_id: str, event_type: str, charge: Json) -> ProviderEvent:
    """``charge.refunded`` names the latest refund only when the API version still embeds
    ``charge.refunds`` (before 2022-11-15); otherwise ``refund.updated`` carries it."""
    intent = charge.get("payment_intent")
    refunds = (charge.get("refunds") or {}).get("data") or []
    latest: Json | None = max(refunds, key=lambda r: r.get("created", 0)) if refunds else None
    return ProviderEvent(
        event_id,
        event_type,
        provider_reference=str(intent) if isinstance(intent, str) else None,
        refund_reference=str(latest["id"]) if latest else None,
        refund_result=refund_result(latest) if latest else None,
    )
