"""Settlements from Stripe (localstripe behind the balance fake of tests/fakes/stripe_balance,
whose objects are checked against Stripe's fixtures by tests/connectors): payments made
through a Stripe account are paid out with fees, the import job stores the payout and its
balance transactions with ``gross - fee = net``, payments and refunds get their fee and net,
``payment.fee_settled`` is emitted once per payment, a re-import changes nothing, payouts
that do not add up are refused, and no merchant sees another's settlements."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
from asyncpg.connection import LoggedQuery

from paygrid.bootstrap import standard_registry
from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant
from paygrid.services.settlements import jobs as settlement_jobs
from paygrid.worker.registry import JobContext
from tests.conftest import SUCCESS_CARD, Api, card
from tests.fakes.stripe_balance import StripeFake, StripeFakeAccount
from tests.fakes.stripe_balance.ledger import default_fee


async def _stripe_account(api: Api, fake: StripeFake) -> tuple[str, StripeFakeAccount]:
    key = f"sk_test_settle{uuid.uuid4().hex[:16]}"
    made = await api.post(
        "/v1/connector_accounts",
        {"provider": "stripe", "credentials": {"secret_key": key}, "api_base": fake.base_url},
    )
    assert made.status_code == 200, made.text
    return str(made.json()["id"]), fake.account(key)


async def _pay(api: Api, amount: int) -> tuple[str, str]:
    """A succeeded payment at the Stripe account; its id and PaymentIntent."""
    paid = await api.post(
        "/v1/payments",
        {
            "amount": amount,
            "currency": "usd",
            "confirm": True,
            "payment_method_data": card(SUCCESS_CARD),
        },
    )
    assert paid.status_code == 200, paid.text
    payment = paid.json()
    assert payment["status"] == "succeeded", payment
    assert (payment["fee"], payment["net"]) == (None, None), "unknown until settled"
    reference = payment["attempts"][0]["provider_reference"]
    assert reference.startswith("pi_")
    return str(payment["id"]), str(reference)


async def _import(deps: Deps, account_id: str) -> None:
    """Run the import job as the worker runs it."""
    kind = standard_registry().get(settlement_jobs.IMPORT)
    assert kind is not None
    context = JobContext(deps=deps, job_id="job_test", attempt=1, worker_id="test")
    await kind.handler({"connector_account": account_id}, context)


async def _fee_events(pool: asyncpg.Pool, payment_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT data FROM events WHERE object_id = $1 AND type = 'payment.fee_settled'",
        payment_id,
    )
    return [r["data"]["object"] for r in rows]


async def test_a_payout_is_imported_with_fees_once(
    api: Api, deps: Deps, pool: asyncpg.Pool, stripe_fake: StripeFake
) -> None:
    account_id, stripe = await _stripe_account(api, stripe_fake)
    first, first_pi = await _pay(api, 10_000)
    second, second_pi = await _pay(api, 2_500)
    refunded = await api.post("/v1/refunds", {"payment": first, "amount": 1_000})
    assert refunded.status_code == 200, refunded.text
    refund_id = refunded.json()["id"]
    refund_ref = await pool.fetchval(
        "SELECT provider_reference FROM refunds WHERE id = $1", refund_id
    )
    await stripe.inject("fee", payment_intent=second_pi, fee=77)
    payout = await stripe.pay_out([first_pi, second_pi], [refund_ref])

    await _import(deps, account_id)

    listed = (await api.get("/v1/settlements", connector_account=account_id)).json()
    assert [s["provider_reference"] for s in listed["data"]] == [payout["id"]]
    settlement = listed["data"][0]
    fee = default_fee(10_000) + 77
    assert settlement["object"] == "settlement"
    assert (settlement["provider"], settlement["status"], settlement["currency"]) == (
        "stripe",
        "paid",
        "USD",
    )
    assert (settlement["gross"], settlement["fee"]) == (10_000 + 2_500 - 1_000, fee)
    assert settlement["net"] == settlement["gross"] - settlement["fee"] == payout["amount"]
    assert settlement["transaction_count"] == 3
    assert settlement["arrival_date"] == payout["arrival_date"]
    again = (await api.get(f"/v1/settlements/{settlement['id']}")).json()
    assert again == settlement

    lines = (await api.get(f"/v1/settlements/{settlement['id']}/transactions")).json()["data"]
    by_payment = {line["payment"]: line for line in lines if line["type"] == "charge"}
    assert set(by_payment) == {first, second}
    assert by_payment[second]["fee"] == 77
    (refund_line,) = [line for line in lines if line["type"] == "refund"]
    assert (refund_line["refund"], refund_line["gross"], refund_line["net"]) == (
        refund_id,
        -1_000,
        -1_000,
    )
    assert all(line["gross"] - line["fee"] == line["net"] for line in lines)

    paid_first = (await api.get(f"/v1/payments/{first}")).json()
    assert (paid_first["fee"], paid_first["net"]) == (
        default_fee(10_000),
        10_000 - default_fee(10_000),
    )
    assert (await api.get(f"/v1/payments/{second}")).json()["fee"] == 77
    refund = (await api.get(f"/v1/refunds/{refund_id}")).json()
    assert (refund["fee"], refund["net"]) == (0, -1_000)
    fee_events = await _fee_events(pool, second)
    assert [(e["id"], e["fee"], e["net"]) for e in fee_events] == [(second, 77, 2_500 - 77)]

    await _import(deps, account_id)  # idempotent: nothing stored or emitted twice
    assert len((await api.get("/v1/settlements", connector_account=account_id)).json()["data"]) == 1
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM settlement_transactions WHERE settlement_id = $1",
            settlement["id"],
        )
        == 3
    )
    assert len(await _fee_events(pool, first)) == 1
    assert len(await _fee_events(pool, second)) == 1


async def test_a_fee_known_later_is_settled_by_a_later_payout(
    api: Api, deps: Deps, pool: asyncpg.Pool, stripe_fake: StripeFake
) -> None:
    account_id, stripe = await _stripe_account(api, stripe_fake)
    early, early_pi = await _pay(api, 4_000)
    late, late_pi = await _pay(api, 6_000)
    await stripe.pay_out([early_pi], status="pending")
    await _import(deps, account_id)
    assert (await api.get(f"/v1/payments/{late}")).json()["fee"] is None
    pending = await stripe.pay_out([late_pi], status="pending")
    await _import(deps, account_id)
    assert (await api.get(f"/v1/payments/{late}")).json()["fee"] == default_fee(6_000)
    statuses = await api.get("/v1/settlements", connector_account=account_id, status="pending")
    assert [s["status"] for s in statuses.json()["data"]] == ["pending", "pending"]

    await stripe.set_payout_status(pending["id"], "paid")  # the payout reaches the bank
    await _import(deps, account_id)
    paid = await api.get("/v1/settlements", connector_account=account_id, status="paid")
    (settled,) = paid.json()["data"]
    assert (settled["provider_reference"], settled["transaction_count"]) == (pending["id"], 1)
    lines = await api.get(f"/v1/settlements/{settled['id']}/transactions")
    assert len(lines.json()["data"]) == 1, "its transactions are not imported twice"
    window = await api.get(
        "/v1/settlements",
        **{
            "arrival_date[gte]": pending["arrival_date"],
            "arrival_date[lt]": pending["arrival_date"] + 1,
        },
    )
    assert pending["id"] in {s["provider_reference"] for s in window.json()["data"]}
    before = await api.get("/v1/settlements", **{"arrival_date[lt]": pending["arrival_date"]})
    assert pending["id"] not in {s["provider_reference"] for s in before.json()["data"]}
    assert len(await _fee_events(pool, early)) == len(await _fee_events(pool, late)) == 1


async def test_a_transaction_is_linked_once_paygrid_learns_its_reference(
    api: Api, deps: Deps, pool: asyncpg.Pool, stripe_fake: StripeFake
) -> None:
    """The charge was paid out before paygrid knew its PaymentIntent (a create that timed
    out, found later by status sync): stored unlinked, then linked by a later import, with
    its fee and one ``payment.fee_settled``."""
    account_id, stripe = await _stripe_account(api, stripe_fake)
    payment, pi = await _pay(api, 7_000)
    await pool.execute(
        "UPDATE payment_attempts SET provider_reference = NULL WHERE payment_id = $1", payment
    )
    payout = await stripe.pay_out([pi])
    await _import(deps, account_id)
    (settlement,) = (await api.get("/v1/settlements")).json()["data"]
    (line,) = (await api.get(f"/v1/settlements/{settlement['id']}/transactions")).json()["data"]
    assert line["payment"] is None and line["provider_source"].startswith("ch_")
    assert (await api.get(f"/v1/payments/{payment}")).json()["fee"] is None

    await pool.execute(
        "UPDATE payment_attempts SET provider_reference = $2 WHERE payment_id = $1",
        payment,
        pi,
    )
    await _import(deps, account_id)
    await _import(deps, account_id)
    (line,) = (await api.get(f"/v1/settlements/{settlement['id']}/transactions")).json()["data"]
    assert line["payment"] == payment
    assert (await api.get(f"/v1/payments/{payment}")).json()["fee"] == default_fee(7_000)
    assert len(await _fee_events(pool, payment)) == 1
    assert settlement["net"] == payout["amount"]


async def test_a_payout_that_does_not_add_up_is_refused_and_recorded(
    api: Api, deps: Deps, pool: asyncpg.Pool, stripe_fake: StripeFake
) -> None:
    account_id, stripe = await _stripe_account(api, stripe_fake)
    payment, pi = await _pay(api, 3_000)
    payout = await stripe.pay_out([pi], net_delta=5)
    await _import(deps, account_id)
    assert (await api.get("/v1/settlements", connector_account=account_id)).json()["data"] == []
    assert (await api.get(f"/v1/payments/{payment}")).json()["fee"] is None
    error = await pool.fetchrow(
        "SELECT code, message FROM settlement_import_errors WHERE connector_account_id = $1"
        " AND provider_object_id = $2",
        account_id,
        payout["id"],
    )
    assert error is not None and error["code"] == "amounts_inconsistent", error
    await _import(deps, account_id)  # recorded once
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM settlement_import_errors WHERE connector_account_id = $1",
            account_id,
        )
        == 1
    )


async def test_an_import_on_demand_is_queued_once(
    api: Api, pool: asyncpg.Pool, stripe_fake: StripeFake
) -> None:
    account_id, _ = await _stripe_account(api, stripe_fake)
    queued = await api.post("/v1/settlement_imports", {"connector_account": account_id})
    assert queued.status_code == 202, queued.text
    assert queued.json() == {
        "object": "settlement_import",
        "connector_account": account_id,
        "status": "queued",
        "livemode": False,
    }
    twice = await api.post("/v1/settlement_imports", {"connector_account": account_id})
    assert twice.json()["status"] == "already_queued"
    unknown = await api.post("/v1/settlement_imports", {"connector_account": "ca_nope"})
    assert unknown.status_code == 404, unknown.text
    simulator = await api.post(
        "/v1/connector_accounts", {"provider": "simulator", "currencies": ["USD"]}
    )
    assert simulator.status_code == 200, simulator.text
    refused = await api.post(
        "/v1/settlement_imports", {"connector_account": simulator.json()["id"]}
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == "connector_account"
    await _delete_import_jobs(pool, account_id)


async def test_the_hourly_pass_queues_each_account_once_and_later(
    api: Api, deps: Deps, pool: asyncpg.Pool, stripe_fake: StripeFake
) -> None:
    account_id, _ = await _stripe_account(api, stripe_fake)
    due = standard_registry().get(settlement_jobs.IMPORT_DUE)
    assert due is not None
    context = JobContext(deps=deps, job_id="job_test", attempt=1, worker_id="test")
    try:
        await due.handler({}, context)
        await due.handler({}, context)
        rows = await _import_jobs(pool, account_id)
        assert len(rows) == 1, "one live import per account"
        later = deps.clock.now() + settlement_jobs.IMPORT_DELAY - timedelta(minutes=1)
        assert rows[0]["run_at"] > later
        hurried = await api.post("/v1/settlement_imports", {"connector_account": account_id})
        assert hurried.json()["status"] == "already_queued"
        (row,) = await _import_jobs(pool, account_id)
        assert row["run_at"] <= deps.clock.now()
    finally:
        await pool.execute(
            "DELETE FROM jobs WHERE kind = $1 AND status = 'queued'", settlement_jobs.IMPORT
        )


async def _import_jobs(pool: asyncpg.Pool, account_id: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT * FROM jobs WHERE kind = $1 AND payload->>'connector_account' = $2"
            " AND status = 'queued'",
            settlement_jobs.IMPORT,
            account_id,
        )
    )


async def _delete_import_jobs(pool: asyncpg.Pool, account_id: str) -> None:
    """Leave no queued job behind for other tests' workers."""
    deleted = await pool.execute(
        "DELETE FROM jobs WHERE kind = $1 AND payload->>'connector_account' = $2",
        settlement_jobs.IMPORT,
        account_id,
    )
    assert deleted == "DELETE 1"


async def test_another_merchant_never_sees_the_settlements(
    api: Api,
    client: httpx.AsyncClient,
    deps: Deps,
    other_merchant: NewMerchant,
    stripe_fake: StripeFake,
) -> None:
    other = Api(client, other_merchant.key("secret", livemode=False))
    mine, stripe = await _stripe_account(api, stripe_fake)
    theirs, their_stripe = await _stripe_account(other, stripe_fake)
    _, my_pi = await _pay(api, 1_200)
    their_payment, their_pi = await _pay(other, 1_300)
    await stripe.pay_out([my_pi])
    await their_stripe.pay_out([their_pi])
    await _import(deps, mine)
    await _import(deps, theirs)

    (my_settlement,) = (await api.get("/v1/settlements")).json()["data"]
    (their_settlement,) = (await other.get("/v1/settlements")).json()["data"]
    assert my_settlement["connector_account"] == mine
    assert their_settlement["connector_account"] == theirs
    missing = await other.get(f"/v1/settlements/{my_settlement['id']}")
    assert missing.status_code == 404
    assert (
        await other.get(f"/v1/settlements/{my_settlement['id']}/transactions")
    ).status_code == 404
    assert (await api.get("/v1/settlements", connector_account=theirs)).json()["data"] == []
    (line,) = (await other.get(f"/v1/settlements/{their_settlement['id']}/transactions")).json()[
        "data"
    ]
    assert line["payment"] == their_payment


GROWING = frozenset(
    {"settlements", "settlement_transactions", "payments", "payment_attempts", "refunds"}
)


def _seq_scans(plan: dict[str, Any]) -> list[str]:
    found = [plan["Relation Name"]] if plan.get("Node Type") == "Seq Scan" else []
    return [name for child in plan.get("Plans", []) for name in _seq_scans(child)] + [
        name for name in found if name in GROWING
    ]


async def test_the_settlement_queries_have_an_index(
    merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    """Every statement the lists, the retrieve and the import's link lookups send is
    planned without a sequential scan when scans are discouraged: an index serves each (the
    tables are small here, so the planner is told to avoid scans rather than trusted)."""
    from paygrid.db import settlement_links as links_db
    from paygrid.db import settlements as settlements_db
    from paygrid.domain.pagination import PageRequest
    from paygrid.domain.settlements import SettlementStatus

    captured: list[tuple[str, tuple[Any, ...]]] = []
    async with pool.acquire() as conn:

        def log(query: LoggedQuery) -> None:
            captured.append((query.query, query.args))

        conn.add_query_logger(log)
        try:
            args = (merchant.id, False)
            await settlements_db.list_settlements(
                conn,
                *args,
                PageRequest(),
                connector_account_id="ca_x",
                status=SettlementStatus.PAID,
            )
            await settlements_db.list_settlements(conn, *args, PageRequest(limit=5))
            await settlements_db.list_transactions(conn, *args, "stl_x", PageRequest())
            await settlements_db.get_settlement(conn, *args, "stl_x")
            await settlements_db.find_settlement(conn, "ca_x", "po_x")
            await links_db.payments_by_reference(conn, *args, "ca_x", ["pi_x"])
            await links_db.refunds_by_reference(conn, *args, "ca_x", ["re_x"])
            await settlements_db.unlinked(conn, "ca_x", 10)
            await asyncio.sleep(0.05)  # loggers are called soon after each statement
        finally:
            conn.remove_query_logger(log)
        assert len(captured) == 8
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            for query, values in captured:
                plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {query}", *values)
                scans = _seq_scans(json.loads(plan)[0]["Plan"])
                assert scans == [], f"{query} scans {scans}"
