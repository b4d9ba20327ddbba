"""Who may use, attach and move a saved payment method (issue 11 §1.1, issue 18 §2 and §3):
a method attached to a customer pays only for that customer, an unattached one pays for one
payment only, a customer's methods are detached when the customer is deleted or erased, and
attaching or creating a method on a customer needs ``customers:write``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from paygrid.domain import scopes
from paygrid.services import customers as customers_service
from paygrid.services.merchants import NewMerchant, issue_key
from tests.conftest import SUCCESS_CARD, Api, auth, card, row_counts
from tests.integration.test_checkout import new_session, open_page, submit, tokenize

Json = dict[str, Any]
DECLINED_CARD = "4000000000000002"


def ok(response: httpx.Response) -> Json:
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def refused(response: httpx.Response, code: str, param: str, status: int = 400) -> Json:
    assert response.status_code == status, response.text
    error: Json = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        code,
        param,
    ), error
    return error


async def customer(api: Api, name: str) -> str:
    return str(ok(await api.post("/v1/customers", {"name": name}))["id"])


async def saved_card(api: Api, customer_id: str | None, number: str = SUCCESS_CARD) -> str:
    body = card(number) if customer_id is None else {**card(number), "customer": customer_id}
    return str(ok(await api.post("/v1/payment_methods", body))["id"])


def payment(customer_id: str | None, pm: str, *, confirm: bool = True, amount: int = 1000) -> Json:
    body: Json = {"amount": amount, "currency": "usd", "payment_method": pm, "confirm": confirm}
    if customer_id is not None:
        body["customer"] = customer_id
    return body


async def event_types(pool: asyncpg.Pool, object_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT type FROM events WHERE object_id = $1 ORDER BY created_at, id", object_id
    )
    return [r["type"] for r in rows]


# -- using a saved method ---------------------------------------------------------------------


async def test_a_customers_card_cannot_pay_for_another_customer(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    alice, bob = await customer(api, "Alice"), await customer(api, "Bob")
    alices_card = await saved_card(api, alice)

    before = await row_counts(pool, merchant.id)
    for confirm in (True, False):
        response = await api.post("/v1/payments", payment(bob, alices_card, confirm=confirm))
        error = refused(response, "payment_method_not_owned", "payment_method")
        assert alice not in error["message"]  # the page of another customer may show it
    assert await row_counts(pool, merchant.id) == before

    paid = ok(await api.post("/v1/payments", payment(alice, alices_card)))
    assert (paid["status"], paid["customer"], paid["payment_method"]) == (
        "succeeded",
        alice,
        alices_card,
    )
    again = ok(await api.post("/v1/payments", payment(alice, alices_card)))
    assert again["status"] == "succeeded"  # a saved card pays for its customer any number of times


async def test_confirm_checks_the_payments_own_customer(api: Api) -> None:
    alice, bob = await customer(api, "Alice"), await customer(api, "Bob")
    alices_card = await saved_card(api, alice)
    created = ok(
        await api.post("/v1/payments", {"amount": 500, "currency": "usd", "customer": bob})
    )
    response = await api.post(
        f"/v1/payments/{created['id']}/confirm", {"payment_method": alices_card}
    )
    refused(response, "payment_method_not_owned", "payment_method")
    current = ok(await api.get(f"/v1/payments/{created['id']}"))
    assert (current["status"], current["attempts"]) == ("requires_payment_method", [])


async def test_a_method_attached_to_a_customer_needs_that_customer_named(api: Api) -> None:
    alice = await customer(api, "Alice")
    alices_card = await saved_card(api, alice)
    error = refused(
        await api.post("/v1/payments", payment(None, alices_card)), "parameter_missing", "customer"
    )
    assert alices_card in error["message"]
    created = ok(await api.post("/v1/payments", {"amount": 500, "currency": "usd"}))
    response = await api.post(
        f"/v1/payments/{created['id']}/confirm", {"payment_method": alices_card}
    )
    refused(response, "parameter_missing", "customer")


async def test_the_hosted_checkout_refuses_another_customers_card(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    alice, bob = await customer(api, "Alice"), await customer(api, "Bob")
    alices_card = await saved_card(api, alice)
    session = await new_session(api, customer=bob)
    token, _ = await open_page(client, session["id"])
    response = await submit(client, session["id"], token, payment_method=alices_card)
    assert response.status_code == 400, response.text
    assert alice not in response.text
    charged = await pool.fetchval(
        "SELECT count(*) FROM payment_attempts WHERE payment_method_id = $1", alices_card
    )
    assert charged == 0
    assert ok(await api.get(f"/v1/checkout_sessions/{session['id']}"))["status"] == "open"

    # Bob's own card, tokenized by the page with its publishable key, pays.
    token, key = await open_page(client, session["id"])
    bobs_card = await tokenize(client, key, SUCCESS_CARD)
    paid = await submit(client, session["id"], token, payment_method=bobs_card)
    assert paid.status_code == 303, paid.text
    assert ok(await api.get(f"/v1/checkout_sessions/{session['id']}"))["status"] == "complete"


async def test_an_unattached_method_pays_for_one_payment_only(
    api: Api, client: httpx.AsyncClient, merchant: NewMerchant
) -> None:
    publishable = merchant.key("publishable", livemode=False)
    made = await client.post(
        "/v1/payment_methods", json=card(SUCCESS_CARD), headers=auth(publishable)
    )
    pm = ok(made)["id"]
    bob = await customer(api, "Bob")
    ok(await api.post("/v1/payments", payment(bob, pm)))
    for customer_id in (bob, None):
        error = refused(
            await api.post("/v1/payments", payment(customer_id, pm)),
            "payment_method_not_owned",
            "payment_method",
        )
        assert "one payment" in error["message"]
    # A method created inside a payment (payment_method_data) is that payment's too.
    inline = ok(
        await api.post(
            "/v1/payments",
            {
                "amount": 300,
                "currency": "usd",
                "confirm": True,
                "payment_method_data": card(SUCCESS_CARD),
            },
        )
    )
    refused(
        await api.post("/v1/payments", payment(None, inline["payment_method"])),
        "payment_method_not_owned",
        "payment_method",
    )
    # Saving it to a customer makes it reusable, for that customer.
    ok(await api.post(f"/v1/payment_methods/{inline['payment_method']}/attach", {"customer": bob}))
    ok(await api.post("/v1/payments", payment(bob, inline["payment_method"])))


async def test_a_declined_unattached_method_may_retry_its_own_payment_only(api: Api) -> None:
    pm = await saved_card(api, None, DECLINED_CARD)
    first = await api.post("/v1/payments", payment(None, pm))
    assert first.status_code == 402, first.text
    payment_id = first.json()["error"]["payment_id"]
    retry = await api.post(f"/v1/payments/{payment_id}/confirm", {"payment_method": pm})
    assert retry.status_code == 402, retry.text  # the same payment: declined again, not refused
    refused(
        await api.post("/v1/payments", payment(None, pm)),
        "payment_method_not_owned",
        "payment_method",
    )


# -- attaching, detaching, deleting -----------------------------------------------------------


async def test_attaching_a_card_of_another_customer_is_refused_until_detached(
    api: Api, pool: asyncpg.Pool
) -> None:
    alice, bob = await customer(api, "Alice"), await customer(api, "Bob")
    pm = await saved_card(api, alice)
    ok(await api.post(f"/v1/payment_methods/{pm}/attach", {"customer": alice}))  # same: no-op
    error = refused(
        await api.post(f"/v1/payment_methods/{pm}/attach", {"customer": bob}),
        "payment_method_already_attached",
        "payment_method",
    )
    assert "another customer" in error["message"]
    assert ok(await api.get(f"/v1/payment_methods/{pm}"))["customer"] == alice

    detached = ok(await api.post(f"/v1/payment_methods/{pm}/detach"))
    assert detached["customer"] is None
    assert "payment_method.detached" in await event_types(pool, pm)
    refused(
        await api.post("/v1/payments", payment(alice, pm)),
        "payment_method_not_owned",
        "payment_method",
    )
    moved = ok(await api.post(f"/v1/payment_methods/{pm}/attach", {"customer": bob}))
    assert moved["customer"] == bob
    ok(await api.post("/v1/payments", payment(bob, pm)))


async def test_deleting_a_customer_detaches_its_methods(api: Api, pool: asyncpg.Pool) -> None:
    alice = await customer(api, "Alice")
    cards = [await saved_card(api, alice), await saved_card(api, alice)]
    waiting = ok(await api.post("/v1/payments", payment(alice, cards[0], confirm=False)))
    ok(await api.delete(f"/v1/customers/{alice}"))

    for pm in cards:
        assert ok(await api.get(f"/v1/payment_methods/{pm}"))["customer"] is None
        assert (await event_types(pool, pm)).count("payment_method.detached") == 1
        event = await pool.fetchrow(
            "SELECT data FROM events WHERE object_id = $1 AND type = 'payment_method.detached'", pm
        )
        assert event is not None and event["data"]["object"]["customer"] is None
        error = refused(
            await api.post("/v1/payments", payment(None, pm)),
            "payment_method_not_owned",
            "payment_method",
        )
        assert "detached" in error["message"]
    assert ok(await api.get("/v1/payment_methods", customer=alice))["data"] == []
    # A payment that was waiting with one of them cannot be confirmed with it any more.
    confirm = await api.post(f"/v1/payments/{waiting['id']}/confirm")
    refused(confirm, "payment_method_not_owned", "payment_method")
    attempts = await pool.fetchval(
        "SELECT count(*) FROM payment_attempts WHERE payment_id = $1", waiting["id"]
    )
    assert attempts == 0


async def test_erasing_a_customer_detaches_its_methods(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    alice = await customer(api, "Alice")
    pm = await saved_card(api, alice)
    # Detached at the time the caller gives (its clock), not the database's.
    erased_at = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)
    await customers_service.erase_customer(pool, merchant.id, alice, "operator:test", now=erased_at)
    assert ok(await api.get(f"/v1/payment_methods/{pm}"))["customer"] is None
    assert await pool.fetchval("SELECT detached_at FROM payment_methods WHERE id = $1", pm) == (
        erased_at
    )
    assert await event_types(pool, pm) == ["payment_method.detached"]
    refused(
        await api.post("/v1/payments", payment(None, pm)),
        "payment_method_not_owned",
        "payment_method",
    )


# -- who may attach ---------------------------------------------------------------------------


async def test_only_keys_with_customers_write_put_methods_on_a_customer(
    api: Api, client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    alice = await customer(api, "Alice")
    pm = await saved_card(api, None)
    before = await row_counts(pool, merchant.id)
    for role in ("viewer", "operator", "support"):
        key = (
            await issue_key(pool, merchant.id, "secret", False, scopes=sorted(scopes.ROLES[role]))
        ).secret
        restricted = Api(client, key)
        for path, body in (
            ("/v1/payment_methods", {**card(SUCCESS_CARD), "customer": alice}),
            (f"/v1/payment_methods/{pm}/attach", {"customer": alice}),
            (f"/v1/payment_methods/{pm}/detach", {}),
        ):
            response = await restricted.post(path, body)
            assert response.status_code == 403, (role, path, response.text)
            error = response.json()["error"]
            assert (error["code"], error["missing_scope"]) == (
                "insufficient_permissions",
                "customers:write",
            )
    assert await row_counts(pool, merchant.id) == before

    writer = Api(
        client,
        (await issue_key(pool, merchant.id, "secret", False, scopes=["customers:write"])).secret,
    )
    assert ok(await writer.post("/v1/payment_methods", {**card(SUCCESS_CARD), "customer": alice}))

    publishable = Api(client, merchant.key("publishable", livemode=False))
    with_customer = await publishable.post(
        "/v1/payment_methods", {**card(SUCCESS_CARD), "customer": alice}
    )
    assert with_customer.status_code == 403
    assert with_customer.json()["error"]["code"] == "secret_key_required"
    assert ok(await publishable.post("/v1/payment_methods", card(SUCCESS_CARD)))["customer"] is None


# -- races (the payment's own write checks the rule again, under the method's row lock) -------


async def test_two_concurrent_first_uses_of_an_unattached_method_one_wins(
    api: Api, pool: asyncpg.Pool
) -> None:
    for run in range(20):
        pm = await saved_card(api, None)
        answers = await asyncio.gather(
            api.post("/v1/payments", payment(None, pm)),
            api.post("/v1/payments", payment(None, pm)),
        )
        statuses = sorted(response.status_code for response in answers)
        assert statuses == [200, 400], (run, [r.text for r in answers])
        won = next(r for r in answers if r.status_code == 200).json()
        assert won["status"] == "succeeded"
        lost = next(r for r in answers if r.status_code == 400)
        refused(lost, "payment_method_not_owned", "payment_method")
        used_by = await pool.fetch(
            "SELECT DISTINCT payment_id FROM payment_attempts WHERE payment_method_id = $1"
            " UNION SELECT id FROM payments WHERE payment_method_id = $1",
            pm,
        )
        assert [r["payment_id"] for r in used_by] == [won["id"]]


async def test_two_concurrent_confirms_with_one_unattached_method_one_wins(
    api: Api, pool: asyncpg.Pool
) -> None:
    for run in range(10):
        pm = await saved_card(api, None)
        waiting = [
            ok(await api.post("/v1/payments", {"amount": 700, "currency": "usd"}))["id"]
            for _ in range(2)
        ]
        answers = await asyncio.gather(
            *(api.post(f"/v1/payments/{p}/confirm", {"payment_method": pm}) for p in waiting)
        )
        assert sorted(r.status_code for r in answers) == [200, 400], (run, answers)
        refused(
            next(r for r in answers if r.status_code == 400),
            "payment_method_not_owned",
            "payment_method",
        )
        charged = await pool.fetchval(
            "SELECT count(DISTINCT payment_id) FROM payment_attempts WHERE payment_method_id = $1",
            pm,
        )
        assert charged == 1


async def test_a_payment_racing_its_customers_deletion_commits_first_or_is_refused(
    api: Api, pool: asyncpg.Pool
) -> None:
    for run in range(20):
        alice = await customer(api, "Alice")
        pm = await saved_card(api, alice)

        async def delete_later(delay: float, customer_id: str = alice) -> httpx.Response:
            await asyncio.sleep(delay)
            return await api.delete(f"/v1/customers/{customer_id}")

        paid, deleted = await asyncio.gather(
            api.post("/v1/payments", payment(alice, pm)), delete_later(run * 0.0005)
        )
        ok(deleted)
        assert ok(await api.get(f"/v1/payment_methods/{pm}"))["customer"] is None
        if paid.status_code == 200:
            assert paid.json()["status"] == "succeeded"
            # The payment was written before the method was detached (audit entries are
            # numbered as they are written, and the detach waited for the payment's lock).
            order = await pool.fetch(
                "SELECT action FROM audit_log WHERE (object_id = $1 AND action ="
                " 'payment.created') OR (object_id = $2 AND action = 'payment_method.updated'"
                " AND after->>'customer_id' IS NULL) ORDER BY id",
                paid.json()["id"],
                pm,
            )
            assert [r["action"] for r in order] == [
                "payment.created",
                "payment_method.updated",
            ], run
        else:
            assert paid.status_code == 400, paid.text
            assert paid.json()["error"]["code"] in (
                "payment_method_not_owned",
                "resource_missing",
            ), paid.text
            charged = await pool.fetchval(
                "SELECT count(*) FROM payment_attempts WHERE payment_method_id = $1", pm
            )
            assert charged == 0
