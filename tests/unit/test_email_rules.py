"""Which events call for which email (``domain/emails.py``), and when a card's expiry
notice is due."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from paygrid.domain.emails import (
    EMAIL_EVENTS,
    EmailAction,
    EmailKind,
    EmailOccasion,
    EmailStatus,
    allowed_sources,
    card_expires_at,
    card_expiry_notice_at,
    card_expiry_occasion,
    occasion_for,
    target,
)

INVOICE: dict[str, Any] = {
    "id": "in_1",
    "object": "invoice",
    "collection_method": "send_invoice",
    "amount_due": 2500,
    "amount_paid": 0,
    "attempt_count": 0,
}


@pytest.mark.parametrize(
    ("event_type", "changes", "expected"),
    [
        ("invoice.finalized", {}, EmailOccasion(EmailKind.INVOICE, "in_1", "finalized")),
        ("invoice.finalized", {"collection_method": "charge_automatically"}, None),
        ("invoice.finalized", {"amount_due": 0}, None),
        ("invoice.paid", {"amount_paid": 2500}, EmailOccasion(EmailKind.RECEIPT, "in_1", "paid")),
        ("invoice.paid", {"amount_paid": 0}, None),
        (
            "invoice.payment_failed",
            {"attempt_count": 2, "last_payment_error": {"code": "card_declined"}},
            EmailOccasion(EmailKind.PAYMENT_FAILED, "in_1", "attempt:2"),
        ),
        (
            "invoice.payment_failed",
            {"attempt_count": 1, "last_payment_error": {"code": "authentication_required"}},
            None,
        ),
        (
            "invoice.payment_failed",
            {"attempt_count": 1, "last_payment_error": {"code": "x", "classification": "action"}},
            None,
        ),
        (
            "invoice.payment_action_required",
            {"attempt_count": 1},
            EmailOccasion(EmailKind.ACTION_REQUIRED, "in_1", "attempt:1"),
        ),
        ("invoice.voided", {}, None),
        ("payment.succeeded", {"receipt_email": "ada@example.com"}, None),
    ],
)
def test_each_event_calls_for_its_email_as_stripe_decides(
    event_type: str, changes: dict[str, Any], expected: EmailOccasion | None
) -> None:
    assert occasion_for(event_type, {**INVOICE, **changes}) == expected


def test_only_the_events_that_can_make_an_email_are_handed_to_the_prepare_job() -> None:
    assert {
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.payment_action_required",
    } == EMAIL_EVENTS
    assert occasion_for("invoice.paid", {"amount_paid": 100}) is None  # no id: nothing


def test_a_card_expires_at_the_end_of_its_month_and_is_noticed_30_days_before() -> None:
    assert card_expires_at(2, 2028) == datetime(2028, 3, 1, tzinfo=UTC)
    assert card_expires_at(12, 2030) == datetime(2031, 1, 1, tzinfo=UTC)
    assert card_expiry_notice_at(12, 2030) == datetime(2030, 12, 2, tzinfo=UTC)
    assert card_expiry_notice_at(3, 2030) == datetime(2030, 3, 2, tzinfo=UTC)
    occasion = card_expiry_occasion("pm_1", 3, 2030)
    assert (occasion.kind, occasion.reason_key) == (EmailKind.CARD_EXPIRING, "expires:2030-03")


def test_the_send_log_moves_only_forward_and_a_crashed_send_may_begin_again() -> None:
    assert target(EmailAction.BEGIN) is EmailStatus.SENDING
    assert allowed_sources(EmailAction.BEGIN) == {EmailStatus.QUEUED, EmailStatus.SENDING}
    assert allowed_sources(EmailAction.DELIVERED) == {EmailStatus.SENDING}
    final = {EmailStatus.SENT, EmailStatus.FAILED, EmailStatus.RECORDED, EmailStatus.SKIPPED}
    for action in EmailAction:
        assert not allowed_sources(action) & final
