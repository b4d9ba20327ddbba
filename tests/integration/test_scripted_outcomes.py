"""Scripted outcomes and Stripe's test cards over HTTP (issue 14 §2): a saved method's next
charges at the simulator end as scripted, one outcome per charge, in order, never taken twice
by concurrent charges; the card's own behaviour afterwards; test mode only; isolation. And
the declining test cards: attach fine (0341) or decline with Stripe's decline codes, which
reach the payment's ``last_payment_error``."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from paygrid.connectors.base import AuthorizeRequest, CardDetails
from paygrid.dependencies import Deps
from paygrid.domain.scripted_outcomes import ScriptedOutcome
from paygrid.services.billing.subscriptions.schedule import STEP
from paygrid.services.merchants import NewMerchant
from tests.conftest import SUCCESS_CARD, Api, card
from tests.integration.test_subscriptions import (
    clock_customer,
    invoices_of,
    monthly_price,
    move,
    subscribe,
)
from tests.integration.test_test_clocks import billing_worker

Json = dict[str, Any]
PAST = datetime(2020, 5, 1, 9, 0, tzinfo=UTC)
DECLINED = "requires_payment_method"  # a declined payment waits for another method


def ok(response: httpx.Response) -> Json:
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def saved_method(api: Api, number: str = SUCCESS_CARD) -> tuple[str, str]:
    customer = ok(await api.post("/v1/customers", {"email": "ada@example.com"}))["id"]
    method = ok(await api.post("/v1/payment_methods", {"customer": customer, **card(number)}))
    return customer, method["id"]


async def charge(api: Api, customer: str, method: str, amount: int = 900) -> httpx.Response:
    body = {
        "amount": amount,
        "currency": "USD",
        "confirm": True,
        "off_session": True,
        "customer": customer,
        "payment_method": method,
    }
    return await api.post("/v1/payments", body)


async def script(api: Api, method: str, *outcomes: str) -> httpx.Response:
    return await api.post(
        f"/v1/test_helpers/payment_methods/{method}/outcomes", {"outcomes": list(outcomes)}
    )


async def outcome_of(api: Api, response: httpx.Response) -> tuple[str, str | None]:
    """(payment status, decline code) of a charge's answer."""
    if response.status_code == 200:
        return response.json()["status"], None
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    payment = ok(await api.get(f"/v1/payments/{error['payment_id']}"))
    assert payment["last_payment_error"]["decline_code"] == error.get("decline_code")
    return payment["status"], payment["last_payment_error"]["decline_code"]


async def test_declined_twice_then_succeeds_then_the_card_behaves_as_itself(api: Api) -> None:
    customer, method = await saved_method(api)
    scripted = ok(await script(api, method, "insufficient_funds", "insufficient_funds"))
    assert scripted == {
        "object": "payment_method_outcomes",
        "payment_method": method,
        "outcomes": ["insufficient_funds", "insufficient_funds"],
    }
    ok(await script(api, method, "succeeded"))  # appended

    first = await charge(api, customer, method)
    assert first.status_code == 402
    error = first.json()["error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error",
        "insufficient_funds",
        "insufficient_funds",
    )
    assert await outcome_of(api, first) == (DECLINED, "insufficient_funds")
    assert await outcome_of(api, await charge(api, customer, method)) == (
        DECLINED,
        "insufficient_funds",
    )
    assert await outcome_of(api, await charge(api, customer, method)) == ("succeeded", None)
    # The script is used up: a 4242 card pays.
    assert await outcome_of(api, await charge(api, customer, method)) == ("succeeded", None)


@pytest.mark.parametrize(
    ("outcome", "code", "decline_code"),
    [
        ("stolen_card", "card_declined", "stolen_card"),
        ("lost_card", "card_declined", "lost_card"),
        ("card_declined", "card_declined", "generic_decline"),
        ("generic_decline", "card_declined", "generic_decline"),
        ("do_not_honor", "card_declined", "do_not_honor"),
        ("fraudulent", "card_declined", "fraudulent"),
        ("pickup_card", "card_declined", "pickup_card"),
        ("invalid_account", "card_declined", "invalid_account"),
        ("card_not_supported", "card_declined", "card_not_supported"),
        ("try_again_later", "card_declined", "try_again_later"),
        ("issuer_not_available", "card_declined", "issuer_not_available"),
        ("expired_card", "expired_card", "expired_card"),
        ("processing_error", "processing_error", "processing_error"),
    ],
)
async def test_each_decline_reaches_the_payment_as_stripe_names_it(
    api: Api, outcome: str, code: str, decline_code: str
) -> None:
    customer, method = await saved_method(api)
    ok(await script(api, method, outcome))
    answer = await charge(api, customer, method)
    assert answer.status_code == 402, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["decline_code"]) == (code, decline_code)
    payment = ok(await api.get(f"/v1/payments/{error['payment_id']}"))
    assert payment["last_payment_error"]["code"] == code
    assert payment["last_payment_error"]["decline_code"] == decline_code
    assert payment["attempts"][-1]["decline_code"] == decline_code


async def test_authentication_required_waits_for_the_customer_off_session(api: Api) -> None:
    customer, method = await saved_method(api)
    ok(await script(api, method, "authentication_required"))
    answer = await charge(api, customer, method)
    assert answer.status_code == 402, answer.text
    error = answer.json()["error"]
    assert error["code"] == "authentication_required"
    payment = ok(await api.get(f"/v1/payments/{error['payment_id']}"))
    assert payment["status"] == "requires_action"
    assert payment["next_action"]["type"] == "redirect_to_url"


async def test_concurrent_charges_never_take_the_same_outcome(api: Api) -> None:
    customer, method = await saved_method(api)
    outcomes = ["insufficient_funds"] * 4 + ["stolen_card"] * 4
    ok(await script(api, method, *outcomes))
    answers = await asyncio.gather(*(charge(api, customer, method) for _ in range(12)))
    results = [await outcome_of(api, answer) for answer in answers]
    declines = sorted(str(code) for status, code in results if status == DECLINED)
    assert declines == sorted(["insufficient_funds"] * 4 + ["stolen_card"] * 4)
    assert sum(status == "succeeded" for status, _ in results) == 4
    left = ok(await script(api, method, "succeeded"))
    assert left["outcomes"] == ["succeeded"]


async def test_a_repeated_request_takes_no_second_outcome(api: Api) -> None:
    customer, method = await saved_method(api)
    ok(await script(api, method, "do_not_honor", "lost_card"))
    body = {
        "amount": 700,
        "currency": "USD",
        "confirm": True,
        "off_session": True,
        "customer": customer,
        "payment_method": method,
    }
    first = await api.post("/v1/payments", body, **{"Idempotency-Key": "script-repeat-1"})
    again = await api.post("/v1/payments", body, **{"Idempotency-Key": "script-repeat-1"})
    assert first.status_code == again.status_code == 402
    assert first.json()["error"]["decline_code"] == "do_not_honor"
    assert again.json()["error"]["payment_id"] == first.json()["error"]["payment_id"]
    assert again.json()["error"]["decline_code"] == "do_not_honor"
    assert await outcome_of(api, await charge(api, customer, method)) == (DECLINED, "lost_card")


async def test_the_simulator_takes_no_outcome_for_a_repeated_key(deps: Deps) -> None:
    """A provider call repeated with the same idempotency key (a retry after a lost answer)
    answers with the first charge and leaves the script alone, even when concurrent."""
    simulator = deps.connectors.simulator
    for _ in range(10):  # the race is a matter of interleaving: run it often
        token = await simulator.tokenize_card(CardDetails(SUCCESS_CARD, 12, 2034, "123"))
        await simulator.script_outcomes(
            token.token,
            [ScriptedOutcome.STOLEN_CARD, ScriptedOutcome.LOST_CARD],
            merchant_id="mer_test",
            payment_method_id="pm_test",
        )
        request = AuthorizeRequest(
            idempotency_key=f"att_{uuid.uuid4().hex}",
            amount=500,
            currency="USD",
            capture=True,
            payment_method_token=token.token,
            return_url="http://testserver/return",
            off_session=True,
        )
        results = await asyncio.gather(*(simulator.authorize(request) for _ in range(5)))
        assert {r.provider_reference for r in results} == {results[0].provider_reference}
        assert {r.decline.decline_code for r in results if r.decline} == {"stolen_card"}
        assert await simulator.scripted_outcomes(token.token) == [ScriptedOutcome.LOST_CARD]


async def test_live_mode_is_refused(
    client: httpx.AsyncClient, merchant: NewMerchant, api: Api
) -> None:
    _, method = await saved_method(api)
    live = Api(client, merchant.key("secret", livemode=True))
    refused = await script(live, method, "succeeded")
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "test_mode_only"


async def test_another_merchants_method_is_404_and_its_script_is_untouched(
    api: Api, client: httpx.AsyncClient, other_merchant: NewMerchant
) -> None:
    customer, method = await saved_method(api)
    other = Api(client, other_merchant.key("secret", livemode=False))
    refused = await script(other, method, "stolen_card")
    assert refused.status_code == 404, refused.text
    assert refused.json()["error"]["code"] == "resource_missing"
    missing = await script(api, "pm_does_not_exist", "stolen_card")
    assert missing.status_code == 404
    assert await outcome_of(api, await charge(api, customer, method)) == ("succeeded", None)


@pytest.mark.parametrize(
    "body",
    [
        {"outcomes": []},
        {"outcomes": ["explode"]},
        {"outcomes": "succeeded"},
        {"outcomes": ["succeeded"] * 51},
        {},
    ],
)
async def test_malformed_scripts_are_400(api: Api, body: Json) -> None:
    _, method = await saved_method(api)
    response = await api.post(f"/v1/test_helpers/payment_methods/{method}/outcomes", body)
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    ("number", "decline_code"),
    [
        ("4000000000000341", "generic_decline"),
        ("4000000000009979", "stolen_card"),
        ("4000000000009987", "lost_card"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
    ],
)
async def test_stripes_declining_test_cards_attach_then_decline(
    api: Api, number: str, decline_code: str
) -> None:
    customer, method = await saved_method(api, number)
    attached = ok(await api.get(f"/v1/payment_methods/{method}"))
    assert attached["customer"] == customer
    first = await charge(api, customer, method)
    assert await outcome_of(api, first) == (DECLINED, decline_code)
    assert await outcome_of(api, await charge(api, customer, method)) == (DECLINED, decline_code)


async def test_0341_sets_up_fine_and_only_its_charges_decline(api: Api) -> None:
    customer, method = await saved_method(api, "4000000000000341")
    setup = ok(await api.post("/v1/setup_intents", {"customer": customer}))
    confirmed = ok(
        await api.post(f"/v1/setup_intents/{setup['id']}/confirm", {"payment_method": method})
    )
    assert confirmed["status"] == "succeeded"
    assert await outcome_of(api, await charge(api, customer, method)) == (
        DECLINED,
        "generic_decline",
    )


@pytest.mark.parametrize(
    ("magic", "decline_code"),
    [
        ("pm_card_visa_chargeDeclinedStolenCard", "stolen_card"),
        ("pm_card_visa_chargeDeclinedLostCard", "lost_card"),
    ],
)
async def test_stripes_magic_ids_for_stolen_and_lost_cards(
    api: Api, magic: str, decline_code: str
) -> None:
    body = {"amount": 500, "currency": "USD", "confirm": True, "payment_method": magic}
    answer = await api.post("/v1/payments", body)
    assert answer.status_code == 402, answer.text
    assert answer.json()["error"]["decline_code"] == decline_code


async def test_the_worker_charges_take_what_the_api_scripted(api: Api, deps: Deps) -> None:
    """A renewal charged by the worker (another process in production) takes the outcome
    the API scripted: the script is in the database, not in a process."""
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, PAST)
    method = ok(await api.get(f"/v1/customers/{customer}"))["invoice_settings"][
        "default_payment_method"
    ]
    ok(await script(api, method, "insufficient_funds"))
    await subscribe(api, customer, price, trial_period_days=7)
    async with billing_worker(deps, STEP):
        await move(api, clock, PAST + timedelta(days=7, hours=1))
    (invoice,) = await invoices_of(api, customer)
    assert invoice["status"] != "paid"  # what follows is dunning's (a retry days later)
    assert invoice["payment"] is not None
    payment = ok(await api.get(f"/v1/payments/{invoice['payment']}"))
    assert payment["last_payment_error"]["decline_code"] == "insufficient_funds"
    assert payment["off_session"] is True
    assert ok(await script(api, method, "succeeded"))["outcomes"] == ["succeeded"]
