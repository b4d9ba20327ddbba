"""Stripe-style idempotency keys, including under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest

from paygrid.bootstrap import build_deps
from paygrid.clock import FakeClock
from paygrid.config import Settings
from paygrid.db import idempotency as keys_db
from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant
from tests.conftest import SUCCESS_CARD, Api, auth, card
from tests.integration.worker_harness import eventually

PURCHASE = {
    "amount": 2500,
    "currency": "USD",
    "confirm": True,
    "payment_method_data": card(SUCCESS_CARD),
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def deps(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> AsyncIterator[Deps]:
    """The suite's dependencies on a clock the tests move: key lifetimes and locks are
    measured on it, so no test rewrites a key's timestamps."""
    built = build_deps(pool, settings, bookkeeping_pool=bookkeeping_pool, clock=clock)
    yield built
    await built.connectors.aclose()


async def _charges_for(pool: asyncpg.Pool, merchant_id: str) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM simulator.charges c JOIN payment_attempts a ON a.id = c.idempotency_key"
            " JOIN payments p ON p.id = a.payment_id WHERE p.merchant_id = $1",
            merchant_id,
        )
    )


async def test_replay_returns_the_first_response(api: Api) -> None:
    first = await api.post("/v1/payments", PURCHASE, **{"Idempotency-Key": "order-1"})
    second = await api.post("/v1/payments", PURCHASE, **{"Idempotency-Key": "order-1"})
    assert first.status_code == second.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["x-request-id"] != first.headers["x-request-id"]


async def test_declines_are_replayed_too(api: Api) -> None:
    body = {**PURCHASE, "payment_method_data": card("4000000000000002")}
    first = await api.post("/v1/payments", body, **{"Idempotency-Key": "decline-1"})
    second = await api.post("/v1/payments", body, **{"Idempotency-Key": "decline-1"})
    assert first.status_code == second.status_code == 402
    assert second.headers["idempotent-replayed"] == "true"
    first_error, second_error = first.json()["error"], second.json()["error"]
    assert second_error["request_id"] == second.headers["x-request-id"]
    assert second.headers["original-request"] == first_error["request_id"]
    assert {**second_error, "request_id": None} == {**first_error, "request_id": None}


async def test_same_key_different_body_or_path_is_rejected(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    await api.post("/v1/payments", PURCHASE, **{"Idempotency-Key": "k-reuse"})
    changed = await api.post(
        "/v1/payments", {**PURCHASE, "amount": 2600}, **{"Idempotency-Key": "k-reuse"}
    )
    assert changed.status_code == 422
    assert changed.json()["error"]["type"] == "idempotency_error"
    assert changed.json()["error"]["code"] == "idempotency_key_reused"
    other_path = await api.post(
        "/v1/customers", {"email": "a@b.co"}, **{"Idempotency-Key": "k-reuse"}
    )
    assert other_path.status_code == 422
    assert (
        await pool.fetchval("SELECT count(*) FROM customers WHERE merchant_id = $1", merchant.id)
        == 0
    )


async def test_key_order_and_whitespace_do_not_matter(api: Api) -> None:
    body = '{"currency": "USD", "amount": 900}'
    first = await api.http.post(
        "/v1/payments",
        content=body,
        headers=auth(api.key, **{"Idempotency-Key": "ws", "Content-Type": "application/json"}),
    )
    second = await api.http.post(
        "/v1/payments",
        content='{"amount":900,"currency":"USD"}',
        headers=auth(api.key, **{"Idempotency-Key": "ws", "Content-Type": "application/json"}),
    )
    assert second.headers.get("idempotent-replayed") == "true"
    assert first.json()["id"] == second.json()["id"]


async def test_keys_are_scoped_per_merchant_and_mode(
    client: httpx.AsyncClient, merchant: NewMerchant, other_merchant: NewMerchant
) -> None:
    body = {"amount": 1000, "currency": "USD"}
    ids = set()
    for key in (
        merchant.key("secret", False),
        merchant.key("secret", True),
        other_merchant.key("secret", False),
    ):
        response = await client.post(
            "/v1/payments", json=body, headers=auth(key, **{"Idempotency-Key": "shared"})
        )
        assert response.status_code == 200
        assert "idempotent-replayed" not in response.headers
        ids.add(response.json()["id"])
    assert len(ids) == 3


async def test_key_in_use_while_first_request_runs(
    api: Api, deps: Deps, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    # The first request holds its key through the simulator's 2 s answer; the second is sent
    # once the key is claimed (seen in the table, not guessed with a sleep), so a stall of the
    # machine cannot let it go first or arrive after the first has finished.
    deps.connectors.simulator.latency_ms = 2000
    first = asyncio.create_task(api.post("/v1/payments", PURCHASE, **{"Idempotency-Key": "slow"}))

    async def claimed() -> bool:
        return bool(
            await pool.fetchval(
                "SELECT count(*) FROM idempotency_keys WHERE merchant_id = $1 AND key = 'slow'",
                merchant.id,
            )
        )

    await eventually(claimed, 30)
    second = await api.post("/v1/payments", PURCHASE, **{"Idempotency-Key": "slow"})
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "idempotency_key_in_use"
    assert (await first).status_code == 200


async def test_fifty_concurrent_identical_creates_make_one_payment_and_one_charge(
    api: Api, deps: Deps, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    deps.connectors.simulator.latency_ms = (
        50  # keep the first request in flight while the rest arrive
    )
    responses = await asyncio.gather(
        *[api.post("/v1/payments", PURCHASE, **{"Idempotency-Key": "fifty"}) for _ in range(50)]
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409}, statuses
    assert statuses.count(200) >= 1
    assert len({r.json()["id"] for r in responses if r.status_code == 200}) == 1
    assert (
        await pool.fetchval("SELECT count(*) FROM payments WHERE merchant_id = $1", merchant.id)
        == 1
    )
    assert await _charges_for(pool, merchant.id) == 1
    replay = await api.post("/v1/payments", PURCHASE, **{"Idempotency-Key": "fifty"})
    assert replay.headers["idempotent-replayed"] == "true"


async def test_validation_errors_are_not_saved(api: Api) -> None:
    bad = await api.post(
        "/v1/payments", {"amount": "12", "currency": "USD"}, **{"Idempotency-Key": "fix-me"}
    )
    assert bad.status_code == 400
    fixed = await api.post(
        "/v1/payments", {"amount": 1200, "currency": "USD"}, **{"Idempotency-Key": "fix-me"}
    )
    assert fixed.status_code == 200
    assert "idempotent-replayed" not in fixed.headers


async def test_overlong_key_is_rejected(api: Api) -> None:
    response = await api.post("/v1/payments", PURCHASE, **{"Idempotency-Key": "x" * 256})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Idempotency-Key"


async def test_expired_keys_are_purged_and_reusable(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    first = await api.post(
        "/v1/payments", {"amount": 1000, "currency": "USD"}, **{"Idempotency-Key": "old"}
    )
    clock.advance(timedelta(hours=25))
    again = await api.post(
        "/v1/payments", {"amount": 1000, "currency": "USD"}, **{"Idempotency-Key": "old"}
    )
    assert "idempotent-replayed" not in again.headers  # an expired key counts as new
    assert again.json()["id"] != first.json()["id"]
    clock.advance(timedelta(hours=25))  # the purge runs a day and an hour later
    assert await keys_db.purge_expired(pool, 24, clock.now()) >= 1
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE merchant_id = $1", merchant.id
        )
        == 0
    )


async def test_dead_request_is_resumed_without_a_second_charge(
    api: Api, deps: Deps, merchant: NewMerchant, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    """Simulate a process that died after charging but before recording the outcome: the
    key stays locked, the payment stays processing with a pending attempt, the provider
    holds the charge. Once the lock expires, a retry resumes the same attempt."""
    deps.connectors.simulator.failure_mode = "timeout"  # charge made, answer lost
    first = await api.post("/v1/payments", PURCHASE, **{"Idempotency-Key": "crash"})
    deps.connectors.simulator.failure_mode = "none"
    payment_id = first.json()["id"]
    # Rewind to the crash point: the outcome was never recorded and the key is still locked.
    await pool.execute(
        "UPDATE payment_attempts SET status = 'pending' WHERE payment_id = $1", payment_id
    )
    await pool.execute(
        "UPDATE idempotency_keys SET response_status = NULL, response_body = NULL,"
        " locked_at = $2 WHERE merchant_id = $1 AND key = 'crash'",
        merchant.id,
        clock.now(),
    )
    locked = await api.post("/v1/payments", PURCHASE, **{"Idempotency-Key": "crash"})
    assert locked.status_code == 409
    clock.advance(timedelta(minutes=2))  # the lock expires on the clock
    resumed = await api.post("/v1/payments", PURCHASE, **{"Idempotency-Key": "crash"})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["id"] == payment_id
    assert resumed.json()["status"] == "succeeded"
    assert await _charges_for(pool, merchant.id) == 1
    assert (
        await pool.fetchval("SELECT count(*) FROM payments WHERE merchant_id = $1", merchant.id)
        == 1
    )
