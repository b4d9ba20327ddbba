"""``ConnectorRegistry.guard`` with real simulator accounts: an account that cannot be
reached opens its circuit after N failures, payments then fail over without calling it, one
probe goes out after the cooldown, and a healthy probe closes the circuit again."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, cast

import asyncpg
import httpx
import pytest

from paygrid.app import create_app
from paygrid.config import FAILURE_MODES, SimulatorFailureMode
from paygrid.connectors.base import AttemptResult, AuthorizeRequest, ProviderUnreachable
from paygrid.connectors.registry import ConnectorRegistry
from paygrid.connectors.simulator import SimulatorConnector
from paygrid.dependencies import Deps
from paygrid.domain.circuit import CircuitState
from paygrid.services.merchants import NewMerchant
from tests.conftest import TEST_BASE_URL, Api, confirmed_payment

THRESHOLD, COOLDOWN = 3, 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class CountingSimulator(SimulatorConnector):
    """A simulator account's connector that counts the authorize calls that reach it."""

    def __init__(self, calls: Counter[str], pool: asyncpg.Pool, mode: str) -> None:
        failure_mode = cast(SimulatorFailureMode, mode) if mode in FAILURE_MODES else "none"
        super().__init__(pool, base_url=TEST_BASE_URL, failure_mode=failure_mode)
        self._calls = calls
        self._mode = mode

    async def authorize(self, request: AuthorizeRequest) -> AttemptResult:
        self._calls[self._mode] += 1
        return await super().authorize(request)


@dataclasses.dataclass
class Harness:
    api: Api
    deps: Deps
    clock: Clock
    calls: Counter[str]  # authorize calls by failure mode of the account called


@pytest.fixture
async def harness(
    deps: Deps, bookkeeping_pool: asyncpg.Pool, merchant: NewMerchant
) -> AsyncIterator[Harness]:
    clock = Clock()
    calls: Counter[str] = Counter()

    def account_simulator(mode: str) -> SimulatorConnector:
        return CountingSimulator(calls, bookkeeping_pool, mode)

    registry = ConnectorRegistry(
        deps.connectors.simulator,
        deps.keys,
        simulator_factory=account_simulator,
        breaker_threshold=THRESHOLD,
        breaker_cooldown=COOLDOWN,
        clock=clock,
    )
    wired = dataclasses.replace(deps, connectors=registry)
    transport = httpx.ASGITransport(app=create_app(deps.settings, deps=wired))
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
        yield Harness(Api(http, merchant.key("secret", livemode=False)), wired, clock, calls)
    await registry.aclose()


async def _account(api: Api, **metadata: str) -> str:
    response = await api.post(
        "/v1/connector_accounts", {"provider": "simulator", "metadata": metadata}
    )
    assert response.status_code == 200, response.text
    account_id: str = response.json()["id"]
    return account_id


async def _pay(api: Api) -> dict[str, Any]:
    response = await api.post("/v1/payments", confirmed_payment())
    assert response.status_code == 200, response.text
    payment: dict[str, Any] = response.json()
    return payment


def _trail(payment: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(a["connector_account"], a["status"]) for a in payment["attempts"]]


async def test_circuit_opens_and_payments_fail_over_without_calling_the_account(
    harness: Harness,
) -> None:
    api, registry = harness.api, harness.deps.connectors
    down = await _account(api, failure_mode="unavailable")
    healthy = await _account(api)
    rule = await api.post(
        "/v1/routing_rules",
        {"destinations": [{"connector_account": down}, {"connector_account": healthy}]},
    )
    assert rule.status_code == 200, rule.text

    for n in range(1, THRESHOLD + 1):
        payment = await _pay(api)
        assert payment["status"] == "succeeded"
        assert payment["connector_account"] == healthy
        assert _trail(payment) == [(down, "unreachable"), (healthy, "captured")]
        assert harness.calls["unavailable"] == n
    assert registry.breaker_states()[down] is CircuitState.OPEN
    assert registry.breaker_states()[healthy] is CircuitState.CLOSED

    # Open: the next payments fail over at once, without a call to the account.
    for _ in range(2):
        payment = await _pay(api)
        assert payment["status"] == "succeeded"
        assert _trail(payment) == [(down, "unreachable"), (healthy, "captured")]
    assert harness.calls["unavailable"] == THRESHOLD
    stored = await harness.deps.pool.fetch(
        "SELECT status, error_code FROM payment_attempts WHERE payment_id = $1 ORDER BY id",
        payment["id"],
    )
    assert [(r["status"], r["error_code"]) for r in stored] == [
        ("unreachable", "provider_unavailable"),
        ("captured", None),
    ]

    # After the cooldown one probe goes out; it fails, so the circuit opens again.
    harness.clock.now += COOLDOWN
    assert registry.breaker_states()[down] is CircuitState.HALF_OPEN
    probed = await _pay(api)
    assert _trail(probed) == [(down, "unreachable"), (healthy, "captured")]
    assert harness.calls["unavailable"] == THRESHOLD + 1
    assert registry.breaker_states()[down] is CircuitState.OPEN
    await _pay(api)
    assert harness.calls["unavailable"] == THRESHOLD + 1

    # The account recovers (its row changes, so its connector is rebuilt); the next probe
    # succeeds and closes the circuit, and payments go to it again.
    fixed = await api.post(f"/v1/connector_accounts/{down}", {"metadata": {}})
    assert fixed.status_code == 200, fixed.text
    harness.clock.now += COOLDOWN
    recovered = await _pay(api)
    assert _trail(recovered) == [(down, "captured")]
    assert harness.calls["none"] >= 1
    assert registry.breaker_states()[down] is CircuitState.CLOSED


async def test_no_reachable_account_means_nothing_charged(harness: Harness) -> None:
    api = harness.api
    down = await _account(api, failure_mode="unavailable")
    await api.post("/v1/routing_rules", {"destinations": [{"connector_account": down}]})
    response = await api.post("/v1/payments", confirmed_payment())
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "provider_unavailable"
    payment = (await api.get(f"/v1/payments/{error['payment_id']}")).json()
    assert payment["status"] == "requires_confirmation"
    assert payment["amount_received"] == 0
    assert _trail(payment) == [(down, "unreachable")]


async def test_guard_counts_only_unreachable_and_unknown_outcomes(harness: Harness) -> None:
    registry, clock = harness.deps.connectors, harness.clock
    account = await _account(harness.api)
    for _ in range(THRESHOLD - 1):
        with pytest.raises(ProviderUnreachable):
            async with registry.guard(account):
                raise ProviderUnreachable("connection refused")
    # Any answer from the provider (here an error it raised) resets the count.
    with pytest.raises(ValueError, match="declined"):
        async with registry.guard(account):
            raise ValueError("declined")
    assert registry.breaker(account).failures == 0
    for _ in range(THRESHOLD):
        with pytest.raises(ProviderUnreachable):
            async with registry.guard(account):
                raise ProviderUnreachable("connection refused")
    calls = 0
    with pytest.raises(ProviderUnreachable, match="circuit open"):
        async with registry.guard(account):
            calls += 1
    assert calls == 0

    # A cancelled probe does not leave the circuit stuck half-open.
    clock.now += COOLDOWN

    async def hang() -> None:
        async with registry.guard(account):
            await asyncio.sleep(60)

    probe = asyncio.create_task(hang())
    await asyncio.sleep(0)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    async with registry.guard(account):
        calls += 1
    assert calls == 1
    assert registry.breaker_states()[account] is CircuitState.CLOSED
    # Breakers are per account: the built-in simulator's is untouched.
    async with registry.guard(None):
        pass
    assert registry.breaker_states()["simulator"] is CircuitState.CLOSED
