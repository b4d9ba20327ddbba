"""Reconciliation runs against the Paystack fake (issue 15 §2 and §4): one of each injected
discrepancy is reported exactly, typed; ``heal`` syncs the status drift through the payment
service (its event, an audit entry naming the run) and imports the dashboard refund, while
money discrepancies stay open; running again changes nothing; a resolve is audited; and a
run never lists another merchant's objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from paygrid import reconcile_cli
from paygrid.bootstrap import standard_registry
from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant
from paygrid.services.reconciliation import jobs as reconciliation_jobs
from paygrid.services.reconciliation import runs as reconciliation_runs
from paygrid.services.settlements import jobs as settlement_jobs
from paygrid.worker.registry import JobContext
from tests.conftest import Api
from tests.fakes.paystack import FakeMerchant, PaystackFake
from tests.integration.test_settlements_paystack import _pay, _paystack_account, paystack_fee

SIX = {
    "fee_mismatch",
    "missing_at_provider",
    "missing_in_paygrid",
    "amount_mismatch",
    "status_mismatch",
    "refund_mismatch",
}


async def _job(deps: Deps, kind: str, payload: dict[str, Any]) -> None:
    found = standard_registry().get(kind)
    assert found is not None
    context = JobContext(deps=deps, job_id="job_test", attempt=1, worker_id="test")
    await found.handler(payload, context)


async def _run(api: Api, deps: Deps, account: str, *, heal: bool) -> dict[str, Any]:
    """Create a run over the last and next hour, let the worker process it, return it."""
    now = int(deps.clock.now().timestamp())
    made = await api.post(
        "/v1/reconciliation_runs",
        {"connector_account": account, "from": now - 3600, "to": now + 3600, "heal": heal},
    )
    assert made.status_code == 200, made.text
    assert (made.json()["object"], made.json()["status"]) == ("reconciliation_run", "queued")
    await _job(deps, reconciliation_runs.RUN, {"run": made.json()["id"]})
    done: dict[str, Any] = (await api.get(f"/v1/reconciliation_runs/{made.json()['id']}")).json()
    assert done["status"] == "completed", done
    return done


async def _discrepancies(api: Api, **filters: str) -> list[dict[str, Any]]:
    answer = await api.get("/v1/reconciliation_discrepancies", limit=100, **filters)
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def _unpaid(api: Api) -> tuple[str, str]:
    """A payment waiting on Paystack's hosted page; its id and Paystack reference."""
    started = await api.post(
        "/v1/payments",
        {
            "amount": 250_000,
            "currency": "NGN",
            "confirm": True,
            "receipt_email": "ada@example.com",
            "payment_method_types": ["card"],
            "return_url": "https://shop.test/done",
        },
    )
    assert started.status_code == 200, started.text
    payment = started.json()
    assert payment["status"] == "requires_action", payment
    return payment["id"], payment["attempts"][0]["provider_reference"]


async def _events(pool: asyncpg.Pool, object_id: str) -> list[str]:
    rows = await pool.fetch("SELECT type FROM events WHERE object_id = $1 ORDER BY id", object_id)
    return [r["type"] for r in rows]


async def test_six_discrepancies_are_found_typed_healed_safely_and_never_twice(
    api: Api,
    client: httpx.AsyncClient,
    deps: Deps,
    pool: asyncpg.Pool,
    merchant: NewMerchant,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    fake = paystack_merchant
    account = await _paystack_account(api, paystack_fake, fake)
    await _pay(api, client, fake, 100_000)  # agrees everywhere
    fee_payment, fee_ref = await _pay(api, client, fake, 500_000)
    await fake.inject("fee", reference=fee_ref, fee=9_999)
    await fake.settle([fee_ref])
    await _job(deps, settlement_jobs.IMPORT, {"connector_account": account})
    missing, missing_ref = await _pay(api, client, fake, 200_000)
    await fake.inject("missing_charge", reference=missing_ref)
    unknown = await fake.inject("unknown_charge", amount=123_400, currency="NGN")
    amount_payment, amount_ref = await _pay(api, client, fake, 300_000)
    await fake.inject("amount", reference=amount_ref, amount=310_000)
    drifted, drifted_ref = await _unpaid(api)
    await fake.inject("status", reference=drifted_ref, status="success")
    refunded, refunded_ref = await _pay(api, client, fake, 400_000)
    dashboard = await fake.inject("dashboard_refund", reference=refunded_ref, amount=100_000)

    first = await _run(api, deps, account, heal=False)
    assert {k for k, v in first["counts"].items() if v} == SIX
    assert all(first["counts"][k] == 1 for k in SIX) and first["counts"]["currency_mismatch"] == 0
    assert first["objects_compared"] > 0 and first["healed"] == 0
    found = {d["type"]: d for d in await _discrepancies(api, run=first["id"])}
    assert set(found) == SIX and all(d["status"] == "open" for d in found.values())
    assert (found["fee_mismatch"]["payment"], found["fee_mismatch"]["paygrid_value"]) == (
        fee_payment,
        "9999",
    )
    assert found["fee_mismatch"]["provider_value"] == str(paystack_fee(500_000))
    assert found["missing_at_provider"]["payment"] == missing
    assert found["missing_in_paygrid"]["provider_reference"] == unknown["reference"]
    assert (found["amount_mismatch"]["payment"], found["amount_mismatch"]["provider_value"]) == (
        amount_payment,
        "310000",
    )
    assert (found["status_mismatch"]["payment"], found["status_mismatch"]["healable"]) == (
        drifted,
        True,
    )
    assert found["refund_mismatch"]["provider_reference"] == str(dashboard["id"])
    assert found["refund_mismatch"]["payment"] == refunded
    assert (await api.get(f"/v1/payments/{drifted}")).json()["status"] == "requires_action"

    healing = await _run(api, deps, account, heal=True)
    assert sum(healing["counts"].values()) == 0  # nothing new
    assert (healing["already_known"], healing["healed"]) == (6, 2)
    assert (await api.get(f"/v1/payments/{drifted}")).json()["status"] == "succeeded"
    assert "payment.succeeded" in await _events(pool, drifted)
    actors = await pool.fetch(
        "SELECT actor FROM audit_log WHERE object_id = $1 AND merchant_id = $2",
        drifted,
        merchant.id,
    )
    assert f"reconciliation_run:{healing['id']}" in {r["actor"] for r in actors}
    (imported,) = (await api.get("/v1/refunds", payment=refunded)).json()["data"]
    assert (imported["status"], imported["amount"]) == ("succeeded", 100_000)
    assert await _events(pool, imported["id"]) == ["refund.created", "refund.succeeded"]
    statuses = {d["type"]: d["status"] for d in await _discrepancies(api, run=first["id"])}
    assert statuses == {
        **{t: "open" for t in SIX},
        "status_mismatch": "healed",
        "refund_mismatch": "healed",
    }
    events_before = await pool.fetchval(
        "SELECT count(*) FROM events WHERE merchant_id = $1", merchant.id
    )

    again = await _run(api, deps, account, heal=True)
    assert (sum(again["counts"].values()), again["healed"], again["already_known"]) == (0, 0, 4)
    assert await _discrepancies(api, run=again["id"]) == []
    assert len(await _discrepancies(api)) == 6
    assert len((await api.get("/v1/refunds", payment=refunded)).json()["data"]) == 1
    events_after = await pool.fetchval(
        "SELECT count(*) FROM events WHERE merchant_id = $1 AND type <> 'reconciliation_run.completed'",
        merchant.id,
    )
    assert events_after == events_before - 2  # the two runs' own completion events aside

    amount_issue = found["amount_mismatch"]["id"]
    resolved = await api.post(
        f"/v1/reconciliation_discrepancies/{amount_issue}/resolve",
        {"note": "Paystack confirmed the 310,000 charge"},
    )
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["resolution_note"]) == (
        "resolved",
        "Paystack confirmed the 310,000 charge",
    )
    audited = await pool.fetchrow(
        "SELECT actor, after FROM audit_log WHERE object_id = $1"
        " AND action = 'reconciliation_discrepancy.updated'",
        amount_issue,
    )
    assert audited is not None and audited["actor"].startswith("api_key:")
    assert audited["after"]["resolution_note"] == "Paystack confirmed the 310,000 charge"
    twice = await api.post(
        f"/v1/reconciliation_discrepancies/{amount_issue}/resolve", {"note": "again"}
    )
    assert (twice.status_code, twice.json()["error"]["code"]) == (400, "discrepancy_not_open")
    opened = await _discrepancies(api, status="open", type="fee_mismatch")
    assert [d["type"] for d in opened] == ["fee_mismatch"]


async def test_a_run_never_lists_another_merchants_objects(
    api: Api,
    client: httpx.AsyncClient,
    deps: Deps,
    other_merchant: NewMerchant,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    other = Api(client, other_merchant.key("secret", livemode=False))
    their_fake = await paystack_fake.new_merchant()
    mine = await _paystack_account(api, paystack_fake, paystack_merchant)
    theirs = await _paystack_account(other, paystack_fake, their_fake)
    my_payment, my_ref = await _pay(api, client, paystack_merchant, 100_000)
    their_payment, their_ref = await _pay(other, client, their_fake, 100_000)
    await paystack_merchant.inject("missing_charge", reference=my_ref)
    await their_fake.inject("missing_charge", reference=their_ref)
    their_unknown = await their_fake.inject("unknown_charge", amount=5_000)

    my_run = await _run(api, deps, mine, heal=True)
    their_run = await _run(other, deps, theirs, heal=True)

    mine_found = await _discrepancies(api)
    assert [(d["type"], d["payment"]) for d in mine_found] == [("missing_at_provider", my_payment)]
    assert {d["run"] for d in mine_found} == {my_run["id"]}
    theirs_found = await _discrepancies(other)
    assert {(d["type"], d["payment"] or d["provider_reference"]) for d in theirs_found} == {
        ("missing_at_provider", their_payment),
        ("missing_in_paygrid", their_unknown["reference"]),
    }
    assert (await api.get(f"/v1/reconciliation_runs/{their_run['id']}")).status_code == 404
    assert await _discrepancies(api, run=their_run["id"]) == []
    resolving = await api.post(
        f"/v1/reconciliation_discrepancies/{theirs_found[0]['id']}/resolve", {"note": "mine?"}
    )
    assert resolving.status_code == 404
    refused = await api.post(
        "/v1/reconciliation_runs",
        {"connector_account": theirs, "from": 0, "to": 3600, "heal": False},
    )
    assert refused.status_code == 404


async def test_the_daily_run_is_queued_once_per_live_account_and_made_once(
    api: Api,
    deps: Deps,
    pool: asyncpg.Pool,
    merchant: NewMerchant,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    live = "ca_" + merchant.id.removeprefix("mer_")  # a live account (never called here)
    await pool.execute("UPDATE merchants SET timezone = 'Africa/Lagos' WHERE id = $1", merchant.id)
    await pool.execute(
        "INSERT INTO connector_accounts (id, merchant_id, livemode, provider, currencies,"
        " credentials, secret_key_last4) VALUES ($1, $2, true, 'paystack', '{NGN}', '\\x00',"
        " 'abcd')",
        live,
        merchant.id,
    )
    try:
        for _ in range(3):  # three workers' passes
            await _job(deps, reconciliation_jobs.DAILY_DUE, {})
        queued = await pool.fetch(
            "SELECT run_at, payload FROM jobs WHERE kind = $1 AND payload->>'connector_account' = $2",
            reconciliation_jobs.DAILY,
            live,
        )
        (job,) = queued
        due = job["run_at"].astimezone(ZoneInfo("Africa/Lagos"))
        assert (due.hour, due.minute) == (6, 0) and due > deps.clock.now()
        assert job["payload"]["to"] - job["payload"]["from"] == 24 * 3600
    finally:
        await pool.execute("DELETE FROM jobs WHERE payload->>'connector_account' = $1", live)
        await pool.execute("UPDATE connector_accounts SET status = 'disabled' WHERE id = $1", live)

    account = await _paystack_account(api, paystack_fake, paystack_merchant)
    now = int(deps.clock.now().timestamp())
    window = {"connector_account": account, "from": now - 3600, "to": now + 3600}
    for _ in range(2):  # a retried or duplicated job makes no second run
        await _job(deps, reconciliation_jobs.DAILY, window)
    (run,) = (await api.get("/v1/reconciliation_runs")).json()["data"]
    assert (run["trigger"], run["status"], run["heal"]) == ("schedule", "completed", False)


async def test_the_cli_runs_one_run_in_process(
    api: Api,
    client: httpx.AsyncClient,
    deps: Deps,
    pool: asyncpg.Pool,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    account = await _paystack_account(api, paystack_fake, paystack_merchant)
    _, reference = await _pay(api, client, paystack_merchant, 120_000)
    await paystack_merchant.inject("amount", reference=reference, amount=121_000)
    now = deps.clock.now()
    window = (now - timedelta(hours=1), now + timedelta(hours=1))
    run = await reconcile_cli.reconcile_account(pool, account, window, heal=False)
    assert (run.trigger, run.status, run.counts["amount_mismatch"]) == ("cli", "completed", 1)
    assert run.objects_compared >= 2
    assert reconcile_cli.moment("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert reconcile_cli.moment("1796083200") == datetime(2026, 12, 1, tzinfo=UTC)
