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
    # Settlements (issue 15 §1): the provider's fee of a payment became known
    PAYMENT_FEE_SETTLED = "payment.fee_settled"
    REFUND_CREATED = "refund.created"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"
    CUSTOMER_CREATED = "customer.created"
    CUSTOMER_UPDATED = "customer.updated"
    CUSTOMER_DELETED = "customer.deleted"
    PAYMENT_METHOD_ATTACHED = "payment_method.attached"
    PAYMENT_METHOD_DETACHED = "payment_method.detached"
    # Saved methods (issue 13 §1)
    SETUP_INTENT_CREATED = "setup_intent.created"
    SETUP_INTENT_REQUIRES_ACTION = "setup_intent.requires_action"
    SETUP_INTENT_SUCCEEDED = "setup_intent.succeeded"
    SETUP_INTENT_SETUP_FAILED = "setup_intent.setup_failed"
    SETUP_INTENT_CANCELED = "setup_intent.canceled"
    CHECKOUT_SESSION_COMPLETED = "checkout_session.completed"
    CHECKOUT_SESSION_EXPIRED = "checkout_session.expired"
    # Test clocks (issue 13 §6)
    TEST_CLOCK_CREATED = "test_clock.created"
    TEST_CLOCK_DELETED = "test_clock.deleted"
    TEST_CLOCK_ADVANCING = "test_clock.advancing"
    TEST_CLOCK_READY = "test_clock.ready"
    TEST_CLOCK_INTERNAL_FAILURE = "test_clock.internal_failure"
    # The catalog (issue 13 §2)
    PRODUCT_CREATED = "product.created"
    PRODUCT_UPDATED = "product.updated"
    PRODUCT_DELETED = "product.deleted"
    PRICE_CREATED = "price.created"
    PRICE_UPDATED = "price.updated"
    # Invoices (issue 13 §4)
    INVOICEITEM_CREATED = "invoiceitem.created"
    INVOICEITEM_DELETED = "invoiceitem.deleted"
    INVOICE_CREATED = "invoice.created"
    INVOICE_FINALIZED = "invoice.finalized"
    INVOICE_PAID = "invoice.paid"
    INVOICE_PAYMENT_FAILED = "invoice.payment_failed"
    INVOICE_VOIDED = "invoice.voided"
    INVOICE_MARKED_UNCOLLECTIBLE = "invoice.marked_uncollectible"
    # Dunning (issue 14 §1): an off-session charge waits for the customer's authentication
    INVOICE_PAYMENT_ACTION_REQUIRED = "invoice.payment_action_required"
    # Subscriptions (issue 13 §3)
    CUSTOMER_SUBSCRIPTION_CREATED = "customer.subscription.created"
    CUSTOMER_SUBSCRIPTION_UPDATED = "customer.subscription.updated"
    CUSTOMER_SUBSCRIPTION_DELETED = "customer.subscription.deleted"
    CUSTOMER_SUBSCRIPTION_PAUSED = "customer.subscription.paused"
    CUSTOMER_SUBSCRIPTION_RESUMED = "customer.subscription.resumed"
    CUSTOMER_SUBSCRIPTION_TRIAL_WILL_END = "customer.subscription.trial_will_end"
    INVOICE_UPCOMING = "invoice.upcoming"
    # Billing settings (issue 14 §1)
    BILLING_SETTINGS_UPDATED = "billing_settings.updated"
    ACCOUNT_UPDATED = "account.updated"
    # Reports (issue 15 §3): a report run ended (Stripe's names)
    REPORT_RUN_SUCCEEDED = "reporting.report_run.succeeded"
    REPORT_RUN_FAILED = "reporting.report_run.failed"
    # Reconciliation (issue 15 §2): a run compared an account with its provider
    RECONCILIATION_RUN_COMPLETED = "reconciliation_run.completed"


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
