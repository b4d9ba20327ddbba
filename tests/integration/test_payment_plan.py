"""A payment's plan is asked of routing once, and the authorize loop walks it: each
unreachable account is closed as an attempt and the next one is tried, whether the payment
is created confirmed or confirmed later."""

from __future__ import annotations

from typing import Any

import pytest

from paygrid import ids
from paygrid.services import routing
from tests.conftest import confirmed_payment
from tests.integration.test_circuit_failover import (  # the harness of accounts that fail
    Harness,
    _account,
    _trail,
    harness,
)

__all__ = ["harness"]


@pytest.fixture
def routing_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The payment ids routing was asked about, in order."""
    calls: list[str] = []
    ask = routing.targets_for

    async def counted(*args: Any, **kwargs: Any) -> list[routing.Target]:
        calls.append(args[2].payment_id)
        return await ask(*args, **kwargs)

    monkeypatch.setattr(routing, "targets_for", counted)
    return calls


async def _plan_of_three(harness: Harness) -> tuple[str, str, str]:
    first = await _account(harness.api, failure_mode="unavailable")
    second = await _account(harness.api, failure_mode="unavailable")
    healthy = await _account(harness.api)
    destinations = [{"connector_account": a} for a in (first, second, healthy)]
    rule = await harness.api.post("/v1/routing_rules", {"destinations": destinations})
    assert rule.status_code == 200, rule.text
    return first, second, healthy


async def test_create_and_confirm_walks_the_plan_routing_gave_once(
    harness: Harness, routing_calls: list[str]
) -> None:
    first, second, healthy = await _plan_of_three(harness)
    response = await harness.api.post("/v1/payments", confirmed_payment())
    assert response.status_code == 200, response.text
    payment = response.json()
    assert payment["status"] == "succeeded"
    assert _trail(payment) == [
        (first, "unreachable"),
        (second, "unreachable"),
        (healthy, "captured"),
    ]
    assert routing_calls == [payment["id"]]


async def test_a_later_confirm_asks_routing_once_too(
    harness: Harness, routing_calls: list[str]
) -> None:
    first, second, healthy = await _plan_of_three(harness)
    created = await harness.api.post("/v1/payments", {"amount": 1000, "currency": "USD"})
    assert created.status_code == 200, created.text
    payment_id = created.json()["id"]
    assert routing_calls == []  # nothing to route before a payment method
    confirmed = await harness.api.post(
        f"/v1/payments/{payment_id}/confirm", {"payment_method": "pm_card_visa"}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "succeeded"
    assert _trail(confirmed.json()) == [
        (first, "unreachable"),
        (second, "unreachable"),
        (healthy, "captured"),
    ]
    assert routing_calls == [payment_id]


async def test_when_the_plan_runs_out_nothing_is_charged(
    harness: Harness, routing_calls: list[str]
) -> None:
    first = await _account(harness.api, failure_mode="unavailable")
    second = await _account(harness.api, failure_mode="unavailable")
    destinations = [{"connector_account": a} for a in (first, second)]
    rule = await harness.api.post("/v1/routing_rules", {"destinations": destinations})
    assert rule.status_code == 200, rule.text
    response = await harness.api.post("/v1/payments", confirmed_payment())
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "provider_unavailable"
    payment = (await harness.api.get(f"/v1/payments/{error['payment_id']}")).json()
    assert payment["status"] == "requires_confirmation"
    assert _trail(payment) == [(first, "unreachable"), (second, "unreachable")]
    assert routing_calls == [payment["id"]]


async def test_attempts_made_within_one_millisecond_list_in_the_order_made(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attempts list by id. With the clock held at one millisecond, random ids would list a
    walk's three attempts in any of six orders; ordered ids keep the walk's."""
    first, second, healthy = await _plan_of_three(harness)
    monkeypatch.setattr(ids, "_sequence", ids._Sequence())  # restored after, with the real time
    monkeypatch.setattr(ids, "wall_milliseconds", lambda: 4_000_000_000_000)
    for _ in range(3):
        response = await harness.api.post("/v1/payments", confirmed_payment())
        assert response.status_code == 200, response.text
        fetched = await harness.api.get(f"/v1/payments/{response.json()['id']}")
        assert _trail(fetched.json()) == [
            (first, "unreachable"),
            (second, "unreachable"),
            (healthy, "captured"),
        ]
