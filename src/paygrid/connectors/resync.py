"""The restore side of the connector contract: a provider's charges since a time with what
paygrid sent along (its payment id, attempt id and the merchant's Idempotency-Key), so that
``paygrid restore`` can re-import what was charged after the backup under the ids and key
the merchant already holds. Connectors that can list them implement ``ResyncSource``; the
mapping from their payloads is pure and lives in each provider package."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from paygrid.domain.reconciliation import ChargeState


@dataclass(frozen=True, slots=True)
class ProviderChargeRecord:
    """One charge at the provider as a restore re-imports it. ``payment_id`` and
    ``attempt_id`` are None for a charge paygrid did not make (nothing to re-import)."""

    reference: str  # what paygrid stores as the attempt's provider_reference
    payment_id: str | None
    attempt_id: str | None
    idempotency_key: str | None  # the merchant's, when the payment was created with one
    state: ChargeState
    amount: int
    currency: str  # upper case
    email: str | None
    created: int  # Unix time
    capture_manual: bool = False  # authorized only, to be captured (Stripe's manual capture)


@runtime_checkable
class ResyncSource(Protocol):
    """A connector that can list its provider's charges with paygrid's metadata."""

    async def resync_charges(self, since: int) -> list[ProviderChargeRecord]:
        """Every charge created at or after ``since`` (Unix time). Raises
        ``ConnectorError`` when the provider cannot answer."""
        ...
