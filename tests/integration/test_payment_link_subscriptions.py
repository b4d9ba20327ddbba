"""A recurring payment link's first invoice is paid on-session, the customer on the page:
a card that asks for 3-D Secure is authenticated (the simulator's challenge) and saved for
the renewals; a payment still processing keeps the slot; and a crash between making the
subscription and settling the session never gives back the slot of a paid subscription."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

import asyncpg
import httpx

from paygrid.app import create_app
from paygrid.clock import FakeClock
from paygrid.config import Settings
from paygrid.dependencies import Deps
from paygrid.services import payment_link_checkout, payment_link_subscriptions
from paygrid.services.merchants import NewMerchant
from tests.conftest import TEST_BASE_URL, Api
from tests.integration.test_payment_links import (
    DECLINED_CARD,
    THREE_DS_CARD,
    Json,
    follow_local,
    new_link,
    new_price,
    ok,
    slug_of,
    submit,
    tokenize,
    visit,
)

LIMIT_ONE = {"completed_sessions": {"limit": 1}}


async def link_row(pool: asyncpg.Pool, link_id: str) -> tuple[int, int]:
    row = await pool.fetchrow(
        "SELECT reserved_count, completed_count FROM payment_links WHERE id = $1", link_id
    )
    assert row is not None
    return int(row["reserved_count"]), int(row["completed_count"])


async def link_session(pool: asyncpg.Pool, session_id: str) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT * FROM payment_link_sessions WHERE checkout_session_id = $1", session_id
    )
    assert row is not None
    return row


async def assert_subscribed(api: Api, pool: asyncpg.Pool, link: Json, session_id: str) -> Json:
    """The session's subscription is active, its first invoice paid by the session's
    payment, the card the customer's default; the slot is a completion."""
    row = await link_session(pool, session_id)
    assert row["status"] == "completed"
    sub = ok(await api.get(f"/v1/subscriptions/{row['subscription_id']}"))
    assert sub["status"] == "active" and sub["customer"] == row["customer_id"]
    invoice = ok(await api.get(f"/v1/invoices/{sub['latest_invoice']}"))
    assert (invoice["status"], invoice["payment"]) == ("paid", row["payment_id"])
    session = ok(await api.get(f"/v1/checkout_sessions/{session_id}"))
    assert (session["status"], session["payment"]) == ("complete", invoice["payment"])
    payment = ok(await api.get(f"/v1/payments/{invoice['payment']}"))
    customer = ok(await api.get(f"/v1/customers/{row['customer_id']}"))
    assert customer["invoice_settings"]["default_payment_method"] == payment["payment_method"]
    assert await link_row(pool, link["id"]) == (1, 1)
    return sub


async def test_three_d_secure_card_pays_the_first_invoice_on_session_and_renews_off_session(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    link = await new_link(api, await new_price(api, 900, interval="month"), restrictions=LIMIT_ONE)
    page = await visit(client, link)
    started = await submit(client, page, await tokenize(client, page.key, THREE_DS_CARD))
    assert started.status_code == 200, started.text
    bank_page = started.json()["navigate"]
    assert bank_page.startswith(f"{TEST_BASE_URL}/simulator/authenticate/")
    # While the customer authenticates, the only slot is theirs.
    assert await link_row(pool, link["id"]) == (1, 0)
    assert (await client.get(f"/l/{slug_of(link)}")).status_code == 410
    decided = await client.post(urlsplit(bank_page).path, data={"decision": "approve"})
    done = await follow_local(client, decided)
    assert done.status_code == 200 and "Thank you" in done.text
    sub = await assert_subscribed(api, pool, link, page.session_id)
    invoice = ok(await api.get(f"/v1/invoices/{sub['latest_invoice']}"))
    first = ok(await api.get(f"/v1/payments/{invoice['payment']}"))
    assert (first["off_session"], first["setup_future_usage"]) == (False, "off_session")
    # The saved card (3155: authenticated once) is charged off-session, as a renewal is.
    renewal = await api.post(
        "/v1/payments",
        {
            "amount": 900,
            "currency": "USD",
            "customer": sub["customer"],
            "payment_method": first["payment_method"],
            "confirm": True,
            "off_session": True,
        },
    )
    assert ok(renewal)["status"] == "succeeded"


async def test_a_refused_authentication_gives_the_slot_back(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    link = await new_link(api, await new_price(api, 900, interval="month"), restrictions=LIMIT_ONE)
    page = await visit(client, link)
    started = await submit(client, page, await tokenize(client, page.key, THREE_DS_CARD))
    bank_page = started.json()["navigate"]
    decided = await client.post(urlsplit(bank_page).path, data={"decision": "decline"})
    back = await follow_local(client, decided)
    assert back.status_code == 402, back.text
    assert await link_row(pool, link["id"]) == (0, 0)
    row = await link_session(pool, page.session_id)
    assert row["status"] == "released"
    sub = ok(await api.get(f"/v1/subscriptions/{row['subscription_id']}"))
    assert sub["status"] == "incomplete"  # expires after 23 hours, as Stripe's does
    # The customer pays the same subscription's first invoice with another card.
    again = await submit(client, page, await tokenize(client, page.key))
    assert again.status_code == 200, again.text
    assert (await assert_subscribed(api, pool, link, page.session_id))["id"] == sub["id"]


async def test_a_processing_first_payment_keeps_the_slot_until_it_settles(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool, deps: Deps
) -> None:
    link = await new_link(api, await new_price(api, 900, interval="month"), restrictions=LIMIT_ONE)
    page = await visit(client, link)
    method = await tokenize(client, page.key)
    deps.connectors.simulator.failure_mode = "timeout"  # charged; the answer is lost
    try:
        pending = await submit(client, page, method)
    finally:
        deps.connectors.simulator.failure_mode = "none"
    assert pending.status_code == 200, pending.text
    assert pending.json() == {"navigate": f"{page.path}/return"}
    assert await link_row(pool, link["id"]) == (1, 0)
    assert (await link_session(pool, page.session_id))["status"] == "reserved"
    # The processing page asks again: the provider has the charge, so it is paid.
    done = await follow_local(client, await client.get(f"{page.path}/return"))
    assert done.status_code == 200 and "Thank you" in done.text, done.text
    await assert_subscribed(api, pool, link, page.session_id)


async def test_a_crash_after_the_subscription_is_paid_keeps_the_slot(
    merchant: NewMerchant, deps: Deps, settings: Settings, pool: asyncpg.Pool
) -> None:
    """The process dies after the first invoice is paid, before the session settles: the
    settle path of stale slots finds the subscription and completes the session."""
    clock = FakeClock()
    deps = replace(deps, clock=clock)
    app = create_app(settings, deps=deps)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as client:
        api = Api(client, merchant.key("secret", livemode=False))
        price = await new_price(api, 900, interval="month")
        link_json = await new_link(api, price, restrictions=LIMIT_ONE)
        page = await visit(client, link_json)
        method = await tokenize(client, page.key)
        link = await payment_link_checkout.link_by_slug(deps, slug_of(link_json))
        assert link is not None
        found = await payment_link_checkout.session_of_link(deps, link, page.session_id)
        assert found is not None
        session = found[0]
        # The first half of a submit: the slot, the customer, the subscription, the charge.
        await payment_link_checkout.reserve(deps, link, session, "crash@example.com")
        state = await payment_link_subscriptions.start(
            deps,
            link,
            session,
            payment_method=method,
            email="crash@example.com",
            return_url=f"{TEST_BASE_URL}{page.path}/return",
        )
        assert state.outcome.payment is not None
        # ... and the crash came before the subscription was even recorded on the session.
        await pool.execute(
            "UPDATE payment_link_sessions SET subscription_id = NULL"
            " WHERE checkout_session_id = $1",
            page.session_id,
        )
        assert await link_row(pool, link.id) == (1, 0)
        clock.advance(timedelta(minutes=61))
        # The link is full: opening it settles the stale slot first, which completes it.
        gone = await client.get(f"/l/{slug_of(link_json)}")
        assert gone.status_code == 410 and "reached its limit" in gone.text
        await assert_subscribed(api, pool, link_json, page.session_id)


async def test_a_crash_before_any_charge_gives_the_slot_back(
    merchant: NewMerchant, deps: Deps, settings: Settings, pool: asyncpg.Pool
) -> None:
    """The process dies once the subscription exists but before its invoice is charged:
    nothing was paid, so the stale slot goes back and the link can be paid again."""
    clock = FakeClock()
    deps = replace(deps, clock=clock)
    app = create_app(settings, deps=deps)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as client:
        api = Api(client, merchant.key("secret", livemode=False))
        link_json = await new_link(
            api, await new_price(api, 900, interval="month"), restrictions=LIMIT_ONE
        )
        page = await visit(client, link_json)
        link = await payment_link_checkout.link_by_slug(deps, slug_of(link_json))
        assert link is not None
        found = await payment_link_checkout.session_of_link(deps, link, page.session_id)
        assert found is not None
        await payment_link_checkout.reserve(deps, link, found[0], "crash@example.com")
        await payment_link_subscriptions.prepare(deps, link, found[0], "crash@example.com")
        assert (await client.get(f"/l/{slug_of(link_json)}")).status_code == 410
        clock.advance(timedelta(minutes=61))
        assert (await client.get(f"/l/{slug_of(link_json)}")).status_code == 303
        assert await link_row(pool, link.id) == (0, 0)


async def test_another_email_after_a_decline_makes_another_customer(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    link = await new_link(api, await new_price(api, 900, interval="month"), restrictions=LIMIT_ONE)
    page = await visit(client, link)
    declined = await submit(client, page, await tokenize(client, page.key, DECLINED_CARD))
    assert declined.status_code == 402, declined.text
    first = (await link_session(pool, page.session_id))["customer_id"]
    paid = await submit(client, page, await tokenize(client, page.key), "other@example.com")
    assert paid.status_code == 200, paid.text
    sub = await assert_subscribed(api, pool, link, page.session_id)
    customer = ok(await api.get(f"/v1/customers/{sub['customer']}"))
    assert customer["email"] == "other@example.com" and customer["id"] != first


async def test_an_abandoned_authentication_is_canceled_and_gives_the_slot_back(
    merchant: NewMerchant, deps: Deps, settings: Settings, pool: asyncpg.Pool
) -> None:
    clock = FakeClock()
    app = create_app(settings, deps=replace(deps, clock=clock))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as client:
        api = Api(client, merchant.key("secret", livemode=False))
        link = await new_link(
            api, await new_price(api, 900, interval="month"), restrictions=LIMIT_ONE
        )
        page = await visit(client, link)
        started = await submit(client, page, await tokenize(client, page.key, THREE_DS_CARD))
        assert "navigate" in started.json()
        clock.advance(timedelta(minutes=61))
        assert (await client.get(f"/l/{slug_of(link)}")).status_code == 303
        assert await link_row(pool, link["id"]) == (0, 0)
        statuses = await pool.fetch(
            "SELECT status FROM payments WHERE merchant_id = $1", merchant.id
        )
        assert [r["status"] for r in statuses] == ["canceled"]
        row = await link_session(pool, page.session_id)
        invoice = await pool.fetchrow(
            "SELECT i.status, i.attempt_count FROM invoices i"
            " JOIN subscriptions s ON s.latest_invoice_id = i.id WHERE s.id = $1",
            row["subscription_id"],
        )
        assert invoice is not None and tuple(invoice) == ("open", 1)
