"""One scenario suite, run against every connector (the simulator, Stripe on localstripe,
Paystack on its fake) wherever the connector has the capability. Everything goes through
paygrid's HTTP API; outcomes are checked on the payment, its attempts, its events and, where
the fake lets us read it, the provider's own state."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.scenarios.conftest import (
    RETURN_URL,
    ConnectorCase,
    Json,
    Scenario,
    Webhook,
    authorizations,
    last_authorization,
    redirect_url,
    require,
)


def assert_error(response_body: Json, status: int, actual_status: int, code: str) -> None:
    assert actual_status == status, response_body
    assert response_body["error"]["code"] == code, response_body


async def test_purchase(scenario: Scenario, case: ConnectorCase) -> None:
    account = await case.create_account(scenario)
    payment = await case.pay(scenario, 2000)
    assert payment["status"] == "succeeded"
    assert (payment["amount_received"], payment["amount_capturable"]) == (2000, 0)
    assert (payment["connector"], payment["connector_account"]) == (case.name, account["id"])
    [attempt] = authorizations(payment)
    assert (attempt["status"], attempt["connector_account"]) == ("captured", account["id"])
    status = await case.provider_status(scenario, attempt["id"])
    assert status == case.provider_statuses["captured"]
    events = await scenario.event_types(payment["id"])
    assert events[0] == "payment.created"
    assert events[-1] == "payment.succeeded"
    assert events.count("payment.succeeded") == 1


async def test_authorize_then_partial_capture(scenario: Scenario, case: ConnectorCase) -> None:
    account = await case.create_account(scenario)
    if "manual_capture" not in account["capabilities"]:
        refused = await scenario.create_payment(case.purchase_body(1000, "manual"))
        assert_error(refused.json(), 400, refused.status_code, "capability_not_supported")
        pytest.skip(f"{case.name} has no manual capture (refused: capability_not_supported)")
    require(account, "partial_capture", "partial capture")
    payment = await case.pay(scenario, 1000, "manual")
    assert payment["status"] == "requires_capture"
    assert (payment["amount_capturable"], payment["amount_received"]) == (1000, 0)
    authorization = last_authorization(payment)
    assert authorization["status"] == "authorized"
    status = await case.provider_status(scenario, authorization["id"])
    assert status == case.provider_statuses["authorized"]

    captured = await scenario.api.post(
        f"/v1/payments/{payment['id']}/capture", {"amount_to_capture": 600}
    )
    assert captured.status_code == 200, captured.text
    after = captured.json()
    assert after["status"] == "succeeded"
    assert (after["amount_received"], after["amount_capturable"]) == (600, 0)
    [capture] = [a for a in after["attempts"] if a["operation"] == "capture"]
    assert (capture["amount"], capture["connector_account"]) == (600, account["id"])
    status = await case.provider_status(scenario, authorization["id"])
    assert status == case.provider_statuses["captured"]

    again = await scenario.api.post(f"/v1/payments/{payment['id']}/capture", {})
    assert_error(again.json(), 409, again.status_code, "payment_invalid_state")
    assert (await scenario.event_types(payment["id"]))[-2:] == [
        "payment.requires_capture",
        "payment.succeeded",
    ]


async def test_void(scenario: Scenario, case: ConnectorCase) -> None:
    account = await case.create_account(scenario)
    require(account, "manual_capture", "manual capture (so nothing to void)")
    require(account, "void", "void")
    payment = await case.pay(scenario, 1200, "manual")
    assert payment["status"] == "requires_capture"

    canceled = await scenario.api.post(
        f"/v1/payments/{payment['id']}/cancel", {"cancellation_reason": "requested_by_customer"}
    )
    assert canceled.status_code == 200, canceled.text
    after = canceled.json()
    assert after["status"] == "canceled"
    assert (after["amount_capturable"], after["amount_received"]) == (0, 0)
    [void] = [a for a in after["attempts"] if a["operation"] == "void"]
    assert void["connector_account"] == account["id"]
    status = await case.provider_status(scenario, last_authorization(payment)["id"])
    assert status == case.provider_statuses["voided"]
    late = await scenario.api.post(f"/v1/payments/{payment['id']}/capture", {})
    assert_error(late.json(), 409, late.status_code, "payment_invalid_state")
    assert (await scenario.event_types(payment["id"]))[-1] == "payment.canceled"


async def test_partial_then_full_refund(scenario: Scenario, case: ConnectorCase) -> None:
    account = await case.create_account(scenario)
    require(account, "refund", "refunds")
    require(account, "partial_refund", "partial refunds")
    payment = await case.pay(scenario, 1000)
    assert payment["status"] == "succeeded"
    authorization = last_authorization(payment)

    partial = await scenario.api.post("/v1/refunds", {"payment": payment["id"], "amount": 300})
    assert partial.status_code == 200, partial.text
    first = partial.json()
    assert (first["amount"], first["currency"]) == (300, case.currency)
    if first["status"] == "pending":  # Paystack settles refunds later: by its webhook here
        assert (await scenario.payment(payment["id"]))["amount_refunded"] == 300
        await case.settle_refund(scenario, account, first, via="webhook")
    assert (await scenario.api.get(f"/v1/refunds/{first['id']}")).json()["status"] == "succeeded"
    assert await case.provider_refunded(scenario, authorization["id"]) == 300

    rest = await scenario.api.post("/v1/refunds", {"payment": payment["id"]})
    assert rest.status_code == 200, rest.text
    second = rest.json()
    assert second["amount"] == 700
    if second["status"] == "pending":  # ... and by status sync here
        await case.settle_refund(scenario, account, second, via="status_sync")
    assert (await scenario.api.get(f"/v1/refunds/{second['id']}")).json()["status"] == "succeeded"

    after = await scenario.payment(payment["id"])
    assert (after["status"], after["amount_received"], after["amount_refunded"]) == (
        "succeeded",
        1000,
        1000,
    )
    assert await case.provider_refunded(scenario, authorization["id"]) == 1000
    if "refunded" in case.provider_statuses:
        status = await case.provider_status(scenario, authorization["id"])
        assert status == case.provider_statuses["refunded"]
    more = await scenario.api.post("/v1/refunds", {"payment": payment["id"], "amount": 1})
    assert_error(more.json(), 422, more.status_code, "charge_already_refunded")
    for refund in (first, second):
        types = await scenario.event_types(refund["id"])
        assert types == ["refund.created", "refund.succeeded"], types


async def test_decline(scenario: Scenario, case: ConnectorCase) -> None:
    account = await case.create_account(scenario)
    payment = await case.decline(scenario, 1000)
    assert payment["status"] == "requires_payment_method"
    assert payment["amount_received"] == 0
    assert payment["last_payment_error"]["code"] == case.decline_code
    [attempt] = authorizations(payment)
    assert (attempt["status"], attempt["error_code"]) == ("declined", case.decline_code)
    assert attempt["connector_account"] == account["id"]
    status = await case.provider_status(scenario, attempt["id"])
    assert status == case.provider_statuses["declined"]
    assert (await scenario.event_types(payment["id"]))[-1] == "payment.payment_failed"


async def test_three_d_secure_or_redirect(scenario: Scenario, case: ConnectorCase) -> None:
    account = await case.create_account(scenario)
    if not {"three_ds", "redirect"} & set(account["capabilities"]):
        pytest.skip(f"{case.name} has neither 3-D Secure nor a hosted page")
    payment = await case.start_action(scenario, 2500)
    assert payment["status"] == "requires_action"
    assert payment["amount_received"] == 0
    case.check_action_url(redirect_url(payment))
    assert payment["next_action"]["redirect_to_url"]["return_url"] == RETURN_URL
    assert last_authorization(payment)["status"] == "requires_action"

    await case.complete_action(scenario, payment)
    back = await scenario.return_from_provider(payment["id"])
    assert back.status_code == 303, back.text
    target = urlsplit(back.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == RETURN_URL
    assert parse_qs(target.query) == {"payment": [payment["id"]], "redirect_status": ["succeeded"]}

    after = await scenario.payment(payment["id"])
    assert (after["status"], after["amount_received"], after["next_action"]) == (
        "succeeded",
        2500,
        None,
    )
    assert last_authorization(after)["status"] == "captured"
    events = await scenario.event_types(payment["id"])
    assert events[-2:] == ["payment.requires_action", "payment.succeeded"]
    again = await scenario.return_from_provider(payment["id"])
    assert again.status_code == 303
    assert await scenario.event_types(payment["id"]) == events


async def _paid_at_provider(
    s: Scenario, case: ConnectorCase, account: Json
) -> tuple[Json, Webhook]:
    """A payment the customer completed at the provider but has not come back from, and
    the provider's signed event saying it succeeded."""
    require(account, "webhooks", "webhooks (it answers every call synchronously)")
    payment = await case.start_action(s, 3000)
    assert payment["status"] == "requires_action"
    await case.complete_action(s, payment)
    hook = await case.success_webhook(s, payment)
    assert (await s.payment(payment["id"]))["status"] == "requires_action"
    return payment, hook


async def test_success_arrives_by_webhook(scenario: Scenario, case: ConnectorCase) -> None:
    account = await case.create_account(scenario)
    payment, hook = await _paid_at_provider(scenario, case, account)
    answer = await scenario.deliver(account["id"], hook)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": True, "status": "applied"}
    after = await scenario.payment(payment["id"])
    assert (after["status"], after["amount_received"]) == ("succeeded", 3000)
    assert last_authorization(after)["status"] == "captured"
    assert (await scenario.event_types(payment["id"]))[-1] == "payment.succeeded"


async def test_duplicate_webhook_changes_nothing(scenario: Scenario, case: ConnectorCase) -> None:
    account = await case.create_account(scenario)
    payment, hook = await _paid_at_provider(scenario, case, account)
    first = await scenario.deliver(account["id"], hook)
    assert first.json() == {"received": True, "status": "applied"}
    events = await scenario.event_types(payment["id"])
    again = await scenario.deliver(account["id"], hook)
    assert again.status_code == 200, again.text
    assert again.json() == {"received": True, "duplicate": True}
    assert await scenario.event_types(payment["id"]) == events
    assert events.count("payment.succeeded") == 1
    assert await scenario.inbox_size(account["id"]) == 1
    assert (await scenario.payment(payment["id"]))["amount_received"] == 3000


async def test_bad_signature_applies_nothing(scenario: Scenario, case: ConnectorCase) -> None:
    account = await case.create_account(scenario)
    payment, hook = await _paid_at_provider(scenario, case, account)
    signature_header = next(k for k in hook.headers if k.lower().endswith("signature"))
    forgeries = {
        # Same meaning, other bytes: the signature covers the raw body.
        "reformatted": hook.tampered(b'"status"', b'"status" '),
        "unsigned": Webhook(
            hook.body, {k: v for k, v in hook.headers.items() if k != signature_header}
        ),
        "wrong signature": Webhook(
            hook.body, {**hook.headers, signature_header: hook.headers[signature_header][:-4]}
        ),
    }
    for what, forged in forgeries.items():
        answer = await scenario.deliver(account["id"], forged)
        assert answer.status_code == 400, (what, answer.text)
        assert answer.json()["error"]["code"] == "signature_invalid", what
    assert await scenario.inbox_size(account["id"]) == 0
    still = await scenario.payment(payment["id"])
    assert (still["status"], still["amount_received"]) == ("requires_action", 0)

    genuine = await scenario.deliver(account["id"], hook)
    assert genuine.json() == {"received": True, "status": "applied"}
    assert (await scenario.payment(payment["id"]))["status"] == "succeeded"


async def test_timeout_then_processing_then_status_sync(
    hasty_scenario: Scenario, case: ConnectorCase
) -> None:
    s = hasty_scenario
    account = await case.create_account(s)
    body = await case.timing_out_purchase(s, account)
    response = await s.create_payment(body)
    assert response.status_code == 200, response.text
    payment = response.json()
    assert payment["status"] == "processing"
    assert payment["amount_received"] == 0
    [attempt] = authorizations(payment)
    assert (attempt["status"], attempt["connector_account"]) == ("unknown", account["id"])
    # The provider did charge: only paygrid does not know yet.
    status = await case.provider_status(s, attempt["id"])
    assert status == case.provider_statuses["captured"]
    assert (await s.event_types(payment["id"]))[-1] == "payment.processing"

    await s.sync(ahead=timedelta(seconds=30))  # the first check is due after 60 s
    assert (await s.payment(payment["id"]))["status"] == "processing"

    report = await s.sync()
    assert report.resolved >= 1
    after = await s.payment(payment["id"])
    assert (after["status"], after["amount_received"]) == ("succeeded", body["amount"])
    [settled] = authorizations(after)
    assert (settled["id"], settled["status"]) == (attempt["id"], "captured")
    assert (await s.event_types(payment["id"]))[-1] == "payment.succeeded"
