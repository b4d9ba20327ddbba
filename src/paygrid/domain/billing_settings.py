"""A merchant's billing settings in one mode (issue 14 §1): dunning, invoices, the customer
portal and emails. Pure values with Stripe-like defaults; ``paygrid.services.billing.settings``
loads and stores them. ``from_stored`` builds them from the fields a merchant set (the rest
keep their defaults) and ``validate`` holds the limits the API and the dashboard enforce."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from itertools import pairwise
from typing import Any, Final, TypeVar

from paygrid.domain.card_numbers import refuse_card_number
from paygrid.domain.errors import InvalidRequest


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


SECTIONS: Final = ("dunning", "invoices", "portal", "emails")
MAX_RETRIES: Final = 10
MAX_RETRY_DAY: Final = 60
MAX_FOOTER_LENGTH: Final = 5000
MAX_FINALIZE_AFTER_SECONDS: Final = 72 * 3600
MAX_DAYS_UNTIL_DUE: Final = 3650
# Stripe's rule for invoice prefixes: 3 to 12 upper-case letters or digits.
NUMBER_PREFIX: Final = re.compile(r"[A-Z0-9]{3,12}")


class InvalidBillingSettings(InvalidRequest):
    """The billing settings are invalid."""

    default_code = "billing_settings_invalid"


def from_stored(sections: Mapping[str, Mapping[str, Any]]) -> BillingSettings:
    """The settings from the fields a merchant set, per section (JSON values); a field
    never set, or unknown to this version, keeps its default."""
    dunning = dict(sections.get("dunning", {}))
    if "retry_schedule_days" in dunning:
        dunning["retry_schedule_days"] = tuple(dunning["retry_schedule_days"])
    if "on_exhausted" in dunning:
        dunning["on_exhausted"] = OnExhausted(dunning["on_exhausted"])
    return BillingSettings(
        dunning=_section(DunningSettings(), dunning),
        invoices=_section(InvoiceSettings(), sections.get("invoices", {})),
        portal=_section(PortalSettings(), sections.get("portal", {})),
        emails=_section(EmailSettings(), sections.get("emails", {})),
    )


_Section = TypeVar("_Section", DunningSettings, InvoiceSettings, PortalSettings, EmailSettings)


def _section(default: _Section, values: Mapping[str, Any]) -> _Section:
    known = {f.name for f in fields(default)}
    return replace(default, **{k: v for k, v in values.items() if k in known})


def validate(settings: BillingSettings) -> None:
    """Raise ``billing_settings_invalid`` naming the first field out of its limits."""
    _validate_schedule(settings.dunning.retry_schedule_days)
    dunning = settings.dunning
    _within(dunning.max_attempts_per_method, 1, 100, "dunning[max_attempts_per_method]")
    _within(dunning.attempt_window_days, 1, 365, "dunning[attempt_window_days]")
    _within(dunning.action_expiry_hours, 1, 720, "dunning[action_expiry_hours]")
    invoices = settings.invoices
    prefix = invoices.number_prefix
    if prefix is not None and NUMBER_PREFIX.fullmatch(prefix) is None:
        raise InvalidBillingSettings(
            "invoices.number_prefix must be 3 to 12 upper-case letters (A-Z) or digits.",
            param="invoices[number_prefix]",
        )
    _within(invoices.days_until_due, 0, MAX_DAYS_UNTIL_DUE, "invoices[days_until_due]")
    if invoices.footer is not None and len(invoices.footer) > MAX_FOOTER_LENGTH:
        raise InvalidBillingSettings(
            f"invoices.footer must be at most {MAX_FOOTER_LENGTH} characters.",
            param="invoices[footer]",
        )
    refuse_card_number(invoices.footer, "invoices[footer]")
    if invoices.finalize_after_seconds is not None:
        _within(
            invoices.finalize_after_seconds,
            0,
            MAX_FINALIZE_AFTER_SECONDS,
            "invoices[finalize_after_seconds]",
        )


def _validate_schedule(days: tuple[int, ...]) -> None:
    param = "dunning[retry_schedule_days]"
    if not 1 <= len(days) <= MAX_RETRIES:
        raise InvalidBillingSettings(
            f"dunning.retry_schedule_days must have 1 to {MAX_RETRIES} entries.", param=param
        )
    if any(not 1 <= day <= MAX_RETRY_DAY for day in days):
        raise InvalidBillingSettings(
            f"dunning.retry_schedule_days must be whole days from 1 to {MAX_RETRY_DAY} "
            "after the first failed attempt.",
            param=param,
        )
    if any(later <= earlier for earlier, later in pairwise(days)):
        raise InvalidBillingSettings(
            "dunning.retry_schedule_days must be strictly increasing (days after the first "
            "failed attempt), e.g. [1, 3, 5, 7].",
            param=param,
        )


def _within(value: int, low: int, high: int, param: str) -> None:
    if not low <= value <= high:
        name = param.replace("[", ".").rstrip("]")
        raise InvalidBillingSettings(f"{name} must be from {low} to {high}.", param=param)
