"""The Stripe balance fake (tests/fakes/stripe_balance) against Stripe's own object fixtures
(``stripe-fixtures3.yaml``, read in place from PAYGRID_TEST_STRIPE_FIXTURES or
``../shared/specs``, never copied here): every payout and balance transaction it answers
has exactly the fixture's keys, each of the fixture's type. Also: its discrepancy controls,
and the Stripe connector reading its payouts through the official SDK."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from paygrid.connectors.base import AccountConfig
from paygrid.connectors.stripe.connector import StripeConnector
from paygrid.domain.settlements import SettlementStatus, SettlementTransactionType
from tests.fakes.stripe_balance import StripeFake, StripeFakeAccount
from tests.fakes.stripe_balance.ledger import default_fee

ROOT = Path(__file__).resolve().parents[2]


@cache
def _fixtures() -> dict[str, Any] | None:
    configured = os.environ.get("PAYGRID_TEST_STRIPE_FIXTURES")
    path = Path(configured) if configured else ROOT.parent / "shared/specs/stripe-fixtures3.yaml"
    if not path.is_file():
        return None
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def fixture(name: str) -> dict[str, Any]:
    """Stripe's example object ``name``, e.g. ``payout``."""
    fixtures = _fixtures()
    if fixtures is None:
        why = "Stripe's fixtures (PAYGRID_TEST_STRIPE_FIXTURES, ../shared/specs) are missing"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why)
        pytest.skip(why)
    found: dict[str, Any] = fixtures["resources"][name]
    return found


def shape_errors(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """Where ``ours`` differs from the fixture in keys or types. A fixture ``null`` admits any
    value (Stripe leaves optional fields null in its examples); anything else must have the
    same JSON type (an int is not a bool, a dict has the same keys, recursively)."""
    if theirs is None:
        return []
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{where}: {type(ours).__name__}, not an object"]
        errors = [f"{where}: keys {sorted(set(ours) ^ set(theirs))} differ"] * (
            set(ours) != set(theirs)
        )
        for key in set(ours) & set(theirs):
            errors += shape_errors(ours[key], theirs[key], f"{where}.{key}")
        return errors
    if isinstance(theirs, list):
        if not isinstance(ours, list):
            return [f"{where}: {type(ours).__name__}, not a list"]
        if not theirs:  # an empty example list fixes only the type
            return []
        return [e for i, o in enumerate(ours) for e in shape_errors(o, theirs[0], f"{where}[{i}]")]
    if type(ours) is not type(theirs):
        return [f"{where}: {type(ours).__name__} {ours!r}, not {type(theirs).__name__}"]
    return []


def test_the_shape_check_catches_what_it_must() -> None:
    """The comparison itself: a missing key, an extra key and a wrong type each fail."""
    example = {"id": "txn_1", "amount": 100, "fee_details": [], "trace_id": {"status": "x"}}
    assert shape_errors(dict(example), example) == []
    assert shape_errors({**example, "extra": 1}, example)
    assert shape_errors({k: v for k, v in example.items() if k != "fee_details"}, example)
    assert shape_errors({**example, "amount": "100"}, example)
    assert shape_errors({**example, "amount": True}, example)
    assert shape_errors({**example, "trace_id": {"value": None}}, example)


async def _paid_intent(account: StripeFakeAccount, amount: int) -> str:
    """A PaymentIntent charged at localstripe, through the fake's pass-through."""
    auth = (account.secret_key, "")
    async with httpx.AsyncClient(base_url=account.fake.base_url, auth=auth) as http:
        card = {
            "type": "card",
            "card[number]": "4242424242424242",
            "card[exp_month]": "12",
            "card[exp_year]": "2034",
            "card[cvc]": "123",
        }
        method = (await http.post("/v1/payment_methods", data=card)).json()
        intent = await http.post(
            "/v1/payment_intents",
            data={
                "amount": str(amount),
                "currency": "usd",
                "payment_method": method["id"],
                "confirm": "true",
            },
        )
    assert intent.status_code == 200, intent.text
    assert intent.json()["status"] == "succeeded"
    return str(intent.json()["id"])


def _account(stripe_fake: StripeFake) -> StripeFakeAccount:
    return stripe_fake.account(f"sk_test_fake{uuid.uuid4().hex[:16]}")


async def test_payouts_and_balance_transactions_have_the_fixtures_shape(
    stripe_fake: StripeFake,
) -> None:
    account = _account(stripe_fake)
    intent = await _paid_intent(account, 5_000)
    made = await account.pay_out([intent], status="in_transit")

    payouts = (await account.api("GET", "/v1/payouts", limit=10)).json()
    assert set(payouts) == {"object", "data", "has_more", "url"}
    (payout,) = payouts["data"]
    assert shape_errors(payout, fixture("payout")) == []
    assert payout["id"] == made["id"]
    assert (payout["status"], payout["amount"]) == ("in_transit", 5_000 - default_fee(5_000))
    assert (
        shape_errors(
            (await account.api("GET", f"/v1/payouts/{made['id']}")).json(), fixture("payout")
        )
        == []
    )

    listed = (await account.api("GET", "/v1/balance_transactions", payout=made["id"])).json()
    assert {t["type"] for t in listed["data"]} == {"charge", "payout"}
    for transaction in listed["data"]:
        assert shape_errors(transaction, fixture("balance_transaction")) == []
        assert transaction["amount"] - transaction["fee"] == transaction["net"]
    one = listed["data"][0]
    fetched = (await account.api("GET", f"/v1/balance_transactions/{one['id']}")).json()
    assert fetched == one
    assert sum(t["net"] for t in listed["data"] if t["type"] != "payout") == payout["amount"]


async def test_an_injected_fee_is_charged_at_payout(stripe_fake: StripeFake) -> None:
    account = _account(stripe_fake)
    intent = await _paid_intent(account, 8_000)
    await account.inject("fee", payment_intent=intent, fee=123)
    made = await account.pay_out([intent])
    listed = (await account.api("GET", "/v1/balance_transactions", payout=made["id"])).json()
    (charge,) = [t for t in listed["data"] if t["type"] == "charge"]
    assert (charge["amount"], charge["fee"], charge["net"]) == (8_000, 123, 7_877)
    assert charge["fee_details"][0]["amount"] == 123
    again = await account.api("POST", "/_fake/payouts")  # a source is paid out once
    assert again.status_code == 400


async def test_the_other_discrepancies_change_what_stripe_reports(stripe_fake: StripeFake) -> None:
    account = _account(stripe_fake)
    hidden, drifted, refunded = [await _paid_intent(account, 1_000 * n) for n in (1, 2, 3)]
    await account.inject("missing_charge", payment_intent=hidden)
    assert (await account.api("GET", f"/v1/payment_intents/{hidden}")).status_code == 404
    await account.inject("amount", payment_intent=drifted, amount=2_222)
    await account.inject("status", payment_intent=drifted, status="processing")
    shown = (await account.api("GET", f"/v1/payment_intents/{drifted}")).json()
    assert (shown["amount"], shown["status"]) == (2_222, "processing")
    listed = (await account.api("GET", "/v1/payment_intents", limit=100)).json()["data"]
    assert hidden not in {i["id"] for i in listed}
    unknown = await account.inject("unknown_charge", amount=4_444, currency="usd")
    refund = await account.inject("dashboard_refund", payment_intent=refunded, amount=500)
    made = await account.pay_out([drifted])
    lines = (await account.api("GET", "/v1/balance_transactions", payout=made["id"])).json()["data"]
    amounts = sorted(t["amount"] for t in lines if t["type"] != "payout")
    assert amounts == [-500, 2_222, 4_444]
    (refund_line,) = [t for t in lines if t["type"] == "refund"]
    assert refund_line["source"] == refund["refund"]
    assert unknown["payment_intent"].startswith("pi_")


async def test_the_connector_reads_payouts_through_the_sdk(stripe_fake: StripeFake) -> None:
    account = _account(stripe_fake)
    intent = await _paid_intent(account, 6_000)
    made = await account.pay_out([intent], status="pending")
    created = datetime.fromtimestamp(made["created"], UTC)
    config = AccountConfig(
        id="ca_test",
        provider="stripe",
        livemode=False,
        secret_key=account.secret_key,
        api_base=stripe_fake.base_url,
    )
    connector = StripeConnector(config, localstripe=True)
    try:
        (settlement,) = await connector.list_settlements(created - timedelta(days=1))
        (line,) = await connector.settlement_transactions(settlement)
        future = await connector.list_settlements(created + timedelta(seconds=1))
    finally:
        await connector.aclose()
    assert (settlement.status, settlement.currency) == (SettlementStatus.PENDING, "USD")
    assert settlement.net == 6_000 - default_fee(6_000)
    assert (line.type, line.payment_reference) == (SettlementTransactionType.CHARGE, intent)
    assert line.source_id is not None and line.source_id.startswith("ch_")
    assert future == []
