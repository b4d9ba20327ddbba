"""What ``paygrid restore`` re-imports from Stripe: the account's PaymentIntents created
since a time (``GET /v1/payment_intents`` with ``created[gte]``, walked as ``listing``
walks every list), each with the metadata paygrid set on it (``mapping.payment_intent_params``:
the payment id, the attempt id and the merchant's Idempotency-Key). The translation is pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe

from paygrid.connectors.resync import ProviderChargeRecord
from paygrid.connectors.stripe import listing
from paygrid.connectors.stripe import reconciliation as recon_mapping
from paygrid.connectors.stripe.mapping import (
    ATTEMPT_METADATA_KEY,
    IDEMPOTENCY_METADATA_KEY,
    PAYMENT_METADATA_KEY,
    IntentStatus,
    Json,
    status_of,
)


async def charges(client: stripe.StripeClient, since: int) -> list[ProviderChargeRecord]:
    """The account's PaymentIntents created at or after ``since``."""
    intents = await listing._all(client.v1.payment_intents.list_async, {"created": {"gte": since}})
    return listing._mapped(lambda: [charge_record(intent) for intent in intents])


def charge_record(intent: Json) -> ProviderChargeRecord:
    """One PaymentIntent as a restore re-imports it."""
    metadata: Mapping[str, Any] = intent.get("metadata") or {}
    email = intent.get("receipt_email")
    return ProviderChargeRecord(
        reference=recon_mapping._text(intent, "id"),
        payment_id=_text_or_none(metadata, PAYMENT_METADATA_KEY),
        attempt_id=_text_or_none(metadata, ATTEMPT_METADATA_KEY),
        idempotency_key=_text_or_none(metadata, IDEMPOTENCY_METADATA_KEY),
        state=recon_mapping.charge_state(status_of(IntentStatus, intent)),
        amount=recon_mapping._integer(intent, "amount"),
        currency=recon_mapping._text(intent, "currency").upper(),
        email=email if isinstance(email, str) and email else None,
        created=recon_mapping._integer(intent, "created"),
        capture_manual=intent.get("capture_method") == "manual",
    )


def _text_or_none(metadata: Mapping[str, Any], key: str) -> str | None:
    value = metadata.get(key)
    return value if isinstance(value, str) and value else None
