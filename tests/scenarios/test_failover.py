"""Failover between a merchant's connector accounts, for every connector: a payment moves on
when the first account provably was not reached (it refuses connections), and never when the
first account may have charged (a timeout after processing), in which case status sync
settles it at that same account."""

from __future__ import annotations

from tests.fakes.paystack import FakeMerchant, PaystackFake
from tests.scenarios.conftest import (
    ConnectorCase,
    Json,
    PaystackCase,
    Scenario,
    authorizations,
    redirect_url,
)


async def route(s: Scenario, currency: str, accounts: list[Json]) -> None:
    """A routing rule that tries ``accounts`` in order."""
    response = await s.api.post(
        "/v1/routing_rules",
        {
            "priority": 1,
            "conditions": {"currency": [currency]},
            "destinations": [{"connector_account": a["id"]} for a in accounts],
            "split": "priority",
        },
    )
    assert response.status_code == 200, response.text


async def test_failover_when_the_first_account_refuses_connections(
    scenario: Scenario, case: ConnectorCase
) -> None:
    down = await case.create_account(scenario, unreachable=True)
    up = await case.create_account(scenario)
    await route(scenario, case.currency, [down, up])

    payment = await case.pay(scenario, 1800)
    assert payment["status"] == "succeeded"
    assert payment["amount_received"] == 1800
    assert (payment["connector"], payment["connector_account"]) == (case.name, up["id"])
    first, second = authorizations(payment)
    assert (first["connector_account"], first["status"]) == (down["id"], "unreachable")
    assert first["error_code"] == "provider_unavailable"
    assert (second["connector_account"], second["status"]) == (up["id"], "captured")
    # Only the account that answered holds a charge.
    assert await case.provider_attempt_ids(scenario, payment["id"]) == [second["id"]]
    status = await case.provider_status(scenario, second["id"])
    assert status == case.provider_statuses["captured"]
    events = await scenario.event_types(payment["id"])
    assert events[-1] == "payment.succeeded"
    assert events.count("payment.succeeded") == 1


async def test_no_failover_after_a_timeout(hasty_scenario: Scenario, case: ConnectorCase) -> None:
    s = hasty_scenario
    first = await case.create_account(s)
    second = await case.create_account(s)
    await route(s, case.currency, [first, second])
    body = await case.timing_out_first_purchase(s, first)

    response = await s.create_payment(body)
    assert response.status_code == 200, response.text
    payment = response.json()
    assert payment["status"] == "processing"
    assert payment["connector_account"] == first["id"]
    [attempt] = authorizations(payment)
    assert (attempt["connector_account"], attempt["status"]) == (first["id"], "unknown")
    # The first account processed it; the second was never asked.
    assert await case.provider_attempt_ids(s, payment["id"]) == [attempt["id"]]

    report = await s.sync()
    assert report.resolved >= 1
    after = await s.payment(payment["id"])
    outcome = case.status_after_first_timeout
    expected_status = {"captured": "succeeded", "requires_action": "requires_action"}[outcome]
    assert (after["status"], after["connector_account"]) == (expected_status, first["id"])
    if outcome == "captured":
        [settled] = authorizations(after)
        assert (settled["id"], settled["status"]) == (attempt["id"], outcome)
        assert await case.provider_status(s, attempt["id"]) == case.provider_statuses[outcome]
        assert await case.provider_attempt_ids(s, payment["id"]) == [attempt["id"]]
        return
    # A hosted page whose address was lost with the timed-out answer cannot be paid by
    # anyone: sync closes that attempt and opens a fresh page, at the same account.
    lost, fresh = authorizations(after)
    assert (lost["id"], lost["status"], lost["error_code"]) == (
        attempt["id"],
        "failed",
        "redirect_lost",
    )
    assert (fresh["connector_account"], fresh["status"]) == (first["id"], "requires_action")
    assert {a["connector_account"] for a in authorizations(after)} == {first["id"]}
    assert after["next_action"]["redirect_to_url"]["url"]


async def test_a_hosted_payment_recovered_by_status_sync_can_be_paid(
    hasty_scenario: Scenario, paystack_fake: PaystackFake, paystack_merchant: FakeMerchant
) -> None:
    s = hasty_scenario
    case = PaystackCase(paystack_fake, paystack_merchant)
    account = await case.create_account(s)
    response = await s.create_payment(await case.timing_out_first_purchase(s, account))
    payment = response.json()
    assert payment["status"] == "processing"
    await s.sync()
    recovered = await s.payment(payment["id"])
    assert recovered["status"] == "requires_action"
    case.check_action_url(redirect_url(recovered))
