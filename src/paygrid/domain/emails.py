"""Emails to customers (issue 14 §5): which events make which email, the send log's
statuses with their one transition table, and when a card's expiry notice is due.

Pure: ``paygrid.services.emails`` renders, records and sends them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from paygrid.domain.events import EventType

# The jobs: the outbox relay (``webhooks/dispatcher.py``) enqueues ``PREPARE`` for every
# committed event of ``EMAIL_EVENTS``, in the transaction that marks it dispatched, so each
# event is considered exactly once. Named here, below both the relay and the services.
PREPARE: Final = "emails.prepare"
SEND: Final = "emails.send"
CARD_EXPIRY: Final = "emails.card_expiry"
QUEUE: Final = "emails"
# A card's expiry notice goes out this long before the end of its expiry month.
CARD_EXPIRY_NOTICE: Final = timedelta(days=30)


class EmailKind(StrEnum):
    """The kinds of email; each is on or off per merchant and mode (``EmailSettings``)."""

    INVOICE = "invoice"
    RECEIPT = "receipt"
    PAYMENT_FAILED = "payment_failed"
    ACTION_REQUIRED = "action_required"
    CARD_EXPIRING = "card_expiring"


class EmailStatus(StrEnum):
    """An email's place in the send log.

    ``queued`` → ``sending`` (committed before the SMTP conversation starts) → ``sent``;
    a temporary SMTP failure goes back to ``queued`` and the job retries; ``failed`` when
    the server refuses it for good or the retries are used up. ``recorded``: no SMTP server
    is configured, so it was only written down; ``skipped``: the merchant turned the kind
    off. ``sent``, ``failed``, ``recorded`` and ``skipped`` are final."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    RECORDED = "recorded"
    SKIPPED = "skipped"


class EmailAction(StrEnum):
    BEGIN = "begin"
    DELIVERED = "delivered"
    DEFER = "defer"
    FAIL = "fail"


S = EmailStatus
# A ``sending`` email may begin again: its worker died mid-send (the job's lease ran out),
# and the SMTP server either never accepted it or did (see docs/billing.md#emails).
TRANSITIONS: Final[dict[EmailAction, tuple[frozenset[EmailStatus], EmailStatus]]] = {
    EmailAction.BEGIN: (frozenset({S.QUEUED, S.SENDING}), S.SENDING),
    EmailAction.DELIVERED: (frozenset({S.SENDING}), S.SENT),
    EmailAction.DEFER: (frozenset({S.SENDING}), S.QUEUED),
    EmailAction.FAIL: (frozenset({S.QUEUED, S.SENDING}), S.FAILED),
}


def allowed_sources(action: EmailAction) -> frozenset[EmailStatus]:
    return TRANSITIONS[action][0]


def target(action: EmailAction) -> EmailStatus:
    return TRANSITIONS[action][1]


@dataclass(frozen=True, slots=True)
class EmailOccasion:
    """Why an email is due: its kind, the object it is about, and the reason key that makes
    it unique with them (one receipt per invoice, one failure notice per attempt, ...)."""

    kind: EmailKind
    object_id: str
    reason_key: str


AUTHENTICATION: Final = "authentication_required"
# Invoices' events only: a payment's own events are the hot path, and its receipt is the
# invoice's (``invoice.paid``); one-off payments' ``receipt_email`` is not emailed yet.
EMAIL_EVENTS: Final[frozenset[str]] = frozenset(
    {
        EventType.INVOICE_FINALIZED,
        EventType.INVOICE_PAID,
        EventType.INVOICE_PAYMENT_FAILED,
        EventType.INVOICE_PAYMENT_ACTION_REQUIRED,
    }
)


def occasion_for(event_type: str, snapshot: dict[str, Any]) -> EmailOccasion | None:
    """The email an event calls for, as Stripe decides it, or None.

    - ``invoice.finalized`` of a ``send_invoice`` invoice with an amount due: the invoice
      (a ``charge_automatically`` invoice is charged instead, and Stripe emails it only
      when that fails).
    - ``invoice.paid`` with an amount paid: the invoice's receipt.
    - ``invoice.payment_failed`` and ``invoice.payment_action_required``: one email per
      attempt of the invoice; a failure that waits for the customer's authentication gets
      only the ``action_required`` one."""
    object_id = str(snapshot.get("id", ""))
    if not object_id:
        return None
    attempt = f"attempt:{snapshot.get('attempt_count', 0)}"
    if event_type == EventType.INVOICE_FINALIZED:
        if snapshot.get("collection_method") == "send_invoice" and _int(snapshot, "amount_due"):
            return EmailOccasion(EmailKind.INVOICE, object_id, "finalized")
    elif event_type == EventType.INVOICE_PAID:
        if _int(snapshot, "amount_paid"):
            return EmailOccasion(EmailKind.RECEIPT, object_id, "paid")
    elif event_type == EventType.INVOICE_PAYMENT_FAILED:
        if not _waits_for_customer(snapshot.get("last_payment_error")):
            return EmailOccasion(EmailKind.PAYMENT_FAILED, object_id, attempt)
    elif event_type == EventType.INVOICE_PAYMENT_ACTION_REQUIRED:
        return EmailOccasion(EmailKind.ACTION_REQUIRED, object_id, attempt)
    return None


def _waits_for_customer(error: object) -> bool:
    """An attempt that needs the customer's authentication: its ``action_required`` email
    asks for it, so no ``payment_failed`` one goes with it (as Stripe's emails)."""
    if not isinstance(error, dict):
        return False
    return error.get("classification") == "action" or error.get("code") == AUTHENTICATION


def _int(snapshot: dict[str, Any], name: str) -> int:
    value = snapshot.get(name)
    return value if isinstance(value, int) else 0


def card_expires_at(exp_month: int, exp_year: int) -> datetime:
    """The end of a card's expiry month (UTC): the first moment it no longer works."""
    if exp_month == 12:
        return datetime(exp_year + 1, 1, 1, tzinfo=UTC)
    return datetime(exp_year, exp_month + 1, 1, tzinfo=UTC)


def card_expiry_notice_at(exp_month: int, exp_year: int) -> datetime:
    """When a card's expiry notice is due: ``CARD_EXPIRY_NOTICE`` before it expires."""
    return card_expires_at(exp_month, exp_year) - CARD_EXPIRY_NOTICE


def card_expiry_occasion(payment_method_id: str, exp_month: int, exp_year: int) -> EmailOccasion:
    """One notice per method and expiry date (a method updated with a new date gets another)."""
    return EmailOccasion(
        EmailKind.CARD_EXPIRING, payment_method_id, f"expires:{exp_year:04d}-{exp_month:02d}"
    )


def message_id(email_id: str, domain: str) -> str:
    """The SMTP Message-ID of an email, fixed when it is recorded: a resend after a crash
    carries the same one, so a duplicate is recognisable downstream."""
    return f"<{email_id}@{domain}>"
