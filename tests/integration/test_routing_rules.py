"""``/v1/routing_rules``: CRUD and validation, and where real payments go: rules on
currency, amount and metadata, priority order, weighted splits, disabled accounts, the
defaults, and capabilities. Every account here is a simulator account (Paystack only where a
provider must be unable to do something; it is never called)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.domain.routing import weighted_pick
from paygrid.services.merchants import NewMerchant
from tests.conftest import ERROR_FIELDS, Api, confirmed_payment, row_counts


async def _account(api: Api, **fields: Any) -> str:
    response = await api.post("/v1/connector_accounts", {"provider": "simulator", **fields})
    assert response.status_code == 200, response.text
    account_id: str = response.json()["id"]
    return account_id


async def _rule(api: Api, *accounts: str, **fields: Any) -> dict[str, Any]:
    body = {"destinations": [{"connector_account": a} for a in accounts], **fields}
    response = await api.post("/v1/routing_rules", body)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def _pay(api: Api, **fields: Any) -> dict[str, Any]:
    response = await api.post("/v1/payments", confirmed_payment(**fields))
    assert response.status_code == 200, response.text
    payment: dict[str, Any] = response.json()
    assert payment["status"] == "succeeded"
    return payment


def _error(response: httpx.Response, code: str, param: str | None) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) >= ERROR_FIELDS
    assert (error["code"], error["param"]) == (code, param)


@pytest.fixture
async def two(api: Api) -> tuple[str, str]:
    """Two simulator accounts, A (older) and B."""
    a = await _account(api, name="A")
    b = await _account(api, name="B")
    return a, b


# -- CRUD and validation ----------------------------------------------------------------------


async def test_create_retrieve_list_update_delete(api: Api, two: tuple[str, str]) -> None:
    a, b = two
    created = await _rule(
        api,
        b,
        a,
        name="Big EUR",
        priority=10,
        conditions={"currency": ["EUR"], "amount": {"gte": 10_000}, "metadata": {"x": "y"}},
    )
    assert created["id"].startswith("rr_") and created["object"] == "routing_rule"
    assert (created["name"], created["priority"], created["split"]) == ("Big EUR", 10, "priority")
    assert created["conditions"]["currency"] == ["EUR"]
    assert created["conditions"]["amount"] == {"gte": 10_000, "lte": None}
    assert created["conditions"]["metadata"] == {"x": "y"}
    assert created["destinations"] == [
        {"connector_account": b, "weight": 1},
        {"connector_account": a, "weight": 1},
    ]
    assert created["livemode"] is False
    path = f"/v1/routing_rules/{created['id']}"
    assert (await api.get(path)).json() == created

    second = await _rule(api, a)
    assert second["priority"] == 100 and second["conditions"]["currency"] is None
    listed = (await api.get("/v1/routing_rules")).json()
    assert {r["id"] for r in listed["data"]} == {created["id"], second["id"]}

    updated = await api.post(
        path,
        {
            "priority": 5,
            "split": "weighted",
            "destinations": [
                {"connector_account": a, "weight": 3},
                {"connector_account": b, "weight": 1},
            ],
        },
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert (body["priority"], body["split"], body["name"]) == (5, "weighted", "Big EUR")
    assert body["conditions"] == created["conditions"]
    assert [d["weight"] for d in body["destinations"]] == [3, 1]
    assert (await api.post(path, {})).json() == body
    renamed = (await api.post(path, {"name": None, "conditions": {}})).json()
    assert renamed["name"] is None and renamed["conditions"]["currency"] is None

    deleted = await api.delete(path)
    assert deleted.json() == {"id": created["id"], "object": "routing_rule", "deleted": True}
    assert (await api.get(path)).status_code == 404
    assert (await api.post(path, {"priority": 1})).status_code == 404
    assert (await api.delete(path)).status_code == 404


async def test_destinations_must_be_the_merchants_own_accounts(
    client: httpx.AsyncClient,
    api: Api,
    merchant: NewMerchant,
    other_merchant: NewMerchant,
    pool: asyncpg.Pool,
    two: tuple[str, str],
) -> None:
    a, _ = two
    intruder = Api(client, other_merchant.key("secret", livemode=False))
    foreign = await _account(intruder)
    live = Api(client, merchant.key("secret", livemode=True))
    live_account = (
        await live.post(
            "/v1/connector_accounts",
            {"provider": "stripe", "credentials": {"secret_key": "sk_live_abcdefgh"}},
        )
    ).json()["id"]
    before = await row_counts(pool, merchant.id)
    for account in (foreign, live_account, "ca_missing"):
        refused = await api.post(
            "/v1/routing_rules", {"destinations": [{"connector_account": account}]}
        )
        _error(refused, "resource_missing", "destinations[0].connector_account")
        assert account in refused.json()["error"]["message"]
    second = await api.post(
        "/v1/routing_rules",
        {"destinations": [{"connector_account": a}, {"connector_account": foreign}]},
    )
    _error(second, "resource_missing", "destinations[1].connector_account")
    assert await row_counts(pool, merchant.id) == before

    rule = await _rule(api, a)
    update = await api.post(
        f"/v1/routing_rules/{rule['id']}", {"destinations": [{"connector_account": foreign}]}
    )
    _error(update, "resource_missing", "destinations[0].connector_account")
    assert (await api.get(f"/v1/routing_rules/{rule['id']}")).json() == rule
    # The other merchant cannot see or touch the rule either.
    assert (await intruder.get(f"/v1/routing_rules/{rule['id']}")).status_code == 404
    assert (await intruder.delete(f"/v1/routing_rules/{rule['id']}")).status_code == 404
    assert (await intruder.get("/v1/routing_rules")).json()["data"] == []
    assert (await live.get(f"/v1/routing_rules/{rule['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"destinations": []}, "parameter_invalid", "destinations"),
        ({}, "parameter_missing", "destinations"),
        ({"destinations": [{"connector_account": "{a}", "weight": -1}]}, None, None),
        ({"destinations": [{"connector_account": "{a}"}], "split": "random"}, None, "split"),
        ({"destinations": [{"connector_account": "{a}"}], "priority": -1}, None, "priority"),
        (
            {"destinations": [{"connector_account": "{a}"}], "conditions": {"currency": ["EURO"]}},
            None,
            None,
        ),
        (
            {"destinations": [{"connector_account": "{a}"}], "conditions": {"colour": "red"}},
            "parameter_unknown",
            "conditions[colour]",
        ),
        (
            {"destinations": [{"connector_account": "{a}"}], "extra": 1},
            "parameter_unknown",
            "extra",
        ),
    ],
)
async def test_invalid_rules_write_nothing(
    api: Api,
    merchant: NewMerchant,
    pool: asyncpg.Pool,
    two: tuple[str, str],
    body: dict[str, Any],
    code: str | None,
    param: str | None,
) -> None:
    a, _ = two
    for destination in body.get("destinations", []):
        destination["connector_account"] = a
    before = await row_counts(pool, merchant.id)
    response = await api.post("/v1/routing_rules", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    assert await row_counts(pool, merchant.id) == before


async def test_duplicate_destinations_are_refused(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool, two: tuple[str, str]
) -> None:
    a, b = two
    before = await row_counts(pool, merchant.id)
    body = {"destinations": [{"connector_account": a}, {"connector_account": b}] * 2}
    refused = await api.post("/v1/routing_rules", body)
    _error(refused, "parameter_invalid", "destinations[2].connector_account")
    assert await row_counts(pool, merchant.id) == before


# -- where payments go ------------------------------------------------------------------------


async def test_without_rules_the_oldest_account_takes_the_payment(
    api: Api, two: tuple[str, str]
) -> None:
    a, b = two
    payment = await _pay(api)
    assert payment["connector_account"] == min(a, b)
    assert [(t["connector_account"], t["status"]) for t in payment["attempts"]] == [
        (min(a, b), "captured")
    ]


async def test_without_accounts_test_mode_uses_the_built_in_simulator(api: Api) -> None:
    payment = await _pay(api)
    assert payment["connector_account"] is None
    assert payment["attempts"][0]["connector"] == "simulator"


@pytest.mark.parametrize(
    ("conditions", "matching", "other"),
    [
        ({"currency": ["eur"]}, {"currency": "EUR"}, {"currency": "USD"}),
        ({"amount": {"gte": 5_000}}, {"amount": 5_000}, {"amount": 4_999}),
        ({"amount": {"lte": 999}}, {"amount": 999}, {"amount": 1_000}),
        (
            {"metadata": {"route": "b"}},
            {"metadata": {"route": "b", "order": "1"}},
            {"metadata": {"route": "a"}},
        ),
        ({"payment_method_type": ["card"]}, {}, None),
    ],
)
async def test_a_matching_rule_sends_the_payment_to_its_account(
    api: Api,
    two: tuple[str, str],
    conditions: dict[str, Any],
    matching: dict[str, Any],
    other: dict[str, Any] | None,
) -> None:
    a, b = two
    rule = await _rule(api, b, conditions=conditions)
    routed = await _pay(api, **matching)
    assert routed["connector_account"] == b
    assert [t["connector_account"] for t in routed["attempts"]] == [b]
    if other is not None:
        assert (await _pay(api, **other))["connector_account"] == a  # the default
    fetched = (await api.get(f"/v1/payments/{routed['id']}")).json()
    assert fetched["connector_account"] == b
    await api.delete(f"/v1/routing_rules/{rule['id']}")
    assert (await _pay(api, **matching))["connector_account"] == a


async def test_rules_run_in_priority_order(api: Api, two: tuple[str, str]) -> None:
    a, b = two
    to_a = await _rule(api, a, priority=20)
    to_b = await _rule(api, b, priority=10)
    assert (await _pay(api))["connector_account"] == b
    moved = await api.post(f"/v1/routing_rules/{to_b['id']}", {"priority": 30})
    assert moved.status_code == 200
    assert (await _pay(api))["connector_account"] == a
    # A more specific rule with a lower priority number wins only when it matches.
    await _rule(api, b, priority=1, conditions={"currency": ["GBP"]})
    assert (await _pay(api))["connector_account"] == a
    assert (await _pay(api, currency="GBP"))["connector_account"] == b
    assert to_a["priority"] == 20


async def test_a_disabled_account_is_skipped(api: Api, two: tuple[str, str]) -> None:
    a, b = two
    await _rule(api, a, b)
    assert (await _pay(api))["connector_account"] == a
    assert (await api.post(f"/v1/connector_accounts/{a}/disable")).status_code == 200
    payment = await _pay(api)
    assert payment["connector_account"] == b
    # Routing skipped it: no attempt was made there.
    assert [t["connector_account"] for t in payment["attempts"]] == [b]
    assert (await api.post(f"/v1/connector_accounts/{b}/disable")).status_code == 200
    # Every destination disabled and no other account: the built-in simulator in test mode.
    assert (await _pay(api))["connector_account"] is None
    await api.post(f"/v1/connector_accounts/{a}/enable")
    assert (await _pay(api))["connector_account"] == a


async def test_a_rule_whose_accounts_lack_the_currency_falls_through(api: Api) -> None:
    usd_only = await _account(api, currencies=["USD"])
    anything = await _account(api)
    await _rule(api, usd_only, priority=1)
    await _rule(api, anything, priority=2)
    assert (await _pay(api, currency="USD"))["connector_account"] == usd_only
    assert (await _pay(api, currency="EUR"))["connector_account"] == anything


async def test_weighted_split_is_stable_per_payment(api: Api, two: tuple[str, str]) -> None:
    a, b = two
    weights = {a: 1, b: 3}
    await _rule(
        api,
        split="weighted",
        destinations=[{"connector_account": k, "weight": w} for k, w in weights.items()],
    )
    for _ in range(8):
        # Created first, confirmed later: the pick depends on the payment id alone.
        created = await api.post(
            "/v1/payments", {"amount": 1000, "currency": "USD", "payment_method": "pm_card_visa"}
        )
        assert created.status_code == 200, created.text
        payment_id = created.json()["id"]
        expected = weighted_pick(tuple(weights.items()), payment_id)
        confirmed = await api.post(f"/v1/payments/{payment_id}/confirm")
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["connector_account"] == expected
    direct = await _pay(api)
    assert direct["connector_account"] == weighted_pick(tuple(weights.items()), direct["id"])


async def test_manual_capture_needs_a_capable_account(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    # Paystack cannot hold funds for a later capture; it is the only NGN account.
    await api.post(
        "/v1/connector_accounts",
        {"provider": "paystack", "credentials": {"secret_key": "sk_test_never_called"}},
    )
    before = await row_counts(pool, merchant.id)
    refused = await api.post(
        "/v1/payments", confirmed_payment(currency="NGN", capture_method="manual")
    )
    _error(refused, "capability_not_supported", "capture_method")
    assert "manual capture" in refused.json()["error"]["message"]
    assert await row_counts(pool, merchant.id) == before

    # A simulator account that takes NGN can hold it.
    simulator = await _account(api, currencies=["NGN"])
    held = await api.post(
        "/v1/payments", confirmed_payment(currency="NGN", capture_method="manual")
    )
    assert held.status_code == 200, held.text
    assert (held.json()["status"], held.json()["connector_account"]) == (
        "requires_capture",
        simulator,
    )
