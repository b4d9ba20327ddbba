"""Subscriptions and invoices where they meet the rest of paygrid, over HTTP against the real
worker: webhooks of a subscription on a test clock (signed, stamped with the clock's time,
in causal order), the finalize delay of renewal invoices, ``/pay`` moving a ``past_due``
subscription at once, deleting a customer or its test clock, and ``/void`` racing
``/pay``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from standardwebhooks import Webhook

from paygrid.bootstrap import standard_registry
from paygrid.dependencies import Deps
from paygrid.services.billing.subscriptions.schedule import STEP
from paygrid.webhooks.dispatcher import EventDispatcher
from tests.conftest import Api
from tests.integration.test_subscriptions import (
    clock_customer,
    invoices_of,
    monthly_price,
    move,
    ok,
    subscribe,
)
from tests.integration.test_test_clocks import billing_worker, unix
from tests.integration.webhook_receiver import Receiver, receiver
from tests.integration.worker_harness import eventually, running

Json = dict[str, Any]
DAY = timedelta(days=1)
# In the past: events stamped with this clock's time still reach endpoints made today.
PAST = datetime(2020, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def hooks(deps: Deps) -> AsyncIterator[Receiver]:
    """A receiver, with the event dispatcher and a webhooks worker running."""
    stopping = asyncio.Event()
    dispatcher = asyncio.create_task(EventDispatcher(deps, poll_seconds=0.1).run(stopping))
    async with receiver() as received, running(deps, standard_registry(), "webhooks"):
        yield received
    stopping.set()
    await dispatcher


async def _object_events(pool: asyncpg.Pool, object_ids: set[str]) -> dict[str, str]:
    """The events about these objects: event id -> object id, in the order written."""
    rows = await pool.fetch(
        "SELECT id, object_id FROM events WHERE object_id = ANY($1::text[]) ORDER BY id",
        list(object_ids),
    )
    return {r["id"]: r["object_id"] for r in rows}


async def test_a_clock_subscriptions_webhooks_arrive_signed_in_causal_order(
    api: Api, deps: Deps, pool: asyncpg.Pool, hooks: Receiver
) -> None:
    endpoint = ok(
        await api.post("/v1/webhook_endpoints", {"url": hooks.url, "enabled_events": ["*"]})
    )
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, PAST)
    sub = await subscribe(api, customer, price, trial_period_days=7)
    async with billing_worker(deps, STEP):
        await move(api, clock, PAST + 8 * DAY)
        await move(api, clock, PAST + 70 * DAY)
    ended = ok(await api.post(f"/v1/subscriptions/{sub['id']}/cancel", {}))
    assert ended["status"] == "canceled"
    invoices = await invoices_of(api, customer)
    assert [i["status"] for i in invoices] == ["paid", "paid", "paid"]
    objects = {sub["id"], *(i["id"] for i in invoices)}
    expected = await _object_events(pool, objects)

    def ours() -> list[Json]:
        bodies = [json.loads(r.body) for r in hooks.received]
        return [b for b in bodies if b["id"] in expected]

    async def all_arrived() -> bool:
        return len(ours()) >= len(expected)

    await eventually(all_arrived, deadline=30)
    arrived = ours()
    assert sorted(e["id"] for e in arrived) == list(expected)  # each once
    secret = Webhook(endpoint["secret"])
    for received in hooks.received:
        secret.verify(received.body, received.headers)
    for object_id in objects:  # per object: in the order written, times never going back
        theirs = [e for e in arrived if expected[e["id"]] == object_id]
        assert [e["id"] for e in theirs] == sorted(e["id"] for e in theirs)
        assert [e["created"] for e in theirs] == sorted(e["created"] for e in theirs)
    subscription_events = [e for e in arrived if expected[e["id"]] == sub["id"]]
    assert subscription_events[0]["type"] == "customer.subscription.created"
    assert subscription_events[0]["created"] == unix(PAST)
    assert subscription_events[-1]["type"] == "customer.subscription.deleted"
    assert subscription_events[-1]["created"] == unix(PAST + 70 * DAY)
    for invoice in invoices:  # the clock's time, not today's
        theirs = [e for e in arrived if expected[e["id"]] == invoice["id"]]
        assert [e["type"] for e in theirs][:1] == ["invoice.created"]
        assert theirs[-1]["type"] == "invoice.paid"
        assert all(unix(PAST) <= e["created"] <= unix(PAST + 70 * DAY) for e in theirs)


async def test_a_renewal_invoice_is_finalized_and_charged_after_the_finalize_delay(
    api: Api, deps: Deps
) -> None:
    hourly = replace(
        deps, settings=deps.settings.model_copy(update={"invoice_finalize_delay_seconds": 3600})
    )
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, PAST)
    sub = await subscribe(api, customer, price, trial_period_days=7)
    trial_end = PAST + 7 * DAY
    async with billing_worker(hourly, STEP):
        await move(api, clock, trial_end + timedelta(minutes=59))
        (draft,) = await invoices_of(api, customer)
        assert (draft["status"], draft["number"], draft["payment"]) == ("draft", None, None)
        assert draft["created"] == unix(trial_end)
        assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["latest_invoice"] == draft["id"]

        await move(api, clock, trial_end + timedelta(hours=2))
    (paid,) = await invoices_of(api, customer)
    assert paid["status"] == "paid"
    assert paid["status_transitions"]["finalized_at"] == unix(trial_end + timedelta(hours=1))
    payment = ok(await api.get(f"/v1/payments/{paid['payment']}"))
    assert (payment["status"], payment["off_session"]) == ("succeeded", True)


async def test_paying_a_past_due_invoice_makes_the_subscription_active_at_once(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, PAST, number="4000002760003184")
    sub = await subscribe(api, customer, price, trial_period_days=5)
    async with billing_worker(deps, STEP):
        await move(api, clock, PAST + 6 * DAY)
    past_due = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
    assert past_due["status"] == "past_due"

    # No worker runs now: the schedule cannot be what moves it.
    paid = ok(
        await api.post(
            f"/v1/invoices/{past_due['latest_invoice']}/pay", {"payment_method": "pm_card_visa"}
        )
    )
    assert paid["status"] == "paid"
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "active"
    last = await pool.fetchrow(
        "SELECT type, data, created_at FROM events WHERE object_id = $1 ORDER BY id DESC LIMIT 1",
        sub["id"],
    )
    assert last is not None and last["type"] == "customer.subscription.updated"
    assert last["data"]["object"]["status"] == "active"
    assert last["created_at"] == PAST + 6 * DAY  # the customer's clock


async def _finalized_invoice(api: Api, customer: str, amount: int) -> Json:
    body = {"customer": customer, "amount": amount, "currency": "USD"}
    ok(await api.post("/v1/invoiceitems", body))
    draft = ok(await api.post("/v1/invoices", {"customer": customer}))
    return ok(await api.post(f"/v1/invoices/{draft['id']}/finalize", {}))


async def test_deleting_a_customer_cancels_its_subscriptions_and_voids_its_invoices(
    api: Api, pool: asyncpg.Pool
) -> None:
    price = await monthly_price(api)
    customer = ok(await api.post("/v1/customers", {"name": "Ada"}))["id"]
    sub = await subscribe(
        api, customer, price, default_payment_method="pm_card_visa", trial_period_days=30
    )
    other = await subscribe(api, customer, price, trial_period_days=30)
    opened = await _finalized_invoice(api, customer, 700)
    ok(await api.post("/v1/invoiceitems", {"customer": customer, "amount": 300, "currency": "USD"}))
    draft = ok(await api.post("/v1/invoices", {"customer": customer}))
    paid = await _finalized_invoice(api, customer, 900)
    ok(await api.post(f"/v1/invoices/{paid['id']}/pay", {"payment_method": "pm_card_visa"}))

    assert (await api.delete(f"/v1/customers/{customer}")).status_code == 200
    for subscription in (sub, other):
        ended = ok(await api.get(f"/v1/subscriptions/{subscription['id']}"))
        assert ended["status"] == "canceled"
        types = [
            r["type"]
            for r in await pool.fetch(
                "SELECT type FROM events WHERE object_id = $1 ORDER BY id", subscription["id"]
            )
        ]
        assert types[-1] == "customer.subscription.deleted"
    statuses = {}
    for invoice in (opened, draft, paid):
        statuses[invoice["id"]] = ok(await api.get(f"/v1/invoices/{invoice['id']}"))["status"]
    assert statuses == {opened["id"]: "void", draft["id"]: "void", paid["id"]: "paid"}
    voided = await pool.fetchval(
        "SELECT count(*) FROM events WHERE object_id = ANY($1::text[]) AND type = 'invoice.voided'",
        [opened["id"], draft["id"]],
    )
    assert voided == 2


async def test_deleting_a_test_clock_cancels_its_customers_subscriptions_at_its_time(
    api: Api,
) -> None:
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, PAST)
    sub = await subscribe(api, customer, price, trial_period_days=7)
    assert (await api.delete(f"/v1/test_clocks/{clock}")).status_code == 200
    ended = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
    assert (ended["status"], ended["canceled_at"], ended["ended_at"]) == (
        "canceled",
        unix(PAST),
        unix(PAST),
    )


async def test_void_racing_pay_never_leaves_a_charged_void_invoice(
    api: Api, pool: asyncpg.Pool
) -> None:
    customer = ok(await api.post("/v1/customers", {"name": "Ada"}))["id"]
    outcomes = set()
    for _ in range(12):
        invoice = await _finalized_invoice(api, customer, 1200)
        pay, void = await asyncio.gather(
            api.post(f"/v1/invoices/{invoice['id']}/pay", {"payment_method": "pm_card_visa"}),
            api.post(f"/v1/invoices/{invoice['id']}/void", {}),
        )
        final = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
        charged = await pool.fetch(
            "SELECT amount_received, amount_refunded FROM payments"
            " WHERE idempotency_key LIKE $1 AND status = 'succeeded'",
            f"invoice:{invoice['id']}:%",
        )
        kept = sum(r["amount_received"] - r["amount_refunded"] for r in charged)
        if final["status"] == "paid":
            assert (pay.status_code, void.status_code) == (200, 409), (pay.text, void.text)
            assert kept == 1200
        else:
            assert final["status"] == "void"
            assert void.status_code == 200 and pay.status_code == 409, (pay.text, void.text)
            assert charged == []  # the void went first: nothing was charged
        outcomes.add(final["status"])
    assert outcomes  # which one wins each race is up to the scheduler


async def test_an_objects_next_event_waits_for_its_earlier_one_to_be_answered(
    api: Api, pool: asyncpg.Pool, hooks: Receiver
) -> None:
    """Slow answers: without the wait, an object's two events would be in flight at once and
    arrive in either order."""
    hooks.delay_seconds = 0.3
    ok(await api.post("/v1/webhook_endpoints", {"url": hooks.url, "enabled_events": ["*"]}))
    body = {"amount": 1500, "currency": "USD", "confirm": True, "payment_method": "pm_card_visa"}
    payments = [ok(await api.post("/v1/payments", body))["id"] for _ in range(5)]
    written = await _object_events(pool, set(payments))

    async def all_arrived() -> bool:
        return len([r for r in hooks.received if r.headers["webhook-id"] in written]) == 10

    await eventually(all_arrived, deadline=30)
    arrived = [json.loads(r.body) for r in hooks.received if r.headers["webhook-id"] in written]
    for payment in payments:
        types = [e["type"] for e in arrived if e["data"]["object"]["id"] == payment]
        assert types == ["payment.created", "payment.succeeded"]
