"""Refund states: a refund is created ``pending`` (its amount reserved on the payment) and
settles once, to ``succeeded`` or ``failed`` (the reservation released)."""

from __future__ import annotations

from enum import StrEnum


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
