"""A merchant's billing settings in one mode (issue 14 §1): dunning, invoices, the customer
portal and emails. Pure values with Stripe-like defaults; ``paygrid.services.billing.settings``
loads and stores them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class OnExhausted(StrEnum):
    """What happens to a subscription when its invoice's retry schedule is exhausted."""

    CANCEL = "cancel"
    UNPAID = "unpaid"
    PAST_DUE = "past_due"
    PAUSE = "pause"


@dataclass(frozen=True, slots=True)
class DunningSettings:
    retry_schedule_days: tuple[int, ...] = (1, 3, 5, 7)
    on_exhausted: OnExhausted = OnExhausted.UNPAID
    stop_on_hard_decline: bool = True
    fallback_to_other_methods: bool = False
    retry_on_method_update: bool = True
    # The card networks' cap: at most this many attempts per payment method in any window.
    max_attempts_per_method: int = 15
    attempt_window_days: int = 30
    # An off-session charge waiting for the customer's authentication expires after this.
    action_expiry_hours: int = 72


@dataclass(frozen=True, slots=True)
class InvoiceSettings:
    number_prefix: str | None = None
    days_until_due: int = 30
    footer: str | None = None
    finalize_after_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class PortalSettings:
    allow_cancel: bool = True
    allow_update_method: bool = True


@dataclass(frozen=True, slots=True)
class EmailSettings:
    invoice: bool = True
    receipt: bool = True
    payment_failed: bool = True
    action_required: bool = True
    card_expiring: bool = True


@dataclass(frozen=True, slots=True)
class BillingSettings:
    dunning: DunningSettings = field(default_factory=DunningSettings)
    invoices: InvoiceSettings = field(default_factory=InvoiceSettings)
    portal: PortalSettings = field(default_factory=PortalSettings)
    emails: EmailSettings = field(default_factory=EmailSettings)


DEFAULT_BILLING_SETTINGS = BillingSettings()
