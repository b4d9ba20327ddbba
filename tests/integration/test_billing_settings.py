"""Billing settings over HTTP (issue 14 §1): the defaults, partial (Stripe-style) updates,
validation, isolation between merchants and modes, the event and the audit entry, and the
invoices section applied where invoices are made: the number prefix, the due days of
``send_invoice`` invoices, the footer and the renewal's finalize delay."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.dependencies import Deps
from paygrid.domain.invoices import default_prefix
from paygrid.services.billing.subscriptions.schedule import STEP
from paygrid.services.merchants import NewMerchant
from tests.conftest import Api
from tests.integration.test_subscriptions import (
    clock_customer,
    invoices_of,
    monthly_price,
    move,
    subscribe,
)
from tests.integration.test_test_clocks import billing_worker, unix

Json = dict[str, Any]
PAST = datetime(2020, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
DEFAULTS: Json = {
    "dunning": {
        "retry_schedule_days": [1, 3, 5, 7],
        "on_exhausted": "unpaid",
        "stop_on_hard_decline": True,
        "fallback_to_other_methods": False,
        "retry_on_method_update": True,
        "max_attempts_per_method": 15,
        "attempt_window_days": 30,
        "action_expiry_hours": 72,
    },
    "invoices": {"days_until_due": 30, "footer": None, "finalize_after_seconds": None},
    "portal": {"allow_cancel": True, "allow_update_method": True},
    "emails": {
        "invoice": True,
        "receipt": True,
        "payment_failed": True,
        "action_required": True,
        "card_expiring": True,
    },
}


def ok(response: httpx.Response) -> Json:
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def refused(response: httpx.Response, status: int, code: str, param: str | None = None) -> Json:
    assert response.status_code == status, response.text
    error: Json = response.json()["error"]
    assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


def without_prefix(settings: Json) -> Json:
    invoices = {k: v for k, v in settings["invoices"].items() if k != "number_prefix"}
    return {**settings, "invoices": invoices}


async def test_a_new_merchant_has_the_defaults(api: Api, merchant: NewMerchant) -> None:
    settings = ok(await api.get("/v1/billing_settings"))
    assert (settings["object"], settings["livemode"], settings["updated"]) == (
        "billing_settings",
        False,
        None,
    )
    assert settings["invoices"]["number_prefix"] == default_prefix(merchant.id)
    assert without_prefix({k: settings[k] for k in DEFAULTS}) == without_prefix(
        {**DEFAULTS, "invoices": {**DEFAULTS["invoices"], "number_prefix": "x"}}
    )


async def test_an_update_changes_only_the_fields_given(
    api: Api, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    first = ok(
        await api.post(
            "/v1/billing_settings",
            {"dunning": {"retry_schedule_days": [2, 4], "on_exhausted": "cancel"}},
        )
    )
    assert first["dunning"]["retry_schedule_days"] == [2, 4]
    assert first["dunning"]["on_exhausted"] == "cancel"
    assert first["dunning"]["max_attempts_per_method"] == 15
    assert isinstance(first["updated"], int)

    second = ok(
        await api.post(
            "/v1/billing_settings",
            {
                "dunning": {"fallback_to_other_methods": True},
                "invoices": {"number_prefix": "ACME", "footer": "Thanks!"},
                "emails": {"receipt": False},
            },
        )
    )
    assert second["dunning"] == {
        **DEFAULTS["dunning"],
        "retry_schedule_days": [2, 4],
        "on_exhausted": "cancel",
        "fallback_to_other_methods": True,
    }
    assert second["invoices"]["number_prefix"] == "ACME"
    assert second["invoices"]["footer"] == "Thanks!"
    assert second["emails"] == {**DEFAULTS["emails"], "receipt": False}
    assert second["portal"] == DEFAULTS["portal"]
    assert ok(await api.get("/v1/billing_settings")) == second

    # null resets a nullable field to its default; null elsewhere changes nothing.
    third = ok(
        await api.post(
            "/v1/billing_settings",
            {"invoices": {"footer": None}, "dunning": {"on_exhausted": None}},
        )
    )
    assert third["invoices"]["footer"] is None
    assert third["invoices"]["number_prefix"] == "ACME"
    assert third["dunning"]["on_exhausted"] == "cancel"

    settings_id = await pool.fetchval(
        "SELECT id FROM billing_settings WHERE merchant_id = $1 AND NOT livemode", merchant.id
    )
    events = await pool.fetch(
        "SELECT type, object_id, data FROM events WHERE type = 'billing_settings.updated'"
        " AND merchant_id = $1 ORDER BY id",
        merchant.id,
    )
    assert len(events) == 3
    assert {e["object_id"] for e in events} == {settings_id}
    assert events[1]["data"]["object"]["invoices"]["footer"] == "Thanks!"
    audited = await pool.fetch(
        "SELECT action, actor, after FROM audit_log WHERE object_type = 'billing_settings'"
        " AND object_id = $1 ORDER BY id",
        settings_id,
    )
    assert [a["action"] for a in audited] == [
        "billing_settings.created",
        "billing_settings.updated",
        "billing_settings.updated",
    ]
    assert all(a["actor"].startswith("api_key:") for a in audited)


SCHEMA = "parameter_invalid"  # a limit the request schema states
RULE = "billing_settings_invalid"  # a rule only the use case can check


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"dunning": {"retry_schedule_days": [3, 3]}}, RULE, "dunning[retry_schedule_days]"),
        ({"dunning": {"retry_schedule_days": [5, 2]}}, RULE, "dunning[retry_schedule_days]"),
        ({"dunning": {"retry_schedule_days": [0, 2]}}, SCHEMA, "dunning[retry_schedule_days]"),
        ({"dunning": {"retry_schedule_days": [1, 61]}}, SCHEMA, "dunning[retry_schedule_days]"),
        (
            {"dunning": {"retry_schedule_days": list(range(1, 12))}},
            SCHEMA,
            "dunning[retry_schedule_days]",
        ),
        ({"dunning": {"retry_schedule_days": []}}, SCHEMA, "dunning[retry_schedule_days]"),
        ({"dunning": {"max_attempts_per_method": 0}}, SCHEMA, "dunning[max_attempts_per_method]"),
        ({"dunning": {"attempt_window_days": 400}}, SCHEMA, "dunning[attempt_window_days]"),
        ({"dunning": {"action_expiry_hours": 0}}, SCHEMA, "dunning[action_expiry_hours]"),
        ({"invoices": {"number_prefix": "ab"}}, SCHEMA, "invoices[number_prefix]"),
        ({"invoices": {"number_prefix": "acme"}}, SCHEMA, "invoices[number_prefix]"),
        ({"invoices": {"number_prefix": "ACME-1"}}, SCHEMA, "invoices[number_prefix]"),
        ({"invoices": {"number_prefix": "ABCDEFGHIJKLM"}}, SCHEMA, "invoices[number_prefix]"),
        ({"invoices": {"footer": "x" * 5001}}, SCHEMA, "invoices[footer]"),
        ({"invoices": {"days_until_due": -1}}, SCHEMA, "invoices[days_until_due]"),
        (
            {"invoices": {"finalize_after_seconds": 259201}},
            SCHEMA,
            "invoices[finalize_after_seconds]",
        ),
    ],
)
async def test_values_out_of_limits_are_refused_and_change_nothing(
    api: Api, body: Json, code: str, param: str
) -> None:
    before = ok(await api.get("/v1/billing_settings"))
    error = refused(await api.post("/v1/billing_settings", body), 400, code)
    assert error["param"].startswith(param), error
    assert error["type"] == "invalid_request_error"
    assert param.split("[")[1].rstrip("]") in error["message"], error
    assert ok(await api.get("/v1/billing_settings")) == before


@pytest.mark.parametrize(
    "body",
    [
        {"dunning": {"on_exhausted": "explode"}},
        {"dunning": {"retry_schedule_days": [1, "3"]}},
        {"dunning": {"stop_on_hard_decline": "yes"}},
        {"portal": {"allow_refunds": True}},
        {"emails": {"invoice": 1}},
        {"invoices": {"footer": "Pay with 4242 4242 4242 4242"}},
        {"unknown": {}},
    ],
)
async def test_malformed_bodies_are_400(api: Api, body: Json) -> None:
    response = await api.post("/v1/billing_settings", body)
    assert response.status_code == 400, response.text
    assert ok(await api.get("/v1/billing_settings"))["updated"] is None


async def test_settings_are_per_merchant_and_mode(
    api: Api, client: httpx.AsyncClient, merchant: NewMerchant, other_merchant: NewMerchant
) -> None:
    ok(await api.post("/v1/billing_settings", {"invoices": {"number_prefix": "TESTONLY"}}))
    live = Api(client, merchant.key("secret", livemode=True))
    other = Api(client, other_merchant.key("secret", livemode=False))
    assert ok(await live.get("/v1/billing_settings"))["invoices"]["number_prefix"] == (
        default_prefix(merchant.id)
    )
    assert ok(await live.get("/v1/billing_settings"))["livemode"] is True
    assert ok(await other.get("/v1/billing_settings"))["invoices"]["number_prefix"] == (
        default_prefix(other_merchant.id)
    )
    ok(await live.post("/v1/billing_settings", {"portal": {"allow_cancel": False}}))
    mine = ok(await api.get("/v1/billing_settings"))
    assert mine["portal"]["allow_cancel"] is True
    assert mine["invoices"]["number_prefix"] == "TESTONLY"


async def test_concurrent_updates_of_different_fields_both_apply(api: Api) -> None:
    bodies = [
        {"emails": {"invoice": False}},
        {"emails": {"receipt": False}},
        {"portal": {"allow_cancel": False}},
        {"dunning": {"retry_on_method_update": False}},
    ]
    for response in await asyncio.gather(*(api.post("/v1/billing_settings", b) for b in bodies)):
        ok(response)
    settings = ok(await api.get("/v1/billing_settings"))
    assert (settings["emails"]["invoice"], settings["emails"]["receipt"]) == (False, False)
    assert settings["portal"]["allow_cancel"] is False
    assert settings["dunning"]["retry_on_method_update"] is False


async def _finalized(api: Api, customer: str, amount: int = 500, **extra: Any) -> Json:
    ok(
        await api.post(
            "/v1/invoiceitems", {"customer": customer, "amount": amount, "currency": "USD"}
        )
    )
    draft = ok(await api.post("/v1/invoices", {"customer": customer, **extra}))
    return ok(await api.post(f"/v1/invoices/{draft['id']}/finalize", {}))


async def test_finalized_invoices_carry_the_prefix_and_footer(
    api: Api, merchant: NewMerchant
) -> None:
    customer = ok(await api.post("/v1/customers", {"name": "Ada"}))["id"]
    before = await _finalized(api, customer)
    assert before["number"] == f"{default_prefix(merchant.id)}-0001"
    assert before["footer"] is None

    ok(
        await api.post(
            "/v1/billing_settings",
            {"invoices": {"number_prefix": "ACME2026", "footer": "VAT reg. GB123"}},
        )
    )
    after = await _finalized(api, customer)
    # The counter goes on across a change of prefix: no number is ever given twice.
    assert after["number"] == "ACME2026-0002"
    assert after["footer"] == "VAT reg. GB123"
    assert ok(await api.get(f"/v1/invoices/{before['id']}"))["footer"] is None

    ok(await api.post("/v1/billing_settings", {"invoices": {"number_prefix": None}}))
    reset = await _finalized(api, customer)
    assert reset["number"] == f"{default_prefix(merchant.id)}-0003"


async def test_send_invoice_invoices_take_the_settings_due_days(api: Api) -> None:
    ok(await api.post("/v1/billing_settings", {"invoices": {"days_until_due": 7}}))
    customer = ok(await api.post("/v1/customers", {"name": "Ada"}))["id"]
    sent = await _finalized(api, customer, collection_method="send_invoice")
    assert sent["days_until_due"] == 7
    assert sent["due_date"] == sent["status_transitions"]["finalized_at"] + 7 * 86400
    own = await _finalized(api, customer, collection_method="send_invoice", days_until_due=3)
    assert own["days_until_due"] == 3
    charged = await _finalized(api, customer)
    assert (charged["days_until_due"], charged["due_date"]) == (None, None)


async def test_a_renewal_waits_for_the_merchants_finalize_delay(api: Api, deps: Deps) -> None:
    """The suite's default delay is 0 (finalized at once); the merchant's 2 hours apply."""
    ok(
        await api.post(
            "/v1/billing_settings",
            {"invoices": {"finalize_after_seconds": 7200, "number_prefix": "RENEW"}},
        )
    )
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, PAST)
    await subscribe(api, customer, price, trial_period_days=7)
    trial_end = PAST + 7 * DAY
    async with billing_worker(deps, STEP):
        await move(api, clock, trial_end + timedelta(minutes=119))
        (draft,) = await invoices_of(api, customer)
        assert (draft["status"], draft["number"]) == ("draft", None)
        await move(api, clock, trial_end + timedelta(hours=3))
    (paid,) = await invoices_of(api, customer)
    assert paid["status"] == "paid"
    assert paid["status_transitions"]["finalized_at"] == unix(trial_end + timedelta(hours=2))
    assert paid["number"] == "RENEW-0001"


async def test_a_merchant_without_delay_is_finalized_at_once_despite_the_default(
    api: Api, deps: Deps
) -> None:
    hourly = replace(
        deps, settings=deps.settings.model_copy(update={"invoice_finalize_delay_seconds": 3600})
    )
    ok(await api.post("/v1/billing_settings", {"invoices": {"finalize_after_seconds": 0}}))
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, PAST)
    await subscribe(api, customer, price, trial_period_days=7)
    trial_end = PAST + 7 * DAY
    async with billing_worker(hourly, STEP):
        await move(api, clock, trial_end + timedelta(minutes=5))
    (paid,) = await invoices_of(api, customer)
    assert paid["status"] == "paid"
    assert paid["status_transitions"]["finalized_at"] == unix(trial_end)
