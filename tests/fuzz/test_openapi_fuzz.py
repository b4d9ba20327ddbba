"""Schemathesis fuzzes every operation in ``/openapi.json`` against the in-process app, with a
test secret key: no 5xx, every status, header and body as the spec documents it, every 4xx
carrying the error object, and no schema-valid request refused for anything but a business
rule the schema cannot state (``BUSINESS_RULES``). Examples per operation are few and
derandomized, so a CI run is bounded and a failure reproduces."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import is_unexpected_http_status_case

from paygrid.app import create_app
from paygrid.config import Settings
from paygrid.services.merchants import create_merchant
from tests.conftest import TEST_BASE_URL

# Refusals of schema-valid requests that are business rules, not gaps in the schema: what
# the server answers depends on data, state, mode or the clock, which a schema cannot state.
# Anything else refused for schema-valid data (parameter_invalid, parameter_unknown,
# parameter_missing, ...) means the schema accepts what the server rejects: fix the schema.
BUSINESS_RULES: dict[tuple[int, str], str] = {
    # Per-currency minimum and maximum amounts (money.CURRENCIES), and the amounts a provider
    # refuses: a schema field cannot depend on the `currency` beside it.
    (400, "amount_too_small"): "below the currency's minimum",
    (400, "amount_too_large"): "above the currency's or the provider's maximum",
    # The currency is one of the registry's (an enum), but not one the provider processes.
    (400, "currency_not_supported"): "a currency the connector account's provider lacks",
    # An id in the body or query (customer, payment, connector account, cursor) of the right
    # form that names no object of this merchant and mode.
    (400, "resource_missing"): "an id that names no object",
    # A Luhn-valid card number in free text, refused so that none is stored: no pattern.
    (400, "card_number_in_text"): "a card number in free text",
    # The key prefix a provider account takes depends on the key's mode (sk_test_/sk_live_).
    (400, "credentials_invalid"): "a provider key of the other mode",
    # Webhook hosts: loopback and private addresses only for allowed hosts; https in live mode.
    (400, "url_not_allowed"): "a webhook URL the host policy refuses",
    # Saved methods belong to one customer (issue 18 section 3).
    (400, "payment_method_not_owned"): "another customer's saved method",
    (400, "payment_method_already_attached"): "a method attached to another customer",
    # What the chosen provider can do, and whether any connector account takes the payment.
    (400, "capability_not_supported"): "a provider without the capability",
    (400, "no_connector_available"): "no connector account for the payment",
    (400, "charge_already_refunded"): "a refund of a fully refunded payment",
    # A provider webhook whose signature (over the raw body, with the account's secret) does
    # not verify: a schema cannot describe an HMAC.
    (400, "signature_invalid"): "a provider webhook with a wrong signature",
    # Revoking or rolling a key that is already revoked (the key's state).
    (400, "api_key_revoked"): "an operation on a revoked API key",
    # Card errors of the simulator's tokenizer and issuer (invalid number, expired, declined).
    (402, "*"): "card_error: the card, not the request",
    # Object states: capture of a canceled payment, a second confirm, a reused reference.
    (409, "payment_invalid_state"): "the payment's state forbids the operation",
    (409, "reference_already_exists"): "the merchant's reference is unique",
    (409, "setup_intent_unexpected_state"): "the setup intent's status forbids the operation",
    (409, "checkout_session_invalid_state"): "the session's state forbids the operation",
    (409, "lock_timeout"): "another request holds the object",
    (409, "idempotency_key_in_use"): "a concurrent request with the same key",
    # The catalog: a product with prices is archived, not deleted; an active price's lookup
    # key is the merchant's one price with it.
    (400, "product_has_prices"): "deleting a product that has prices",
    (409, "lookup_key_in_use"): "a lookup key another active price has",
    # Test clocks: an advance must go past the clock's current frozen time, and a clock
    # that is advancing (no worker runs here) or failed takes no advance, delete or customer.
    (400, "frozen_time_not_after_current"): "an advance to the clock's past",
    # Billing settings: a retry schedule's days must be strictly increasing (an order between
    # list items, which a schema cannot state; every other limit is in the schema).
    (400, "billing_settings_invalid"): "retry days not strictly increasing",
    # Reports: a synchronous summary covers at most 366 days (a report run takes more).
    (400, "report_window_too_large"): "a summary window over 366 days",
    (409, "test_clock_advancing"): "the clock is advancing",
    (409, "test_clock_internal_failure"): "the clock failed to advance",
    # Invoices (docs/billing.md): what a customer has pending, the invoice's status and
    # payment method, an item already invoiced, a price that is archived or recurring.
    (400, "invoice_no_pending_items"): "a customer without pending items in the currency",
    (400, "invoice_payment_method_missing"): "an invoice without a method to charge",
    (400, "price_not_usable"): "an archived or recurring price on an invoice item",
    (409, "invoice_invalid_state"): "the invoice's status forbids the operation",
    (409, "invoice_item_invoiced"): "deleting an invoice item already on an invoice",
    # Subscriptions (docs/billing.md): the status an action needs.
    (409, "subscription_invalid_state"): "the subscription's status forbids the operation",
    # Refund limits: more than the payment has left to refund.
    (422, "refund_exceeds_available"): "more than the refundable amount",
    (422, "idempotency_key_reused"): "the same key with another request",
}
# parameter_invalid refusals of schema-valid data that OpenAPI cannot state, by parameter.
BUSINESS_RULE_PARAMETERS: dict[str, str] = {
    # Query parameters cannot exclude each other in OpenAPI (no oneOf across parameters).
    "ending_before": "starting_after and ending_before together",
    # A window relative to the server's clock: 30 minutes to 24 hours from now.
    "expires_at": "an expiry outside the allowed window",
    # Subscriptions: times relative to the customer's clock, and an update's items taken
    # together (at least one remains).
    "trial_end": "a trial end in the past or over 730 days ahead",
    "billing_cycle_anchor": "an anchor in the past or over one interval ahead",
    "resumes_at": "a resume time in the past",
    "items": "an update that removes every item",
    # Reports: a date of the right shape that does not exist (2026-02-30), a window that
    # ends before it starts, and time zones, which are IANA's list (too long for an enum).
    "from": "a date that does not exist, or after `to`",
    "to": "a date that does not exist, or before `from`",
    "parameters[from]": "a date that does not exist, or after `to`",
    "parameters[to]": "a date that does not exist, or before `from`",
    "timezone": "a name outside IANA's time zones",
    "parameters[timezone]": "a name outside IANA's time zones",
    # A report run's dimensions are checked by the use case, with the query's message.
    "group_by": "a dimension other than day, status, currency and connector",
}
# Statuses the built-in positive_data_acceptance check lets through; which 400, 402, 409 and
# 422 are business rules is up to ``business_rules_only`` (the built-in cannot read codes).
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": [
                    "2xx",
                    "3xx",
                    "400",
                    "401",
                    "402",
                    "403",
                    "404",
                    "409",
                    "422",
                    "429",
                ]
            }
        }
    }
)

# The spec needs no database: load it at import so each operation is its own test.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(public_url=TEST_BASE_URL)).openapi(), config=CONFIG
)


@pytest.fixture(scope="module")
def fuzz_app(database_url: str, settings: Settings) -> Iterator[FastAPI]:
    """An app that owns its pools: schemathesis calls it from its own event loop thread,
    where the session's pools cannot be used. No in-process worker: nothing is delivered."""
    app = create_app(
        settings.model_copy(update={"worker_in_process": False, "db_pool_size": 4}),
        database_url=database_url,
    )
    yield app
    asgi.shutdown_lifespans()  # closes the app's pools while the database still exists


@pytest.fixture(scope="module")
async def fuzz_key(pool: asyncpg.Pool) -> str:
    merchant = await create_merchant(pool, f"Fuzz merchant {uuid.uuid4().hex[:6]}")
    return merchant.key("secret", livemode=False)


@schemathesis.check
def error_object(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """Every 4xx carries ``{"error": {"type", "code", "message", ...}}``."""
    if not 400 <= response.status_code < 500:
        return None
    body: Any = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"{response.status_code} without an error object"
    missing = [f for f in ("type", "code", "message") if not isinstance(error.get(f), str)]
    assert not missing, f"{response.status_code} error object lacks {missing}"
    return True


def _integral_float(body: Any, param: str) -> bool:
    """Whether the parameter an error names holds a number such as ``2000.0``: JSON Schema
    counts it as an integer, paygrid (strict, amounts are exact) does not."""
    name = param.rpartition("[")[2].rstrip("]") if "[" in param else param.rpartition(".")[2]
    if isinstance(body, dict):
        value = body.get(name)
        if isinstance(value, float) and value.is_integer():
            return True
        return any(_integral_float(item, param) for item in body.values())
    if isinstance(body, list):
        return any(_integral_float(item, param) for item in body)
    return False


@schemathesis.check
def business_rules_only(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """A schema-valid request refused with a 400, 402, 409 or 422 broke a business rule
    listed in ``BUSINESS_RULES``, never a parameter check the schema should have stated."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if is_unexpected_http_status_case(case) or response.status_code not in (400, 402, 409, 422):
        return None
    error: Any = response.json().get("error") or {}
    status, code, param = response.status_code, error.get("code"), error.get("param") or ""
    if (status, code) in BUSINESS_RULES or (status == 402 and error.get("type") == "card_error"):
        return True
    if (status, code) == (400, "parameter_invalid") and param in BUSINESS_RULE_PARAMETERS:
        return True
    if code in ("parameter_invalid", "amount_invalid") and _integral_float(case.body, param):
        return True
    raise AssertionError(
        f"schema-valid data refused: {status} {code} ({param}): {error.get('message')}"
    )


@schema.parametrize()
@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_openapi(case: schemathesis.Case[Any], fuzz_app: FastAPI, fuzz_key: str) -> None:
    case.call_and_validate(
        base_url=TEST_BASE_URL,
        app=fuzz_app,
        headers={"Authorization": f"Bearer {fuzz_key}"},
        additional_checks=[error_object, business_rules_only],
    )
