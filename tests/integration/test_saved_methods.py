"""Saved methods and merchant-initiated charges over HTTP, at the simulator: saving with
``setup_future_usage`` or a setup intent (with 3-D Secure when the card needs it), the
mandate, off-session charges of the two authentication test cards, customers' default
methods, the events, and the service entry billing charges invoices with."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from paygrid.dependencies import Deps
from paygrid.services.context import Tenant
from paygrid.services.customers import erase_customer
from paygrid.services.merchants import NewMerchant
from paygrid.services.payments.off_session import OffSessionCharge, charge_off_session
from tests.conftest import Api, card

ONCE_CARD = "4000002500003155"  # authenticates once at setup, then off-session succeeds
ALWAYS_CARD = "4000002760003184"  # authenticates on every charge
MANDATE = {
    "customer_acceptance": {
        "type": "online",
        "online": {"ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0 (test)"},
    }
}


async def _customer(api: Api) -> str:
    response = await api.post("/v1/customers", {"email": "ada@example.com"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def _method(api: Api, number: str, customer: str | None = None) -> str:
    body: dict[str, Any] = dict(card(number))
    if customer is not None:
        body["customer"] = customer
    response = await api.post("/v1/payment_methods", body)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def _authenticate(client: httpx.AsyncClient, url: str, decision: str = "approve") -> None:
    path = urlsplit(url).path
    decided = await client.post(
        path,
        content=f"decision={decision}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert decided.status_code == 303, decided.text
    back = urlsplit(decided.headers["location"]).path
    if back.startswith("/payments/"):
        await client.get(back)  # paygrid's return route learns the outcome


def _off_session(customer: str, method: str, amount: int = 900) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": "USD",
        "confirm": True,
        "off_session": True,
        "customer": customer,
        "payment_method": method,
    }


async def _event_types(api: Api, object_id: str) -> list[str]:
    events = (await api.get("/v1/events", limit=100)).json()["data"]
    return [e["type"] for e in reversed(events) if e["data"]["object"]["id"] == object_id]


async def test_setup_future_usage_saves_after_3ds_then_off_session_charges_succeed(
    api: Api, client: httpx.AsyncClient
) -> None:
    customer = await _customer(api)
    first = await api.post(
        "/v1/payments",
        {
            "amount": 2500,
            "currency": "USD",
            "confirm": True,
            "customer": customer,
            "payment_method_data": card(ONCE_CARD),
            "setup_future_usage": "off_session",
            "mandate_data": MANDATE,
            "return_url": "https://shop.test/done",
        },
    )
    assert first.status_code == 200, first.text
    started = first.json()
    assert (started["status"], started["setup_future_usage"]) == (
        "requires_action",
        "off_session",
    )
    method = started["payment_method"]
    # Not saved before the customer authenticated.
    assert (await api.get(f"/v1/payment_methods/{method}")).json()["customer"] is None

    await _authenticate(client, started["next_action"]["redirect_to_url"]["url"])
    paid = (await api.get(f"/v1/payments/{started['id']}")).json()
    assert paid["status"] == "succeeded"
    saved = (await api.get(f"/v1/payment_methods/{method}")).json()
    assert saved["customer"] == customer and saved["mandate"] is not None
    mandate = (await api.get(f"/v1/mandates/{saved['mandate']}")).json()
    assert mandate["customer_acceptance"]["type"] == "online"
    assert mandate["customer_acceptance"]["online"] == MANDATE["customer_acceptance"]["online"]
    assert mandate["customer_acceptance"]["accepted_at"] > 0
    assert (mandate["customer"], mandate["payment_method"]) == (customer, method)
    assert "payment_method.attached" in await _event_types(api, method)

    charged = await api.post("/v1/payments", _off_session(customer, method))
    assert charged.status_code == 200, charged.text
    assert (charged.json()["status"], charged.json()["off_session"]) == ("succeeded", True)


async def test_off_session_needing_authentication_fails_and_waits_for_the_customer(
    api: Api, client: httpx.AsyncClient
) -> None:
    """A 3155 card attached without a setup has never been authenticated for off-session
    use: the charge is refused with authentication_required, never made on-session."""
    customer = await _customer(api)
    method = await _method(api, ONCE_CARD, customer)
    refused = await api.post("/v1/payments", _off_session(customer, method))
    assert refused.status_code == 402, refused.text
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("card_error", "authentication_required")
    payment = (await api.get(f"/v1/payments/{error['payment_id']}")).json()
    assert payment["status"] == "requires_action"
    assert payment["off_session"] is True
    assert payment["last_payment_error"]["code"] == "authentication_required"
    assert payment["attempts"][-1]["error_code"] == "authentication_required"
    # The customer, brought back on-session, authenticates the same payment.
    await _authenticate(client, payment["next_action"]["redirect_to_url"]["url"])
    assert (await api.get(f"/v1/payments/{payment['id']}")).json()["status"] == "succeeded"


async def test_a_card_that_always_authenticates_fails_off_session_even_after_setup(
    api: Api, client: httpx.AsyncClient
) -> None:
    customer = await _customer(api)
    method = await _method(api, ALWAYS_CARD)
    created = await api.post(
        "/v1/setup_intents",
        {"customer": customer, "payment_method": method, "confirm": True, "mandate_data": MANDATE},
    )
    assert created.status_code == 200, created.text
    setup = created.json()
    assert setup["status"] == "requires_action"
    await _authenticate(client, setup["next_action"]["redirect_to_url"]["url"])
    done = (await api.get(f"/v1/setup_intents/{setup['id']}")).json()
    assert done["status"] == "succeeded" and done["mandate"] is not None
    assert (await api.get(f"/v1/payment_methods/{method}")).json()["customer"] == customer

    refused = await api.post("/v1/payments", _off_session(customer, method))
    assert refused.status_code == 402, refused.text
    assert refused.json()["error"]["code"] == "authentication_required"
    payment_id = refused.json()["error"]["payment_id"]
    assert (await api.get(f"/v1/payments/{payment_id}")).json()["status"] == "requires_action"


async def test_a_once_card_set_up_by_a_setup_intent_charges_off_session(
    api: Api, client: httpx.AsyncClient
) -> None:
    customer = await _customer(api)
    method = await _method(api, ONCE_CARD)
    setup = (await api.post("/v1/setup_intents", {"customer": customer})).json()
    assert setup["status"] == "requires_payment_method"
    confirmed = await api.post(
        f"/v1/setup_intents/{setup['id']}/confirm", {"payment_method": method}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "requires_action"
    await _authenticate(client, confirmed.json()["next_action"]["redirect_to_url"]["url"])
    done = (await api.get(f"/v1/setup_intents/{setup['id']}")).json()
    assert done["status"] == "succeeded"
    # Retrieving again changes nothing and emits nothing more.
    assert (await api.get(f"/v1/setup_intents/{setup['id']}")).json() == done
    types = await _event_types(api, setup["id"])
    assert types == [
        "setup_intent.created",
        "setup_intent.requires_action",
        "setup_intent.succeeded",
    ]
    charged = await api.post("/v1/payments", _off_session(customer, method, 1234))
    assert charged.status_code == 200, charged.text
    assert charged.json()["status"] == "succeeded"


async def test_setup_intent_statuses_decline_and_cancel(api: Api) -> None:
    customer = await _customer(api)
    plain = await _method(api, "4242424242424242")
    ok = (
        await api.post(
            "/v1/setup_intents", {"customer": customer, "payment_method": plain, "confirm": True}
        )
    ).json()
    assert ok["status"] == "succeeded"
    assert ok["mandate"] is not None
    mandate = (await api.get(f"/v1/mandates/{ok['mandate']}")).json()
    assert mandate["customer_acceptance"] == {
        "type": "offline",
        "accepted_at": mandate["customer_acceptance"]["accepted_at"],
        "online": None,
    }
    again = await api.post(f"/v1/setup_intents/{ok['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "setup_intent_unexpected_state"

    declined_method = await _method(api, "4000000000000002")
    pending = (
        await api.post(
            "/v1/setup_intents", {"customer": customer, "payment_method": declined_method}
        )
    ).json()
    assert pending["status"] == "requires_confirmation"
    declined = await api.post(f"/v1/setup_intents/{pending['id']}/confirm")
    assert declined.status_code == 402
    assert declined.json()["error"]["code"] == "card_declined"
    failed = (await api.get(f"/v1/setup_intents/{pending['id']}")).json()
    assert failed["status"] == "requires_payment_method"
    assert failed["last_setup_error"]["code"] == "card_declined"
    assert failed["payment_method"] is None
    assert "setup_intent.setup_failed" in await _event_types(api, pending["id"])
    assert (await api.get(f"/v1/payment_methods/{declined_method}")).json()["customer"] is None

    canceled = await api.post(
        f"/v1/setup_intents/{pending['id']}/cancel", {"cancellation_reason": "abandoned"}
    )
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    listed = (await api.get("/v1/setup_intents", customer=customer)).json()["data"]
    assert [s["id"] for s in listed] == [pending["id"], ok["id"]]
    missing = await api.post("/v1/setup_intents", {"confirm": True})
    assert missing.status_code == 400


async def test_off_session_takes_only_a_method_saved_to_the_customer(api: Api) -> None:
    customer = await _customer(api)
    other = await _customer(api)
    theirs = await _method(api, "4242424242424242", other)
    unattached = await _method(api, "4242424242424242")
    for method, code in (
        (theirs, "payment_method_not_owned"),
        (unattached, "payment_method_not_owned"),
        ("pm_card_visa", "payment_method_not_owned"),
    ):
        refused = await api.post("/v1/payments", _off_session(customer, method))
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == code
    no_customer = {k: v for k, v in _off_session(customer, unattached).items() if k != "customer"}
    assert (await api.post("/v1/payments", no_customer)).status_code == 400
    not_confirmed = {**_off_session(customer, unattached), "confirm": False}
    assert (await api.post("/v1/payments", not_confirmed)).status_code == 400
    saving = {"amount": 100, "currency": "USD", "setup_future_usage": "off_session"}
    assert (await api.post("/v1/payments", saving)).status_code == 400


async def test_default_payment_method_is_cleared_when_detached(api: Api) -> None:
    customer = await _customer(api)
    other = await _customer(api)
    method = await _method(api, "4242424242424242", customer)
    theirs = await _method(api, "4242424242424242", other)
    refused = await api.post(
        f"/v1/customers/{customer}", {"invoice_settings": {"default_payment_method": theirs}}
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "invoice_settings[default_payment_method]"
    updated = await api.post(
        f"/v1/customers/{customer}", {"invoice_settings": {"default_payment_method": method}}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["invoice_settings"]["default_payment_method"] == method

    detached = await api.post(f"/v1/payment_methods/{method}/detach")
    assert detached.status_code == 200
    after = (await api.get(f"/v1/customers/{customer}")).json()
    assert after["invoice_settings"]["default_payment_method"] is None
    types = await _event_types(api, customer)
    assert types[-2:] == ["customer.updated", "customer.updated"]
    last = (await api.get("/v1/events", limit=1)).json()["data"][0]
    assert last["type"] == "payment_method.detached"
    # Detaching a method that is nobody's default leaves the customer alone.
    await api.post(f"/v1/payment_methods/{theirs}/detach")
    assert len(await _event_types(api, other)) == 1  # customer.created only


async def test_the_service_entry_charges_off_session_and_answers_with_the_payment(
    api: Api, client: httpx.AsyncClient, deps: Deps, merchant: NewMerchant
) -> None:
    """What billing calls for an invoice: the same use case, a payment either way."""
    tenant = Tenant(merchant.id, livemode=False)
    customer = await _customer(api)
    plain = await _method(api, "4242424242424242", customer)
    always = await _method(api, ALWAYS_CARD, customer)
    charge = OffSessionCharge(customer, plain, 4100, "USD", "invoice-in_1:attempt-1")
    paid = await charge_off_session(deps, tenant, charge)
    assert (paid.status, paid.off_session, paid.amount) == ("succeeded", True, 4100)
    assert (await charge_off_session(deps, tenant, charge)).id == paid.id  # no second charge
    waiting = await charge_off_session(
        deps, tenant, OffSessionCharge(customer, always, 4100, "USD", "invoice-in_2:attempt-1")
    )
    assert waiting.status == "requires_action"
    assert waiting.last_payment_error is not None
    assert waiting.last_payment_error.code == "authentication_required"


async def test_erasing_the_customer_blanks_the_mandates_ip_and_user_agent(
    api: Api, pool: asyncpg.Pool, deps: Deps, merchant: NewMerchant
) -> None:
    customer = await _customer(api)
    method = await _method(api, "4242424242424242")
    setup = await api.post(
        "/v1/setup_intents",
        {"customer": customer, "payment_method": method, "confirm": True, "mandate_data": MANDATE},
    )
    mandate_id = setup.json()["mandate"]
    before = (await api.get(f"/v1/mandates/{mandate_id}")).json()
    assert before["customer_acceptance"]["online"]["ip_address"] == "203.0.113.7"
    await erase_customer(pool, merchant.id, customer, "test:erasure", now=deps.clock.now())
    after = (await api.get(f"/v1/mandates/{mandate_id}")).json()
    assert after["customer_acceptance"]["online"] == {"ip_address": None, "user_agent": None}
    assert (
        after["customer_acceptance"]["accepted_at"] == before["customer_acceptance"]["accepted_at"]
    )


async def test_concurrent_confirms_of_one_setup_intent_verify_the_card_once(api: Api) -> None:
    customer = await _customer(api)
    method = await _method(api, "4242424242424242")
    setup = (
        await api.post("/v1/setup_intents", {"customer": customer, "payment_method": method})
    ).json()
    answers = await asyncio.gather(
        *(api.post(f"/v1/setup_intents/{setup['id']}/confirm") for _ in range(4))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) == 1, [a.text for a in answers]
    assert set(statuses) == {200, 409}
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.json()["error"]["code"] == "setup_intent_unexpected_state"
    types = await _event_types(api, setup["id"])
    assert types.count("setup_intent.succeeded") == 1
    won = next(a for a in answers if a.status_code == 200).json()
    assert (await api.get(f"/v1/mandates/{won['mandate']}")).status_code == 200


async def test_a_test_clock_customer_saves_on_its_clock(api: Api) -> None:
    frozen = 1_893_456_000  # 2030-01-01
    clock = await api.post("/v1/test_clocks", {"frozen_time": frozen})
    assert clock.status_code == 200, clock.text
    customer = (await api.post("/v1/customers", {"test_clock": clock.json()["id"]})).json()["id"]
    method = await _method(api, "4242424242424242")
    setup = await api.post(
        "/v1/setup_intents", {"customer": customer, "payment_method": method, "confirm": True}
    )
    assert setup.status_code == 200, setup.text
    assert setup.json()["created"] == frozen
    mandate = (await api.get(f"/v1/mandates/{setup.json()['mandate']}")).json()
    assert mandate["customer_acceptance"]["accepted_at"] == frozen
