"""Pure translation of one item of Paystack's transaction list (``GET /transaction``) into
what ``paygrid restore`` re-imports: the transaction's ``metadata`` carries paygrid's
payment id, attempt id and the merchant's Idempotency-Key (``mapping.paygrid_metadata``),
as an object (initialize) or as stringified JSON (charge_authorization). Refunds are listed
with ``reconciliation.refund``, which reads paygrid's refund id and the merchant's key from
the refund's ``merchant_note`` (``refund_notes``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from paygrid.connectors.paystack import mapping
from paygrid.connectors.paystack import reconciliation as recon_mapping
from paygrid.connectors.paystack.mapping import Json, TransactionStatus
from paygrid.connectors.resync import ProviderChargeRecord


def charge_record(item: Json) -> ProviderChargeRecord:
    """One item of ``GET /transaction``'s ``data``."""
    metadata = _metadata(item.get("metadata"))
    customer = item.get("customer")
    email = customer.get("email") if isinstance(customer, Mapping) else None
    return ProviderChargeRecord(
        reference=mapping._text(item, "reference"),
        payment_id=_text_or_none(metadata, mapping.PAYMENT_METADATA_KEY),
        attempt_id=_text_or_none(metadata, mapping.ATTEMPT_METADATA_KEY),
        idempotency_key=_text_or_none(metadata, mapping.IDEMPOTENCY_METADATA_KEY),
        state=recon_mapping.charge_state(mapping._status(TransactionStatus, item)),
        amount=mapping.amount(item),
        currency=mapping._text(item, "currency").upper(),
        email=email if isinstance(email, str) and email else None,
        created=recon_mapping.unix(item.get("createdAt") or item.get("created_at")),
    )


def _metadata(value: object) -> Mapping[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def _text_or_none(metadata: Mapping[str, Any], key: str) -> str | None:
    value = metadata.get(key)
    return value if isinstance(value, str) and value else None
