"""Status sync (the janitor) on real PostgreSQL with simulator connector accounts: unknown
outcomes are asked again on the schedule, never sent elsewhere meanwhile; redirects the
customer never finished are closed; stale pending attempts are picked up. Time is a
FakeClock moved by the tests: nothing here sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from paygrid.bootstrap import build_deps
from paygrid.clock import FakeClock
from paygrid.config import Settings
from paygrid.dependencies import Deps
from paygrid.services import status_sync
from tests.conftest import SUCCESS_CARD, Api, card
from tests.integration.payment_builders import THREE_DS_CARD


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def deps(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> AsyncIterator[Deps]:
    """The suite's dependencies, on a clock the tests move (the API and the sync share it)."""
    built = build_deps(pool, settings, bookkeeping_pool=bookkeeping_pool, clock=clock)
    yield built
    await built.connectors.aclose()


async def _account(api: Api, **metadata: str) -> str:
    response = await api.post(
        "/v1/connector_accounts", {"provider": "simulator", "metadata": metadata}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def _route(api: Api, *accounts: str) -> None:
    destinations = [{"connector_account": account} for account in accounts]
    response = await api.post("/v1/routing_rules", {"destinations": destinations})
    assert response.status_code == 200, response.text


async def _pay(api: Api, number: str = SUCCESS_CARD, **fields: Any) -> dict[str, Any]:
    response = await api.post(
        "/v1/payments",
        {
            "amount": 2500,
            "currency": "usd",
            "confirm": True,
            "payment_method_data": card(number),
            **fields,
        },
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _attempt(pool: asyncpg.Pool, payment_id: str) -> asyncpg.Record:
    rows = await pool.fetch(
        "SELECT * FROM payment_attempts WHERE payment_id = $1 AND operation = 'authorize'"
        " ORDER BY id",
        payment_id,
    )
    assert len(rows) == 1, "exactly one authorize attempt"
    return rows[0]


async def _heal(pool: asyncpg.Pool, account_id: str) -> None:
    """The provider answers again (the account's simulator stops timing out)."""
    await pool.execute(
        "UPDATE connector_accounts SET metadata = '{}', updated_at = now() WHERE id = $1",
        account_id,
    )


async def test_timeout_leaves_processing_then_sync_resolves_on_schedule(
    api: Api, deps: Deps, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    slow = await _account(api, failure_mode="timeout")
    spare = await _account(api)
    await _route(api, slow, spare)

    payment = await _pay(api)

    assert payment["status"] == "processing"
    assert payment["connector_account"] == slow
    # No failover after an unknown outcome: the spare account was never tried.
    assert [(a["connector_account"], a["status"]) for a in payment["attempts"]] == [
        (slow, "unknown")
    ]
    attempt = await _attempt(pool, payment["id"])
    assert attempt["next_sync_at"] is not None
    assert attempt["next_sync_at"] == clock.now() + timedelta(seconds=60)

    await _heal(pool, slow)
    clock.advance(10)
    early = await status_sync.run(deps)
    assert early.resolved == 0
    assert (await api.get(f"/v1/payments/{payment['id']}")).json()["status"] == "processing"

    clock.advance(110)  # two minutes after the timeout, the provider is asked again
    report = await status_sync.run(deps)
    assert report.resolved >= 1
    synced = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert synced["status"] == "succeeded"
    assert synced["amount_received"] == 2500
    assert [(a["connector_account"], a["status"]) for a in synced["attempts"]] == [
        (slow, "captured")
    ]
    assert (await _attempt(pool, payment["id"]))["next_sync_at"] is None
    types = [
        e["type"]
        for e in (await api.get("/v1/events", limit=20)).json()["data"]
        if e["data"]["object"]["id"] == payment["id"]
    ]
    assert "payment.succeeded" in types


async def test_unknown_outcome_backs_off_while_the_provider_cannot_say(
    api: Api, deps: Deps, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    down = await _account(api, failure_mode="timeout")
    await _route(api, down)
    payment = await _pay(api)
    assert payment["status"] == "processing"
    # The provider stays unreachable: each pass pushes the next sync further out.
    await pool.execute(
        'UPDATE connector_accounts SET metadata = \'{"failure_mode": "unavailable"}\','
        " updated_at = now() WHERE id = $1",
        down,
    )
    expected = [300, 1800, 7200, 86400, 86400]
    clock.advance(61)
    for delay in expected:
        report = await status_sync.run(deps)
        assert report.still_unknown >= 1
        attempt = await _attempt(pool, payment["id"])
        assert attempt["next_sync_at"] == clock.now() + timedelta(seconds=delay)
        clock.advance(delay + 1)
    current = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert current["status"] == "processing"
    assert len(current["attempts"]) == 1


async def test_a_redirect_never_finished_is_closed_after_the_window(
    api: Api, deps: Deps, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    payment = await _pay(api, THREE_DS_CARD, return_url="https://shop.example/done")
    assert payment["status"] == "requires_action"
    attempt = await _attempt(pool, payment["id"])
    window = timedelta(hours=deps.settings.requires_action_expiry_hours)
    assert window == timedelta(hours=24)
    assert attempt["next_sync_at"] == clock.now() + window

    clock.advance(timedelta(hours=1))
    untouched = await status_sync.run(deps)
    assert untouched.expired == 0
    clock.advance(window)  # a day (and an hour) of fake time later
    report = await status_sync.run(deps)
    assert report.expired >= 1
    closed = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert closed["status"] == "canceled"
    assert closed["cancellation_reason"] == "abandoned"
    authorize = [a for a in closed["attempts"] if a["operation"] == "authorize"]
    assert [(a["status"], a["error_code"]) for a in authorize] == [("failed", "action_expired")]
    # The simulator's charge was voided, so a late authentication cannot move money.
    charge = await pool.fetchrow(
        "SELECT status FROM simulator.charges WHERE idempotency_key = $1", attempt["id"]
    )
    assert charge is not None and charge["status"] == "voided"


async def test_an_attempt_whose_process_died_is_synced(
    api: Api, deps: Deps, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    payment = await _pay(api)
    assert payment["status"] == "succeeded"
    # Make it look like a call that never came back: payment processing, attempt pending
    # for long past the stale threshold, while the simulator did charge.
    await pool.execute(
        "UPDATE payments SET status = 'processing', amount_received = 0 WHERE id = $1",
        payment["id"],
    )
    await pool.execute(
        "UPDATE payment_attempts SET status = 'pending', completed_at = NULL WHERE payment_id = $1",
        payment["id"],
    )
    clock.advance(timedelta(hours=1))  # long past the stale threshold, on the clock
    await status_sync.run(deps)
    assert (await _attempt(pool, payment["id"]))["status"] == "unknown"
    clock.advance(1)
    await status_sync.run(deps)
    healed = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert healed["status"] == "succeeded"
    assert healed["amount_received"] == 2500


@pytest.mark.parametrize("failure_mode", ["unavailable"])
async def test_refused_connection_fails_over_and_keeps_every_attempt(
    api: Api, failure_mode: str
) -> None:
    down = await _account(api, failure_mode=failure_mode)
    up = await _account(api)
    await _route(api, down, up)
    payment = await _pay(api)
    assert payment["status"] == "succeeded"
    assert payment["connector_account"] == up
    assert [(a["connector_account"], a["status"]) for a in payment["attempts"]] == [
        (down, "unreachable"),
        (up, "captured"),
    ]
