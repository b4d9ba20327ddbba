"""Billing settings (issue 14 §1): the request that changes some of them, and the object."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from paygrid.domain.billing_settings import (
    MAX_DAYS_UNTIL_DUE,
    MAX_FINALIZE_AFTER_SECONDS,
    MAX_FOOTER_LENGTH,
    MAX_RETRIES,
    MAX_RETRY_DAY,
    BillingSettings,
    OnExhausted,
)
from paygrid.schemas.common import FreeText, RequestModel

OnExhaustedName = Literal["cancel", "unpaid", "past_due", "pause"]


class DunningUpdate(RequestModel):
    retry_schedule_days: list[Annotated[StrictInt, Field(ge=1, le=MAX_RETRY_DAY)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_RETRIES,
        description="Days after the first failed attempt to retry: 1 to 10 strictly "
        "increasing whole days, each at most 60.",
        examples=[[1, 3, 5, 7]],
    )
    on_exhausted: OnExhaustedName | None = Field(
        default=None,
        description="What happens to the subscription once the schedule is exhausted.",
    )
    stop_on_hard_decline: StrictBool | None = None
    fallback_to_other_methods: StrictBool | None = None
    retry_on_method_update: StrictBool | None = None
    max_attempts_per_method: StrictInt | None = Field(
        default=None,
        ge=1,
        le=100,
        description="The card networks' cap: attempts per method (1-100).",
    )
    attempt_window_days: StrictInt | None = Field(
        default=None, ge=1, le=365, description="The window of that cap, in days (1-365)."
    )
    action_expiry_hours: StrictInt | None = Field(
        default=None,
        ge=1,
        le=720,
        description="How long an off-session charge waits for authentication (1-720).",
    )


class InvoicesUpdate(RequestModel):
    number_prefix: str | None = Field(
        default=None,
        pattern=r"^[A-Z0-9]{3,12}$",
        description="3 to 12 upper-case letters or digits; null for the default prefix.",
        examples=["ACME"],
    )
    days_until_due: StrictInt | None = Field(
        default=None,
        ge=0,
        le=MAX_DAYS_UNTIL_DUE,
        description="send_invoice invoices without their own (0-3650).",
    )
    footer: FreeText | None = Field(
        default=None,
        max_length=MAX_FOOTER_LENGTH,
        description="Printed on every invoice finalized from now on (≤ 5000).",
    )
    finalize_after_seconds: StrictInt | None = Field(
        default=None,
        ge=0,
        le=MAX_FINALIZE_AFTER_SECONDS,
        description="How long a subscription's renewal invoice stays a draft (0-259200); "
        "null for the server's default (PAYGRID_INVOICE_FINALIZE_DELAY_SECONDS).",
    )


class PortalUpdate(RequestModel):
    allow_cancel: StrictBool | None = None
    allow_update_method: StrictBool | None = None


class EmailsUpdate(RequestModel):
    invoice: StrictBool | None = None
    receipt: StrictBool | None = None
    payment_failed: StrictBool | None = None
    action_required: StrictBool | None = None
    card_expiring: StrictBool | None = None


# Fields that may be set back to null (their default); null elsewhere means "unchanged".
NULLABLE: frozenset[tuple[str, str]] = frozenset(
    {
        ("invoices", "number_prefix"),
        ("invoices", "footer"),
        ("invoices", "finalize_after_seconds"),
    }
)


class BillingSettingsUpdate(RequestModel):
    """Only the fields given change; the others keep their values."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dunning": {"retry_schedule_days": [1, 3, 5, 7], "on_exhausted": "cancel"},
                    "invoices": {"number_prefix": "ACME", "footer": "Thank you!"},
                }
            ]
        }
    )

    dunning: DunningUpdate | None = None
    invoices: InvoicesUpdate | None = None
    portal: PortalUpdate | None = None
    emails: EmailsUpdate | None = None

    def changes(self) -> dict[str, dict[str, Any]]:
        """The fields given, per section, as JSON values: a null given for a nullable
        field resets it; a null elsewhere changes nothing."""
        given: dict[str, dict[str, Any]] = {}
        for section in ("dunning", "invoices", "portal", "emails"):
            model = getattr(self, section)
            if model is None:
                continue
            values = model.model_dump(mode="json", exclude_unset=True)
            kept = {
                key: value
                for key, value in values.items()
                if value is not None or (section, key) in NULLABLE
            }
            if kept:
                given[section] = kept
        return given


class Dunning(BaseModel):
    retry_schedule_days: list[int]
    on_exhausted: OnExhausted
    stop_on_hard_decline: bool
    fallback_to_other_methods: bool
    retry_on_method_update: bool
    max_attempts_per_method: int
    attempt_window_days: int
    action_expiry_hours: int


class Invoices(BaseModel):
    number_prefix: str = Field(description="The prefix of new invoice numbers.")
    days_until_due: int
    footer: str | None
    finalize_after_seconds: int | None


class Portal(BaseModel):
    allow_cancel: bool
    allow_update_method: bool


class Emails(BaseModel):
    invoice: bool
    receipt: bool
    payment_failed: bool
    action_required: bool
    card_expiring: bool


class BillingSettingsObject(BaseModel):
    object: Literal["billing_settings"] = "billing_settings"
    livemode: bool
    dunning: Dunning
    invoices: Invoices
    portal: Portal
    emails: Emails
    updated: int | None = Field(description="When last changed; null while all are defaults.")

    @classmethod
    def of(
        cls,
        settings: BillingSettings,
        *,
        livemode: bool,
        default_prefix: str,
        updated: int | None,
    ) -> BillingSettingsObject:
        d, i, p, e = settings.dunning, settings.invoices, settings.portal, settings.emails
        return cls(
            livemode=livemode,
            dunning=Dunning(
                retry_schedule_days=list(d.retry_schedule_days),
                on_exhausted=d.on_exhausted,
                stop_on_hard_decline=d.stop_on_hard_decline,
                fallback_to_other_methods=d.fallback_to_other_methods,
                retry_on_method_update=d.retry_on_method_update,
                max_attempts_per_method=d.max_attempts_per_method,
                attempt_window_days=d.attempt_window_days,
                action_expiry_hours=d.action_expiry_hours,
            ),
            invoices=Invoices(
                number_prefix=i.number_prefix or default_prefix,
                days_until_due=i.days_until_due,
                footer=i.footer,
                finalize_after_seconds=i.finalize_after_seconds,
            ),
            portal=Portal(allow_cancel=p.allow_cancel, allow_update_method=p.allow_update_method),
            emails=Emails(
                invoice=e.invoice,
                receipt=e.receipt,
                payment_failed=e.payment_failed,
                action_required=e.action_required,
                card_expiring=e.card_expiring,
            ),
            updated=updated,
        )
