"""Checkout session states: ``open`` takes payments; it becomes ``complete`` once its payment
succeeded, or ``expired`` (by the merchant, or lazily once past its expiry time)."""

from __future__ import annotations

from enum import StrEnum


class CheckoutSessionStatus(StrEnum):
    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"
