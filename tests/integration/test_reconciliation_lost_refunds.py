"""Reconciliation and a refund whose Paystack answer paygrid lost (Paystack made it, then
answered 500): paygrid keeps it ``pending`` without Paystack's id, its amount held. Paystack's
refund names it in its note, so a run reports it as that refund (not a dashboard refund) and
``heal`` gives it Paystack's id and settles it: no second refund row, ``amount_refunded``
counted once, and running again changes nothing. A note naming another merchant's refund
touches nothing of theirs."""

from __future__ import annotations

import asyncpg
import httpx

from paygrid.connectors.paystack.refund_notes import refund_note
from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant
from tests.conftest import Api
from tests.fakes.paystack import FakeMerchant, PaystackFake
from tests.integration.test_reconciliation import _discrepancies, _events, _run
from tests.integration.test_settlements_paystack import _pay, _paystack_account


async def _lost_refund(api: Api, fake: FakeMerchant, payment: str, amount: int) -> str:
    """A refund Paystack made whose answer was lost; its paygrid id."""
    await fake.fail_next("error_500_after", path="/refund")
    lost = await api.post("/v1/refunds", {"payment": payment, "amount": amount})
    refunds = (await api.get("/v1/refunds", payment=payment)).json()["data"]
    assert [(r["amount"], r["status"]) for r in refunds] == [(amount, "pending")], lost.text
    return str(refunds[0]["id"])


async def _reference(pool: asyncpg.Pool, refund_id: str) -> str | None:
    found: str | None = await pool.fetchval(
        "SELECT provider_reference FROM refunds WHERE id = $1", refund_id
    )
    return found


async def test_a_lost_answer_is_healed_onto_its_refund_not_imported_twice(
    api: Api,
    client: httpx.AsyncClient,
    deps: Deps,
    pool: asyncpg.Pool,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    fake = paystack_merchant
    account = await _paystack_account(api, paystack_fake, fake)
    payment, _ = await _pay(api, client, fake, 400_000)
    refund_id = await _lost_refund(api, fake, payment, 100_000)
    assert await _reference(pool, refund_id) is None
    assert await fake.process_refunds() != []  # Paystack paid it out
    listed = (await fake.api("GET", "/refund?perPage=100&page=1")).json()["data"]
    (paystack_id,) = [str(r["id"]) for r in listed]

    healing = await _run(api, deps, account, heal=True)
    assert (healing["counts"].get("refund_mismatch"), healing["healed"]) == (1, 1)
    (found,) = await _discrepancies(api, run=healing["id"])
    assert (found["type"], found["refund"], found["provider_reference"]) == (
        "refund_mismatch",
        refund_id,
        paystack_id,
    )
    assert (found["status"], found["provider_value"]) == ("healed", "succeeded")
    refunds = (await api.get("/v1/refunds", payment=payment)).json()["data"]
    assert [(r["id"], r["amount"], r["status"]) for r in refunds] == [
        (refund_id, 100_000, "succeeded")
    ]
    assert await _reference(pool, refund_id) == paystack_id
    paid = (await api.get(f"/v1/payments/{payment}")).json()
    assert paid["amount_refunded"] == 100_000
    refund_attempts = [
        (a["status"], a["provider_reference"])
        for a in paid["attempts"]
        if a["operation"] == "refund"
    ]
    assert refund_attempts == [("succeeded", paystack_id)]
    assert await _events(pool, refund_id) == ["refund.created", "refund.succeeded"]

    again = await _run(api, deps, account, heal=True)
    assert (sum(again["counts"].values()), again["healed"]) == (0, 0)
    assert len((await api.get("/v1/refunds", payment=payment)).json()["data"]) == 1
    assert (await api.get(f"/v1/payments/{payment}")).json()["amount_refunded"] == 100_000
    assert await _events(pool, refund_id) == ["refund.created", "refund.succeeded"]


async def test_a_lost_answer_still_pending_at_paystack_gets_its_id_and_stays_pending(
    api: Api,
    client: httpx.AsyncClient,
    deps: Deps,
    pool: asyncpg.Pool,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    """Paystack has not paid it out yet: the refund takes Paystack's id and stays pending
    (its webhook now finds it), with no event until Paystack decides."""
    fake = paystack_merchant
    account = await _paystack_account(api, paystack_fake, fake)
    payment, _ = await _pay(api, client, fake, 300_000)
    refund_id = await _lost_refund(api, fake, payment, 50_000)

    healing = await _run(api, deps, account, heal=True)
    assert healing["healed"] == 1
    (paystack_id,) = [
        str(r["id"]) for r in (await fake.api("GET", "/refund?perPage=100&page=1")).json()["data"]
    ]
    assert await _reference(pool, refund_id) == paystack_id
    (refund,) = (await api.get("/v1/refunds", payment=payment)).json()["data"]
    assert (refund["id"], refund["status"]) == (refund_id, "pending")
    assert (await api.get(f"/v1/payments/{payment}")).json()["amount_refunded"] == 50_000
    assert await _events(pool, refund_id) == ["refund.created"]


async def test_a_note_naming_another_merchants_refund_leaves_it_alone(
    api: Api,
    client: httpx.AsyncClient,
    deps: Deps,
    pool: asyncpg.Pool,
    other_merchant: NewMerchant,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    """Another merchant lost an answer; this merchant's Paystack has a refund whose note
    names that refund. This merchant's run imports it as its own dashboard refund and never
    touches the other merchant's refund."""
    other = Api(client, other_merchant.key("secret", livemode=False))
    their_fake = await paystack_fake.new_merchant()
    await _paystack_account(other, paystack_fake, their_fake)
    their_payment, _ = await _pay(other, client, their_fake, 200_000)
    theirs = await _lost_refund(other, their_fake, their_payment, 20_000)

    mine = await _paystack_account(api, paystack_fake, paystack_merchant)
    my_payment, my_ref = await _pay(api, client, paystack_merchant, 200_000)
    forged = await paystack_merchant.api(
        "POST",
        "/refund",
        {"transaction": my_ref, "amount": 20_000, "merchant_note": refund_note(theirs, None)},
    )
    assert forged.status_code == 200, forged.text
    await paystack_merchant.process_refunds()

    run = await _run(api, deps, mine, heal=True)
    (found,) = await _discrepancies(api, run=run["id"])
    assert (found["refund"], found["payment"], found["status"]) == (None, my_payment, "healed")
    (imported,) = (await api.get("/v1/refunds", payment=my_payment)).json()["data"]
    assert imported["id"] != theirs and imported["status"] == "succeeded"
    (kept,) = (await other.get("/v1/refunds", payment=their_payment)).json()["data"]
    assert (kept["id"], kept["status"]) == (theirs, "pending")
    assert await _reference(pool, theirs) is None


async def test_a_lost_answer_that_failed_at_paystack_fails_and_releases_its_amount(
    api: Api,
    client: httpx.AsyncClient,
    deps: Deps,
    pool: asyncpg.Pool,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    fake = paystack_merchant
    account = await _paystack_account(api, paystack_fake, fake)
    payment, _ = await _pay(api, client, fake, 300_000)
    refund_id = await _lost_refund(api, fake, payment, 70_000)
    assert (await api.get(f"/v1/payments/{payment}")).json()["amount_refunded"] == 70_000
    await fake.process_refunds("failed")

    healing = await _run(api, deps, account, heal=True)
    assert healing["healed"] == 1
    (refund,) = (await api.get("/v1/refunds", payment=payment)).json()["data"]
    assert (refund["id"], refund["status"]) == (refund_id, "failed")
    assert await _reference(pool, refund_id) is not None
    assert (await api.get(f"/v1/payments/{payment}")).json()["amount_refunded"] == 0
    assert await _events(pool, refund_id) == ["refund.created", "refund.failed"]
