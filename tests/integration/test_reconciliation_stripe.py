"""Reconciliation runs for Stripe accounts (issue 15 §2 and §4), against localstripe behind
the Stripe fake of tests/fakes/stripe_balance (whose lists filter by ``created``, paginate
and show each secret key only its own objects): one of each injected discrepancy is
reported exactly, typed; ``heal`` syncs the status drift through the payment service (its
events, an audit entry naming the run) and imports the dashboard refund, while money
discrepancies stay open; running again changes nothing; and two merchants with Stripe
accounts of the same shape never see each other's objects; live Stripe accounts get the daily
run at 06:00 in the merchant's time zone (set through ``POST /v1/account``)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import asyncpg
import httpx

from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant
from paygrid.services.reconciliation import jobs as reconciliation_jobs
from tests.conftest import Api, card
from tests.fakes.stripe_balance import StripeFake
from tests.fakes.stripe_balance.ledger import default_fee
from tests.integration.test_reconciliation import SIX, _discrepancies, _events, _job, _run
from tests.integration.test_settlements_stripe import _import, _pay, _stripe_account

ALWAYS_3DS_CARD = "4000002760003184"  # localstripe asks for 3-D Secure on every charge


async def _unpaid(api: Api) -> tuple[str, str]:
    """A payment waiting on 3-D Secure at Stripe; its id and PaymentIntent."""
    started = await api.post(
        "/v1/payments",
        {
            "amount": 20_000,
            "currency": "usd",
            "confirm": True,
            "payment_method_data": card(ALWAYS_3DS_CARD),
            "return_url": "https://shop.test/done",
        },
    )
    assert started.status_code == 200, started.text
    payment = started.json()
    assert payment["status"] == "requires_action", payment
    return str(payment["id"]), str(payment["attempts"][0]["provider_reference"])


async def test_six_stripe_discrepancies_are_found_typed_healed_safely_and_never_twice(
    api: Api,
    deps: Deps,
    pool: asyncpg.Pool,
    merchant: NewMerchant,
    stripe_fake: StripeFake,
) -> None:
    account, stripe = await _stripe_account(api, stripe_fake)
    await _pay(api, 10_000)  # agrees everywhere
    fee_payment, fee_pi = await _pay(api, 50_000)
    await stripe.pay_out([fee_pi])
    await _import(deps, account)  # paygrid records the payout's fee...
    await stripe.inject("fee", payment_intent=fee_pi, fee=999)  # ...Stripe's later differs
    missing, missing_pi = await _pay(api, 20_000)
    await stripe.inject("missing_charge", payment_intent=missing_pi)
    unknown = await stripe.inject("unknown_charge", amount=12_340, currency="usd")
    amount_payment, amount_pi = await _pay(api, 30_000)
    await stripe.inject("amount", payment_intent=amount_pi, amount=31_000)
    drifted, drifted_pi = await _unpaid(api)
    await stripe.inject("status", payment_intent=drifted_pi, status="succeeded")
    refunded, refunded_pi = await _pay(api, 40_000)
    dashboard = await stripe.inject("dashboard_refund", payment_intent=refunded_pi, amount=10_000)

    first = await _run(api, deps, account, heal=False)
    assert first["counts"] == {**dict.fromkeys(SIX, 1), "currency_mismatch": 0}
    assert first["objects_compared"] > 0 and first["healed"] == 0
    found = {d["type"]: d for d in await _discrepancies(api, run=first["id"])}
    assert set(found) == SIX and all(d["status"] == "open" for d in found.values())
    assert (found["fee_mismatch"]["payment"], found["fee_mismatch"]["paygrid_value"]) == (
        fee_payment,
        str(default_fee(50_000)),
    )
    assert found["fee_mismatch"]["provider_value"] == "999"
    missing_found = found["missing_at_provider"]
    assert (missing_found["payment"], missing_found["provider_reference"]) == (missing, missing_pi)
    assert found["missing_in_paygrid"]["provider_reference"] == unknown["payment_intent"]
    assert found["missing_in_paygrid"]["provider_value"] == "12340"
    assert (found["amount_mismatch"]["payment"], found["amount_mismatch"]["provider_value"]) == (
        amount_payment,
        "31000",
    )
    assert (found["status_mismatch"]["payment"], found["status_mismatch"]["healable"]) == (
        drifted,
        True,
    )
    assert found["refund_mismatch"]["provider_reference"] == dashboard["refund"]
    assert found["refund_mismatch"]["payment"] == refunded
    assert (await api.get(f"/v1/payments/{drifted}")).json()["status"] == "requires_action"

    healing = await _run(api, deps, account, heal=True)
    assert sum(healing["counts"].values()) == 0  # nothing new
    assert (healing["already_known"], healing["healed"]) == (6, 2)
    assert (await api.get(f"/v1/payments/{drifted}")).json()["status"] == "succeeded"
    # The payment service's own event for the move, and the audit entry of the update.
    assert (await _events(pool, drifted))[-1] == "payment.succeeded"
    audited = await pool.fetch(
        "SELECT actor, action FROM audit_log WHERE object_id = $1 AND merchant_id = $2",
        drifted,
        merchant.id,
    )
    assert (f"reconciliation_run:{healing['id']}", "payment.updated") in {
        (r["actor"], r["action"]) for r in audited
    }
    (imported,) = (await api.get("/v1/refunds", payment=refunded)).json()["data"]
    assert (imported["status"], imported["amount"]) == ("succeeded", 10_000)
    assert await _events(pool, imported["id"]) == ["refund.created", "refund.succeeded"]
    statuses = {d["type"]: d["status"] for d in await _discrepancies(api, run=first["id"])}
    assert statuses == {
        **{t: "open" for t in SIX},
        "status_mismatch": "healed",
        "refund_mismatch": "healed",
    }
    other_events = (
        "SELECT count(*) FROM events WHERE merchant_id = $1"
        " AND type <> 'reconciliation_run.completed'"
    )
    events_before = await pool.fetchval(other_events, merchant.id)

    again = await _run(api, deps, account, heal=True)
    assert (sum(again["counts"].values()), again["healed"], again["already_known"]) == (0, 0, 4)
    assert await _discrepancies(api, run=again["id"]) == []
    assert len(await _discrepancies(api)) == 6
    assert len((await api.get("/v1/refunds", payment=refunded)).json()["data"]) == 1
    assert await pool.fetchval(other_events, merchant.id) == events_before  # nothing emitted


async def test_a_stripe_run_never_lists_another_merchants_objects(
    api: Api,
    client: httpx.AsyncClient,
    deps: Deps,
    other_merchant: NewMerchant,
    stripe_fake: StripeFake,
) -> None:
    other = Api(client, other_merchant.key("secret", livemode=False))
    mine, my_stripe = await _stripe_account(api, stripe_fake)
    theirs, their_stripe = await _stripe_account(other, stripe_fake)
    my_payment, my_pi = await _pay(api, 10_000)
    their_payment, their_pi = await _pay(other, 10_000)
    await my_stripe.inject("missing_charge", payment_intent=my_pi)
    await their_stripe.inject("missing_charge", payment_intent=their_pi)
    their_unknown = await their_stripe.inject("unknown_charge", amount=5_000)
    await their_stripe.inject("dashboard_refund", payment_intent=their_unknown["payment_intent"])

    my_run = await _run(api, deps, mine, heal=True)
    their_run = await _run(other, deps, theirs, heal=True)

    mine_found = await _discrepancies(api)
    assert [(d["type"], d["payment"]) for d in mine_found] == [("missing_at_provider", my_payment)]
    assert {d["run"] for d in mine_found} == {my_run["id"]}
    assert my_run["objects_compared"] == 2  # my one payment, then its lookup at Stripe
    theirs_found = await _discrepancies(other)
    assert {(d["type"], d["payment"] or d["provider_reference"]) for d in theirs_found} == {
        ("missing_at_provider", their_payment),
        ("missing_in_paygrid", their_unknown["payment_intent"]),
    }
    assert (await api.get(f"/v1/reconciliation_runs/{their_run['id']}")).status_code == 404
    assert await _discrepancies(api, run=their_run["id"]) == []


async def test_live_stripe_accounts_get_the_daily_run_at_six_in_the_merchants_zone(
    api: Api, deps: Deps, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    live = "ca_s" + merchant.id.removeprefix("mer_")  # a live account (never called here)
    assert (await api.post("/v1/account", {"timezone": "Asia/Kolkata"})).status_code == 200
    await pool.execute(
        "INSERT INTO connector_accounts (id, merchant_id, livemode, provider, currencies,"
        " credentials, secret_key_last4) VALUES ($1, $2, true, 'stripe', '{USD}', '\\x00',"
        " 'abcd')",
        live,
        merchant.id,
    )
    try:
        for _ in range(2):  # two workers' passes
            await _job(deps, reconciliation_jobs.DAILY_DUE, {})
        (job,) = await pool.fetch(
            "SELECT run_at, payload FROM jobs WHERE kind = $1 AND payload->>'connector_account' = $2",
            reconciliation_jobs.DAILY,
            live,
        )
        due = job["run_at"].astimezone(ZoneInfo("Asia/Kolkata"))
        assert (due.hour, due.minute) == (6, 0) and due > deps.clock.now()
    finally:
        await pool.execute("DELETE FROM jobs WHERE payload->>'connector_account' = $1", live)
        await pool.execute("UPDATE connector_accounts SET status = 'disabled' WHERE id = $1", live)
