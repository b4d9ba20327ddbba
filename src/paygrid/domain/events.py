"""Event types written to the outbox in the same transaction as the change they describe."""

from __future__ import annotations

from enum import StrEnum
from typing import assert_never

from paygrid.domain.payments import PaymentStatus


class EventType(StrEnum):
    PAYMENT_CREATED = "payment.created"
    PAYMENT_REQUIRES_ACTION = "payment.requires_action"
    PAYMENT_PROCESSING = "payment.processing"
    PAYMENT_REQUIRES_CAPTURE = "payment.requires_capture"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.payment_failed"
    PAYMENT_CANCELED = "payment.canceled"
    PAYMENT_UPDATED = "payment.updated"
    REFUND_CREATED = "refund.created"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"
    CUSTOMER_CREATED = "customer.created"
    CUSTOMER_UPDATED = "customer.updated"
    CUSTOMER_DELETED = "customer.deleted"
    PAYMENT_METHOD_DETACHED = "payment_method.detached"
    CHECKOUT_SESSION_COMPLETED = "checkout_session.completed"
    CHECKOUT_SESSION_EXPIRED = "checkout_session.expired"


def payment_event_for(status: PaymentStatus, *, attempt_failed: bool = False) -> EventType:
    """The event a payment emits when it lands in ``status``."""
    if attempt_failed:
        return EventType.PAYMENT_FAILED
    match status:
        case PaymentStatus.REQUIRES_ACTION:
            return EventType.PAYMENT_REQUIRES_ACTION
        case PaymentStatus.PROCESSING:
            return EventType.PAYMENT_PROCESSING
        case PaymentStatus.REQUIRES_CAPTURE:
            return EventType.PAYMENT_REQUIRES_CAPTURE
        case PaymentStatus.SUCCEEDED:
            return EventType.PAYMENT_SUCCEEDED
        case PaymentStatus.CANCELED:
            return EventType.PAYMENT_CANCELED
        case PaymentStatus.REQUIRES_PAYMENT_METHOD | PaymentStatus.REQUIRES_CONFIRMATION:
            return EventType.PAYMENT_UPDATED
        case _:
            assert_never(status)
