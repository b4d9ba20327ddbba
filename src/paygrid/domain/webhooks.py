"""Outbound webhook states: an endpoint is ``enabled`` or ``disabled`` (by the merchant, or by
a 410 Gone answer); a delivery is ``pending`` until it ``succeeded`` or ``failed`` (its
retry schedule used up, or its endpoint gone)."""

from __future__ import annotations

from enum import StrEnum


class EndpointStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class DisabledReason(StrEnum):
    BY_MERCHANT = "disabled_by_merchant"
    GONE = "gone_410"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
