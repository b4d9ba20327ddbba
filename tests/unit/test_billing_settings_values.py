"""Billing settings as values (issue 14 §1): built from the fields a merchant set, the
defaults for the rest, and the limits ``validate`` holds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from paygrid.domain.billing_settings import (
    DEFAULT_BILLING_SETTINGS,
    InvalidBillingSettings,
    OnExhausted,
    from_stored,
    validate,
)
from paygrid.domain.errors import CardNumberInText


def test_nothing_stored_is_the_defaults() -> None:
    assert from_stored({}) == DEFAULT_BILLING_SETTINGS
    validate(DEFAULT_BILLING_SETTINGS)


def test_stored_fields_override_only_themselves() -> None:
    settings = from_stored(
        {
            "dunning": {"retry_schedule_days": [2, 9], "on_exhausted": "cancel"},
            "invoices": {"number_prefix": "ACME", "footer": None},
            "emails": {"receipt": False},
        }
    )
    assert settings.dunning.retry_schedule_days == (2, 9)
    assert settings.dunning.on_exhausted is OnExhausted.CANCEL
    assert settings.dunning.max_attempts_per_method == 15
    assert settings.invoices.number_prefix == "ACME"
    assert settings.invoices.days_until_due == 30
    assert settings.emails.receipt is False and settings.emails.invoice is True
    assert settings.portal == DEFAULT_BILLING_SETTINGS.portal


def test_fields_unknown_to_this_version_are_ignored() -> None:
    assert from_stored({"portal": {"allow_pausing": True}}) == DEFAULT_BILLING_SETTINGS


@pytest.mark.parametrize(
    "days",
    [(), (3, 3), (5, 2), (0, 1), (1, 61), tuple(range(1, 12))],
)
def test_bad_schedules_are_refused(days: tuple[int, ...]) -> None:
    bad = replace(
        DEFAULT_BILLING_SETTINGS,
        dunning=replace(DEFAULT_BILLING_SETTINGS.dunning, retry_schedule_days=days),
    )
    with pytest.raises(InvalidBillingSettings) as raised:
        validate(bad)
    assert raised.value.param == "dunning[retry_schedule_days]"
    assert raised.value.code == "billing_settings_invalid"


@pytest.mark.parametrize("days", [(1,), (1, 3, 5, 7), tuple(range(1, 11)), (60,)])
def test_good_schedules_pass(days: tuple[int, ...]) -> None:
    validate(
        replace(
            DEFAULT_BILLING_SETTINGS,
            dunning=replace(DEFAULT_BILLING_SETTINGS.dunning, retry_schedule_days=days),
        )
    )


@pytest.mark.parametrize("prefix", ["AB", "abc", "ACME-1", "ABCDEFGHIJKLM", "ÄBC"])
def test_prefixes_follow_stripes_rule(prefix: str) -> None:
    invoices = replace(DEFAULT_BILLING_SETTINGS.invoices, number_prefix=prefix)
    with pytest.raises(InvalidBillingSettings):
        validate(replace(DEFAULT_BILLING_SETTINGS, invoices=invoices))


def test_a_footer_with_a_card_number_is_refused() -> None:
    invoices = replace(DEFAULT_BILLING_SETTINGS.invoices, footer="4242 4242 4242 4242")
    with pytest.raises(CardNumberInText):
        validate(replace(DEFAULT_BILLING_SETTINGS, invoices=invoices))
