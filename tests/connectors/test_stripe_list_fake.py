"""The Stripe fake's lists of PaymentIntents, refunds and balance transactions, which a
reconciliation run reads (tests/fakes/stripe_balance/lists.py): objects with the types of
Stripe's own fixtures (``stripe-fixtures3.yaml``) in every field the run reads, ``created``
filters, ``starting_after`` pagination newest first, each secret key seeing only its own
objects (localstripe behind it shares one store), unknown parameters refused; and the
Stripe connector reading them through the official SDK."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from paygrid.connectors.base import AccountConfig
from paygrid.connectors.stripe.connector import StripeConnector
from paygrid.domain.reconciliation import ChargeState
from tests.connectors.test_stripe_balance_fake import fixture, shape_errors
from tests.fakes.stripe_balance import StripeFake

# The fields reconciliation reads, by object (listing.py and reconciliation.py).
READ_FIELDS = {
    "payment_intent": (
        "id",
        "object",
        "amount",
        "amount_received",
        "currency",
        "status",
        "created",
        "metadata",
        "latest_charge",
    ),
    "refund": ("id", "object", "amount", "currency", "status", "created", "payment_intent"),
}
LIST_KEYS = {"object", "data", "has_more", "url"}


def _client(fake: StripeFake, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=fake.base_url, auth=(key, ""), timeout=30)


async def _charge(http: httpx.AsyncClient, amount: int) -> dict[str, Any]:
    method = await http.post(
        "/v1/payment_methods",
        data={
            "type": "card",
            "card[number]": "4242424242424242",
            "card[exp_month]": "12",
            "card[exp_year]": "2034",
            "card[cvc]": "123",
        },
    )
    intent = await http.post(
        "/v1/payment_intents",
        data={
            "amount": str(amount),
            "currency": "usd",
            "payment_method": method.json()["id"],
            "confirm": "true",
            "metadata[paygrid_attempt_id]": f"pa_{amount}",
        },
    )
    assert intent.status_code == 200, intent.text
    body: dict[str, Any] = intent.json()
    return body


def _field_errors(kind: str, obj: dict[str, Any]) -> list[str]:
    example = fixture(kind)
    errors = [f"{kind}.{name}: not in Stripe's fixture" for name in READ_FIELDS[kind]]
    errors = [e for e, name in zip(errors, READ_FIELDS[kind], strict=True) if name not in example]
    for name in READ_FIELDS[kind]:
        if name not in obj:
            errors.append(f"{kind}.{name}: missing")
        elif name != "metadata":  # a fixture's {} fixes only the type
            errors += shape_errors(obj[name], example[name], f"{kind}.{name}")
        elif not isinstance(obj[name], dict):
            errors.append(f"{kind}.metadata: not an object")
    return errors


async def test_lists_have_stripes_shapes_filters_pages_and_keys(stripe_fake: StripeFake) -> None:
    mine, theirs = (f"sk_test_lists{uuid.uuid4().hex[:12]}" for _ in range(2))
    async with _client(stripe_fake, mine) as http, _client(stripe_fake, theirs) as other:
        made = [await _charge(http, amount) for amount in (1_000, 2_000, 3_000)]
        their = await _charge(other, 4_000)
        refund = await http.post("/v1/refunds", data={"payment_intent": made[0]["id"]})
        assert refund.status_code == 200, refund.text

        listed = (await http.get("/v1/payment_intents", params={"limit": 10})).json()
        assert set(listed) == LIST_KEYS and listed["url"] == "/v1/payment_intents"
        assert [i["id"] for i in listed["data"]] == [i["id"] for i in reversed(made)]
        for intent in listed["data"]:
            assert _field_errors("payment_intent", intent) == []
        refunds = (await http.get("/v1/refunds")).json()
        assert [r["id"] for r in refunds["data"]] == [refund.json()["id"]]
        assert _field_errors("refund", refunds["data"][0]) == []
        their_list = (await other.get("/v1/payment_intents")).json()["data"]
        assert [i["id"] for i in their_list] == [their["id"]]
        assert (await other.get("/v1/refunds")).json()["data"] == []

        first, newest = made[0]["created"], made[-1]["created"]
        after_all = {"created[gt]": str(newest)}
        assert (await http.get("/v1/payment_intents", params=after_all)).json()["data"] == []
        window = {"created[gte]": str(first), "created[lt]": str(newest + 1)}
        in_window = (await http.get("/v1/payment_intents", params=window)).json()["data"]
        assert len(in_window) == 3

        seen, after = [], None
        while True:
            params = {"limit": "1", **({"starting_after": after} if after else {})}
            page = (await http.get("/v1/payment_intents", params=params)).json()
            seen += [i["id"] for i in page["data"]]
            if not page["has_more"]:
                break
            after = page["data"][-1]["id"]
        assert seen == [i["id"] for i in reversed(made)]

        refused = await http.get("/v1/payment_intents", params={"created[after]": "1"})
        assert (refused.status_code, refused.json()["error"]["param"]) == (400, "created[after]")
        bad = await http.get("/v1/refunds", params={"created[gte]": "yesterday"})
        assert bad.status_code == 400


async def test_the_connector_lists_charges_fees_and_refunds(stripe_fake: StripeFake) -> None:
    key = f"sk_test_lists{uuid.uuid4().hex[:12]}"
    stripe = stripe_fake.account(key)
    async with _client(stripe_fake, key) as http:
        made = [await _charge(http, amount) for amount in (5_000, 6_000)]
        refund = (await http.post("/v1/refunds", data={"payment_intent": made[1]["id"]})).json()
    await stripe.pay_out([made[0]["id"]])
    await stripe.inject("fee", payment_intent=made[0]["id"], fee=123)
    connector = StripeConnector(
        AccountConfig(
            id="ca_lists",
            provider="stripe",
            livemode=False,
            secret_key=key,
            api_base=stripe_fake.base_url,
        ),
        localstripe=True,
    )
    try:
        charges = await connector.reconciliation_charges(made[0]["created"])
        refunds = await connector.reconciliation_refunds(made[0]["created"])
        later = await connector.reconciliation_charges(made[-1]["created"] + 1)
    finally:
        await connector.aclose()
    by_reference = {c.reference: c for c in charges}
    assert set(by_reference) == {made[0]["id"], made[1]["id"]} and later == []
    paid_out = by_reference[made[0]["id"]]
    assert (paid_out.state, paid_out.amount, paid_out.currency) == (
        ChargeState.SUCCEEDED,
        5_000,
        "USD",
    )
    assert (paid_out.fee, paid_out.attempt_id) == (123, "pa_5000")
    assert by_reference[made[1]["id"]].fee is None  # no balance transaction yet
    (listed_refund,) = refunds
    assert (listed_refund.reference, listed_refund.charge_reference) == (
        refund["id"],
        made[1]["id"],
    )
    assert (listed_refund.amount, listed_refund.succeeded) == (6_000, True)
