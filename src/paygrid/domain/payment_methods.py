"""Kinds of payment method."""

from __future__ import annotations

from enum import StrEnum


class PaymentMethodType(StrEnum):
    """What a payment or checkout session may be paid with: ``card`` on the card form (or a
    saved card; the only kind a saved payment method has), anything else at the provider's
    hosted page."""

    CARD = "card"
    BANK = "bank"
    USSD = "ussd"
    MOBILE_MONEY = "mobile_money"
    BANK_TRANSFER = "bank_transfer"
    QR = "qr"
