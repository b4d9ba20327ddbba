"""The dashboard's billing settings page (issue 14 §1, §7): shown with the defaults, saved
through the same use case as the API (the event, the dashboard user as audit actor), errors
shown on the page, refused without ``invoices:write`` and without the CSRF token."""

from __future__ import annotations

import html
import re
from typing import Any

import asyncpg

from paygrid.services.merchants import NewMerchant
from tests.conftest import Api
from tests.integration import test_dashboard as dashboard_tests
from tests.integration.test_dashboard import Login, post_form

new_client = dashboard_tests.new_client
login = dashboard_tests.login
PATH = "/dashboard/billing_settings"


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _form(**overrides: str) -> dict[str, str]:
    fields: dict[str, Any] = {
        "dunning.retry_schedule_days": "1, 3, 5, 7",
        "dunning.on_exhausted": "unpaid",
        "dunning.stop_on_hard_decline": "on",
        "dunning.retry_on_method_update": "on",
        "dunning.max_attempts_per_method": "15",
        "dunning.attempt_window_days": "30",
        "dunning.action_expiry_hours": "72",
        "invoices.number_prefix": "",
        "invoices.days_until_due": "30",
        "invoices.footer": "",
        "invoices.finalize_after_seconds": "",
        "portal.allow_cancel": "on",
        "portal.allow_update_method": "on",
        "emails.invoice": "on",
        "emails.receipt": "on",
        "emails.payment_failed": "on",
        "emails.action_required": "on",
        "emails.card_expiring": "on",
    }
    return {**fields, **overrides}


async def test_the_page_shows_the_defaults_and_is_in_the_nav(login: Login, api: Api) -> None:
    http, _ = await login("admin")
    page = await http.get(PATH)
    assert page.status_code == 200, page.text
    assert 'href="/dashboard/billing_settings"' in page.text
    assert 'value="1, 3, 5, 7"' in page.text
    assert "never (all defaults)" in _text(page.text)
    overview = await http.get("/dashboard")
    assert 'href="/dashboard/billing_settings"' in overview.text


async def test_saving_the_form_changes_the_settings_as_the_api_sees_them(
    login: Login, api: Api, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    http, user = await login("admin")
    fields = _form(
        **{
            "dunning.retry_schedule_days": "2,4,8",
            "dunning.on_exhausted": "cancel",
            "invoices.number_prefix": "SHOP",
            "invoices.footer": "Thank you for your business",
            "invoices.finalize_after_seconds": "600",
        }
    )
    del fields["emails.receipt"]  # an unticked box is not sent
    del fields["portal.allow_cancel"]
    saved = await post_form(http, PATH, PATH, fields)
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"].endswith("notice=saved")
    settings = (await api.get("/v1/billing_settings")).json()
    assert settings["dunning"]["retry_schedule_days"] == [2, 4, 8]
    assert settings["dunning"]["on_exhausted"] == "cancel"
    assert settings["dunning"]["fallback_to_other_methods"] is False
    assert settings["invoices"]["number_prefix"] == "SHOP"
    assert settings["invoices"]["footer"] == "Thank you for your business"
    assert settings["invoices"]["finalize_after_seconds"] == 600
    assert settings["emails"]["receipt"] is False
    assert settings["emails"]["invoice"] is True
    assert settings["portal"]["allow_cancel"] is False
    page = await http.get(saved.headers["location"])
    assert "Saved." in page.text
    assert 'value="2, 4, 8"' in page.text
    actors = await pool.fetch(
        "SELECT actor FROM audit_log WHERE object_type = 'billing_settings' AND merchant_id = $1",
        merchant.id,
    )
    assert {a["actor"] for a in actors} == {f"dashboard:{user.id}"}


async def test_an_invalid_value_is_shown_on_the_page_and_nothing_changes(
    login: Login, api: Api
) -> None:
    http, _ = await login("admin")
    for fields, words in [
        (_form(**{"dunning.retry_schedule_days": "5, 3"}), "strictly increasing"),
        (_form(**{"invoices.number_prefix": "ab"}), "invoices.number_prefix"),
        (_form(**{"dunning.max_attempts_per_method": "many"}), "whole number"),
        (_form(**{"invoices.footer": "card 4242 4242 4242 4242"}), "card number"),
    ]:
        refused = await post_form(http, PATH, PATH, fields)
        assert refused.status_code == 400, refused.text
        alert = re.search(r'<p class="error" role="alert">(.*?)</p>', refused.text, re.S)
        assert alert is not None, refused.text
        assert words in html.unescape(alert.group(1))
    assert (await api.get("/v1/billing_settings")).json()["updated"] is None


async def test_roles_without_invoices_write_see_but_cannot_save(login: Login, api: Api) -> None:
    http, _ = await login("viewer")
    page = await http.get(PATH)
    assert page.status_code == 200
    assert "cannot change billing settings" in page.text
    refused = await post_form(http, PATH, PATH, _form(**{"invoices.number_prefix": "NOPE"}))
    assert refused.status_code == 403
    assert (await api.get("/v1/billing_settings")).json()["updated"] is None


async def test_a_form_without_the_csrf_token_is_refused(login: Login, api: Api) -> None:
    http, _ = await login("admin")
    refused = await http.post(PATH, data=_form(**{"invoices.number_prefix": "NOPE"}))
    assert refused.status_code in (400, 403)
    assert (await api.get("/v1/billing_settings")).json()["updated"] is None
