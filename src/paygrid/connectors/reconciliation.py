"""The reconciliation side of the connector contract: a provider's charges and refunds of a
window, in paygrid's types (``domain.reconciliation``). Connectors that can list them
implement ``ReconciliationSource``; the mapping from their payloads is pure and lives in
each provider package."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from paygrid.domain.reconciliation import ProviderCharge, ProviderRefund


@runtime_checkable
class ReconciliationSource(Protocol):
    """A connector that can list its provider's charges and refunds."""

    async def reconciliation_charges(self, since: int) -> list[ProviderCharge]:
        """Every charge created at or after ``since`` (Unix time). Raises
        ``ConnectorError`` when the provider cannot answer."""
        ...

    async def reconciliation_refunds(self, since: int) -> list[ProviderRefund]:
        """Every refund created at or after ``since`` (Unix time)."""
        ...


@runtime_checkable
class MissingChargeCheck(Protocol):
    """A connector that can say whether the provider has one charge, more precisely than
    ``retrieve`` (whose "not found" means "never sent" to status sync)."""

    async def charge_exists(self, attempt_id: str, reference: str) -> bool | None:
        """``False`` when the provider definitely has no such charge, ``True`` when it has
        it, ``None`` when it cannot say."""
        ...
