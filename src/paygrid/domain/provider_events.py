"""Inbound provider events (the inbox): stored ``pending``, then ``applied`` to a payment or
refund, ``ignored`` (a type paygrid does not act on), or ``unmatched`` (nothing it is about
exists yet; a job tries again later)."""

from __future__ import annotations

from enum import StrEnum


class ProviderEventStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    IGNORED = "ignored"
    UNMATCHED = "unmatched"

    @property
    def is_final(self) -> bool:
        """Applied or ignored: nothing more to do about the event."""
        return self in (ProviderEventStatus.APPLIED, ProviderEventStatus.IGNORED)
