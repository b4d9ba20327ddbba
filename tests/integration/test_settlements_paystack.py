"""Settlements from Paystack (the fake, whose settlement answers are validated against
Paystack's spec by tests/connectors/test_paystack_fake_settlements.py): payments made on the
hosted page are settled with fees and a refund deducted, the import job stores the settlement
and its transactions with ``gross - fee = net``, payments get their fee and net,
``payment.fee_settled`` is emitted once, a re-import changes nothing, a settlement whose
totals disagree is refused, and no merchant sees another's settlements."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from paygrid.bootstrap import standard_registry
from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant
from paygrid.services.settlements import jobs as settlement_jobs
from paygrid.worker.registry import JobContext
from tests.conftest import Api
from tests.fakes.paystack import FakeMerchant, PaystackFake

SUCCESS_CARD = "4084084084084081"


def paystack_fee(amount: int) -> int:
    """The fake's fee (1.5 %), as its transaction payloads state it."""
    return amount * 15 // 1000


async def _paystack_account(api: Api, fake: PaystackFake, merchant: FakeMerchant) -> str:
    made = await api.post(
        "/v1/connector_accounts",
        {
            "provider": "paystack",
            "credentials": {"secret_key": merchant.secret_key},
            "currencies": ["NGN"],
            "api_base": fake.base_url,
        },
    )
    assert made.status_code == 200, made.text
    return str(made.json()["id"])


async def _pay(
    api: Api, client: httpx.AsyncClient, merchant: FakeMerchant, amount: int
) -> tuple[str, str]:
    """A payment paid on Paystack's hosted page; its id and Paystack reference."""
    started = await api.post(
        "/v1/payments",
        {
            "amount": amount,
            "currency": "NGN",
            "confirm": True,
            "receipt_email": "ada@example.com",
            "payment_method_types": ["card"],
            "return_url": "https://shop.test/done",
        },
    )
    assert started.status_code == 200, started.text
    payment = started.json()
    paid = await merchant.pay(
        payment["next_action"]["redirect_to_url"]["url"], card_number=SUCCESS_CARD
    )
    assert paid.status_code == 302, paid.text
    await client.get(paid.headers["location"])
    done: dict[str, Any] = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert done["status"] == "succeeded", done
    assert (done["fee"], done["net"]) == (None, None)
    return str(done["id"]), str(done["attempts"][0]["provider_reference"])


async def _import(deps: Deps, account_id: str) -> None:
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


async def test_a_settlement_is_imported_with_fees_and_deductions_once(
    api: Api,
    client: httpx.AsyncClient,
    deps: Deps,
    pool: asyncpg.Pool,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    account_id = await _paystack_account(api, paystack_fake, paystack_merchant)
    first, _ = await _pay(api, client, paystack_merchant, 500_000)
    second, second_ref = await _pay(api, client, paystack_merchant, 200_000)
    refunded = await api.post("/v1/refunds", {"payment": first, "amount": 50_000})
    assert refunded.status_code == 200, refunded.text
    refund_id = refunded.json()["id"]
    await paystack_merchant.process_refunds()
    await paystack_merchant.inject("fee", reference=second_ref, fee=1_234)
    provider = await paystack_merchant.settle()

    await _import(deps, account_id)

    (settlement,) = (await api.get("/v1/settlements", connector_account=account_id)).json()["data"]
    fee = paystack_fee(500_000) + 1_234
    assert (settlement["provider"], settlement["provider_reference"]) == (
        "paystack",
        str(provider["id"]),
    )
    assert (settlement["status"], settlement["currency"]) == ("paid", "NGN")
    assert (settlement["gross"], settlement["fee"]) == (700_000 - 50_000, fee)
    assert settlement["net"] == settlement["gross"] - fee == provider["effective_amount"]
    assert settlement["transaction_count"] == 3
    lines = (await api.get(f"/v1/settlements/{settlement['id']}/transactions")).json()["data"]
    charges = [line for line in lines if line["type"] == "charge"]
    assert {(line["payment"], line["fee"]) for line in charges} == {
        (first, paystack_fee(500_000)),
        (second, 1_234),
    }
    (deducted,) = [line for line in lines if line["type"] == "refund"]
    assert (deducted["refund"], deducted["gross"], deducted["fee"], deducted["net"]) == (
        refund_id,
        -50_000,
        0,
        -50_000,
    )
    assert all(line["gross"] - line["fee"] == line["net"] for line in lines)
    for total in ("gross", "fee", "net"):  # the lines add up to Paystack's own totals
        assert sum(line[total] for line in lines) == settlement[total]
    refund = (await api.get(f"/v1/refunds/{refund_id}")).json()
    assert (refund["fee"], refund["net"]) == (0, -50_000)

    settled = (await api.get(f"/v1/payments/{second}")).json()
    assert (settled["fee"], settled["net"]) == (1_234, 200_000 - 1_234)
    events = await _fee_events(pool, second)
    assert [(e["fee"], e["net"]) for e in events] == [(1_234, 200_000 - 1_234)]

    await _import(deps, account_id)
    assert len((await api.get("/v1/settlements")).json()["data"]) == 1
    assert len(await _fee_events(pool, first)) == len(await _fee_events(pool, second)) == 1


async def test_a_settlement_whose_totals_disagree_is_refused(
    api: Api,
    client: httpx.AsyncClient,
    deps: Deps,
    pool: asyncpg.Pool,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    account_id = await _paystack_account(api, paystack_fake, paystack_merchant)
    payment, _ = await _pay(api, client, paystack_merchant, 300_000)
    provider = await paystack_merchant.settle(effective_amount_delta=3)
    await _import(deps, account_id)
    assert (await api.get("/v1/settlements")).json()["data"] == []
    assert (await api.get(f"/v1/payments/{payment}")).json()["fee"] is None
    code = await pool.fetchval(
        "SELECT code FROM settlement_import_errors WHERE connector_account_id = $1"
        " AND provider_object_id = $2",
        account_id,
        str(provider["id"]),
    )
    assert code == "amounts_inconsistent"


async def test_another_merchant_never_sees_the_settlements(
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
    await _pay(api, client, paystack_merchant, 100_000)
    their_payment, _ = await _pay(other, client, their_fake, 110_000)
    await paystack_merchant.settle()
    await their_fake.settle()
    await _import(deps, mine)
    await _import(deps, theirs)

    (my_settlement,) = (await api.get("/v1/settlements")).json()["data"]
    (their_settlement,) = (await other.get("/v1/settlements")).json()["data"]
    assert (my_settlement["connector_account"], their_settlement["connector_account"]) == (
        mine,
        theirs,
    )
    assert (await other.get(f"/v1/settlements/{my_settlement['id']}")).status_code == 404
    (line,) = (await other.get(f"/v1/settlements/{their_settlement['id']}/transactions")).json()[
        "data"
    ]
    assert line["payment"] == their_payment
    assert (await other.get(f"/v1/payments/{their_payment}")).json()["fee"] == paystack_fee(110_000)
