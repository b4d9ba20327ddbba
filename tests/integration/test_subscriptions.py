"""Subscriptions over HTTP against the real worker, on test clocks: trials, renewals exactly
once per period (repeated and concurrent advances included), billing dates from the anchor,
pause and resume, cancel at the end of the period, zero- and three-decimal currencies, and
an upgrade invoiced at once with the proration formula's lines."""

from __future__ import annotations

import asyncio
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paygrid.clock import FrozenClock
from paygrid.db import subscriptions as subs_db
from paygrid.db.subscriptions import ProrationRow, SubscriptionItemRow, SubscriptionRow
from paygrid.dependencies import Deps
from paygrid.domain.subscriptions import SubscriptionAction, SubscriptionStatus, allowed_sources
from paygrid.services.billing.subscriptions import schedule
from paygrid.services.billing.subscriptions.schedule import STEP
from paygrid.services.merchants import NewMerchant
from paygrid.worker.registry import JobContext
from tests.conftest import SUCCESS_CARD, Api, card
from tests.integration.test_test_clocks import (
    advance,
    billing_worker,
    create_clock,
    unix,
    until_ready,
)

Json = dict[str, Any]
DAY = timedelta(days=1)
T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def other_api(client: httpx.AsyncClient, other_merchant: NewMerchant) -> Api:
    return Api(client, other_merchant.key("secret", livemode=False))


def ok(response: httpx.Response) -> Json:
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def monthly_price(api: Api, amount: int = 1500, currency: str = "USD") -> str:
    product = ok(await api.post("/v1/products", {"name": "Gold plan"}))
    body = {
        "product": product["id"],
        "currency": currency,
        "unit_amount": amount,
        "recurring": {"interval": "month"},
    }
    return str(ok(await api.post("/v1/prices", body))["id"])


async def clock_customer(api: Api, frozen: datetime, number: str = SUCCESS_CARD) -> tuple[str, str]:
    """A test clock at ``frozen`` and a customer on it with a saved default card."""
    clock = await create_clock(api, frozen)
    customer = ok(await api.post("/v1/customers", {"test_clock": clock["id"]}))["id"]
    method = ok(await api.post("/v1/payment_methods", {"customer": customer, **card(number)}))["id"]
    settings = {"invoice_settings": {"default_payment_method": method}}
    ok(await api.post(f"/v1/customers/{customer}", settings))
    return clock["id"], customer


async def move(api: Api, clock_id: str, to: datetime) -> None:
    answer = await advance(api, clock_id, to)
    assert answer.status_code == 200, answer.text
    await until_ready(api, clock_id)


async def invoices_of(api: Api, customer: str) -> list[Json]:
    data: list[Json] = ok(await api.get("/v1/invoices", customer=customer, limit=100))["data"]
    return sorted(data, key=lambda invoice: invoice["id"])


async def subscribe(api: Api, customer: str, price: str, **fields: Any) -> Json:
    body = {"customer": customer, "items": [{"price": price}], **fields}
    return ok(await api.post("/v1/subscriptions", body))


async def test_a_trial_then_renewals_charged_off_session_once_per_period(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price, trial_period_days=7)
    assert (sub["status"], sub["latest_invoice"]) == ("trialing", None)
    assert sub["trial_end"] == unix(T0 + 7 * DAY) == sub["current_period_end"]
    assert await invoices_of(api, customer) == []

    async with billing_worker(deps, STEP):
        await move(api, clock, T0 + 8 * DAY)
        after_trial = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
        assert after_trial["status"] == "active"
        first = await invoices_of(api, customer)
        assert [(i["status"], i["amount_paid"]) for i in first] == [("paid", 1500)]
        assert first[0]["period_start"] == unix(T0 + 7 * DAY)
        payment = ok(await api.get(f"/v1/payments/{first[0]['payment']}"))
        assert (payment["status"], payment["off_session"]) == ("succeeded", True)

        await move(api, clock, T0 + 8 * DAY + timedelta(days=92))
    invoices = await invoices_of(api, customer)
    assert len(invoices) == 4
    assert all(i["status"] == "paid" and i["total"] == 1500 for i in invoices)
    starts = [datetime.fromtimestamp(i["period_start"], UTC) for i in invoices]
    assert starts == [T0 + 7 * DAY + timedelta(days=d) for d in (0, 31, 59, 90)]
    types = [
        r["type"]
        for r in await pool.fetch(
            "SELECT type FROM events WHERE object_id = $1 ORDER BY id", sub["id"]
        )
    ]
    assert types[:2] == ["customer.subscription.created", "customer.subscription.trial_will_end"]


async def test_repeated_and_concurrent_advances_make_no_duplicate_invoices(
    api: Api, deps: Deps
) -> None:
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    await subscribe(api, customer, price)
    target = T0 + timedelta(days=65)
    async with billing_worker(deps, STEP):
        answers = await asyncio.gather(*(advance(api, clock, target) for _ in range(2)))
        assert sorted(a.status_code for a in answers)[0] == 200
        await until_ready(api, clock)
        again = await advance(api, clock, target)
        assert again.status_code == 400
        await STEP.run_until(deps, clock, target)  # a repeated step does nothing more
    invoices = await invoices_of(api, customer)
    assert [i["period_start"] for i in invoices] == [
        unix(T0),
        unix(datetime(2030, 2, 1, 9, tzinfo=UTC)),
        unix(datetime(2030, 3, 1, 9, tzinfo=UTC)),
    ]


async def test_an_anchor_on_the_31st_renews_on_the_last_day_of_shorter_months(
    api: Api, deps: Deps
) -> None:
    start = datetime(2028, 1, 31, 12, tzinfo=UTC)
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, start)
    sub = await subscribe(api, customer, price)
    assert sub["status"] == "active"
    async with billing_worker(deps, STEP):
        await move(api, clock, datetime(2028, 5, 1, tzinfo=UTC))
    starts = [
        datetime.fromtimestamp(i["period_start"], UTC) for i in await invoices_of(api, customer)
    ]
    assert [(d.month, d.day) for d in starts] == [(1, 31), (2, 29), (3, 31), (4, 30)]


async def test_paused_makes_no_invoices_and_resume_starts_a_period(api: Api, deps: Deps) -> None:
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    paused = ok(await api.post(f"/v1/subscriptions/{sub['id']}/pause"))
    assert paused["status"] == "paused" and paused["pause"]["paused_at"] == unix(T0)
    async with billing_worker(deps, STEP):
        await move(api, clock, T0 + timedelta(days=62))
        assert len(await invoices_of(api, customer)) == 1
        resumed = ok(await api.post(f"/v1/subscriptions/{sub['id']}/resume"))
        assert resumed["status"] == "active"
        assert resumed["current_period_start"] == unix(T0 + timedelta(days=62))
        assert resumed["billing_cycle_anchor"] == unix(T0 + timedelta(days=62))
    invoices = await invoices_of(api, customer)
    assert [i["status"] for i in invoices] == ["paid", "paid"]
    refused = await api.post(f"/v1/subscriptions/{sub['id']}/resume")
    assert (refused.status_code, refused.json()["error"]["code"]) == (
        409,
        "subscription_invalid_state",
    )


async def test_cancel_at_period_end_cancels_only_when_the_period_ends(api: Api, deps: Deps) -> None:
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    scheduled = ok(await api.post(f"/v1/subscriptions/{sub['id']}/cancel", {"at_period_end": True}))
    assert (scheduled["status"], scheduled["cancel_at"]) == ("active", sub["current_period_end"])
    async with billing_worker(deps, STEP):
        await move(api, clock, T0 + timedelta(days=30))
        assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "active"
        await move(api, clock, T0 + timedelta(days=70))
    ended = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
    assert (ended["status"], ended["ended_at"]) == ("canceled", sub["current_period_end"])
    assert len(await invoices_of(api, customer)) == 1


async def test_zero_and_three_decimal_currencies_are_billed_exactly(api: Api, deps: Deps) -> None:
    for currency, amount in (("JPY", 980), ("KWD", 12_345)):
        price = await monthly_price(api, amount, currency)
        clock, customer = await clock_customer(api, T0)
        sub = ok(
            await api.post(
                "/v1/subscriptions",
                {"customer": customer, "items": [{"price": price, "quantity": 3}]},
            )
        )
        assert (sub["status"], sub["currency"]) == ("active", currency)
        async with billing_worker(deps, STEP):
            await move(api, clock, T0 + timedelta(days=40))
        invoices = await invoices_of(api, customer)
        assert [(i["total"], i["amount_paid"]) for i in invoices] == [(3 * amount, 3 * amount)] * 2
        payment = ok(await api.get(f"/v1/payments/{invoices[1]['payment']}"))
        assert (payment["amount"], payment["currency"]) == (3 * amount, currency)


async def test_an_upgrade_with_always_invoice_bills_the_formulas_lines(
    api: Api, deps: Deps
) -> None:
    basic, gold = await monthly_price(api, 1000), await monthly_price(api, 2500)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, basic)
    changed_at = T0 + timedelta(days=10, hours=3, seconds=7)
    async with billing_worker(deps, STEP):
        await move(api, clock, changed_at)
    item = sub["items"]["data"][0]["id"]
    body = {"items": [{"id": item, "price": gold}], "proration_behavior": "always_invoice"}
    updated = ok(await api.post(f"/v1/subscriptions/{sub['id']}", body))
    assert [i["price"]["id"] for i in updated["items"]["data"]] == [gold]
    invoice = ok(await api.get(f"/v1/invoices/{updated['latest_invoice']}"))
    period = (datetime(2030, 2, 1, 9, tzinfo=UTC) - T0).total_seconds()
    remaining = (datetime(2030, 2, 1, 9, tzinfo=UTC) - changed_at).total_seconds()
    expected = [
        -round(Fraction(1000 * int(remaining), int(period))),
        round(Fraction(2500 * int(remaining), int(period))),
    ]
    lines = invoice["lines"]["data"]
    assert [line["amount"] for line in lines] == expected
    assert all(line["proration"] for line in lines)
    assert invoice["total"] == sum(expected) and invoice["status"] == "paid"
    assert invoice["billing_reason"] == "subscription_update"


async def test_a_renewal_the_card_cannot_pay_off_session_leaves_it_past_due(
    api: Api, deps: Deps
) -> None:
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0, number="4000002760003184")
    sub = await subscribe(api, customer, price, trial_period_days=5)
    async with billing_worker(deps, STEP):
        await move(api, clock, T0 + 6 * DAY)
    after = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
    assert after["status"] == "past_due"
    invoice = ok(await api.get(f"/v1/invoices/{after['latest_invoice']}"))
    assert (invoice["status"], invoice["attempt_count"]) == ("open", 1)
    assert invoice["last_payment_error"]["code"] == "authentication_required"
    payment = ok(await api.get(f"/v1/payments/{invoice['payment']}"))
    assert (payment["status"], payment["off_session"]) == ("requires_action", True)


async def test_payment_behaviors_decide_what_a_failed_first_payment_does(api: Api) -> None:
    price = await monthly_price(api)
    _, customer = await clock_customer(api, T0, number="4000002760003184")
    incomplete = await subscribe(api, customer, price)
    assert incomplete["status"] == "incomplete"
    assert ok(await api.get(f"/v1/invoices/{incomplete['latest_invoice']}"))["status"] == "open"

    refused = await api.post(
        "/v1/subscriptions",
        {
            "customer": customer,
            "items": [{"price": price}],
            "payment_behavior": "error_if_incomplete",
        },
    )
    assert refused.status_code == 402
    listed = ok(await api.get("/v1/subscriptions", customer=customer, status="incomplete_expired"))
    assert len(listed["data"]) == 1
    expired = listed["data"][0]
    assert ok(await api.get(f"/v1/invoices/{expired['latest_invoice']}"))["status"] == "void"

    waiting = await subscribe(api, customer, price, payment_behavior="default_incomplete")
    invoice = ok(await api.get(f"/v1/invoices/{waiting['latest_invoice']}"))
    assert (waiting["status"], invoice["status"], invoice["attempt_count"]) == (
        "incomplete",
        "open",
        0,
    )


async def test_create_prorations_are_billed_on_the_next_renewal(api: Api, deps: Deps) -> None:
    price = await monthly_price(api, 3000)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    async with billing_worker(deps, STEP):
        await move(api, clock, T0 + timedelta(days=15, hours=12))
        item = sub["items"]["data"][0]["id"]
        body = {"items": [{"id": item, "quantity": 2}]}
        updated = ok(await api.post(f"/v1/subscriptions/{sub['id']}", body))
        assert updated["latest_invoice"] == sub["latest_invoice"]
        assert updated["items"]["data"][0]["quantity"] == 2
        await move(api, clock, T0 + timedelta(days=32))
    renewal = (await invoices_of(api, customer))[-1]
    lines = renewal["lines"]["data"]
    assert [(line["amount"], line["proration"]) for line in lines] == [
        (6000, False),
        (-1500, True),
        (3000, True),
    ]
    assert renewal["total"] == 7500 == renewal["amount_paid"]


async def test_cancel_now_and_what_a_canceled_subscription_refuses(api: Api) -> None:
    price = await monthly_price(api)
    _, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    deleted = await api.delete(f"/v1/subscriptions/{sub['id']}")
    assert deleted.status_code == 200
    assert (deleted.json()["status"], deleted.json()["ended_at"]) == ("canceled", unix(T0))
    for path, body in (("/pause", {}), ("/resume", {}), ("", {"cancel_at_period_end": True})):
        answer = await api.post(f"/v1/subscriptions/{sub['id']}{path}", body)
        assert answer.status_code == 409, path
        assert answer.json()["error"]["code"] == "subscription_invalid_state"


async def test_prices_must_be_recurring_alike_and_the_subscription_the_merchants(
    api: Api, other_api: Api
) -> None:
    usd, jpy = await monthly_price(api), await monthly_price(api, 100, "JPY")
    _, customer = await clock_customer(api, T0)
    mixed = await api.post(
        "/v1/subscriptions", {"customer": customer, "items": [{"price": usd}, {"price": jpy}]}
    )
    assert (mixed.status_code, mixed.json()["error"]["code"]) == (400, "price_not_usable")
    sub = await subscribe(api, customer, usd)
    assert (await other_api.get(f"/v1/subscriptions/{sub['id']}")).status_code == 404
    by_price = ok(await api.get("/v1/subscriptions", price=usd))
    assert [s["id"] for s in by_price["data"]] == [sub["id"]]


async def test_every_status_write_is_guarded_by_the_transition_table(
    api: Api, pool: asyncpg.Pool
) -> None:
    price = await monthly_price(api)
    _, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    pause = SubscriptionAction.PAUSE
    moved = await subs_db.transition(
        pool, sub["id"], allowed_sources(SubscriptionAction.RESUME), SubscriptionStatus.ACTIVE, T0
    )
    assert moved is None  # active is not a source of resume
    paused = await subs_db.transition(
        pool, sub["id"], allowed_sources(pause), SubscriptionStatus.PAUSED, T0, {"paused_at": T0}
    )
    assert paused is not None and paused.status is SubscriptionStatus.PAUSED


@pytest.mark.parametrize(
    ("table", "row_type"),
    [
        ("subscriptions", SubscriptionRow),
        ("subscription_items", SubscriptionItemRow),
        ("subscription_prorations", ProrationRow),
    ],
)
async def test_the_typed_rows_have_exactly_their_tables_columns(
    pool: asyncpg.Pool, table: str, row_type: type
) -> None:
    columns = {
        r["column_name"]
        for r in await pool.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = $1",
            table,
        )
    }
    assert {f.name for f in fields(row_type)} == columns


async def test_the_periodic_job_renews_customers_on_the_system_clock_once(
    api: Api, deps: Deps
) -> None:
    price = await monthly_price(api)
    customer = ok(await api.post("/v1/customers", {"email": "sys@example.com"}))["id"]
    method = ok(await api.post("/v1/payment_methods", {"customer": customer, **card(SUCCESS_CARD)}))
    sub = await subscribe(api, customer, price, default_payment_method=method["id"])
    period_end = datetime.fromtimestamp(sub["current_period_end"], UTC)
    later = replace(deps, clock=FrozenClock(period_end + timedelta(hours=1), deps.clock))
    context = JobContext(deps=later, job_id="job_test", attempt=1, worker_id="wkr_test")
    # Two workers' passes at once, then a third: one renewal.
    await asyncio.gather(schedule.job({}, context), schedule.process(later, sub["id"]))
    await schedule.job({}, context)
    invoices = await invoices_of(api, customer)
    assert [(i["billing_reason"], i["status"]) for i in invoices] == [
        ("subscription_create", "paid"),
        ("subscription_cycle", "paid"),
    ]
    assert invoices[1]["period_start"] == sub["current_period_end"]
    renewed = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
    assert renewed["current_period_start"] == sub["current_period_end"]


ACTION = st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 45), st.integers(0, 23)),
    st.tuples(st.sampled_from(["pause", "resume", "cancel_at_period_end"]), st.just(0), st.just(0)),
    st.tuples(st.just("quantity"), st.integers(1, 4), st.just(0)),
)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=st.lists(ACTION, min_size=3, max_size=8))
async def test_any_sequence_of_actions_and_advances_keeps_the_invariants(
    api: Api, deps: Deps, pool: asyncpg.Pool, actions: list[tuple[str, int, int]]
) -> None:
    """A Hypothesis property over subscription actions and clock advances: one invoice per
    period, every total the sum of its lines, nothing invoiced or charged while paused or
    after the end, and a canceled subscription stays canceled."""
    price = await monthly_price(api, 1234)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    path = f"/v1/subscriptions/{sub['id']}"
    now, paused, ended = T0, False, False
    quiet: list[tuple[datetime, datetime]] = []  # no invoice may be made in these
    async with billing_worker(deps, STEP):
        for action, first, second in actions:
            if action == "advance":
                target = now + timedelta(days=first, hours=second)
                await move(api, clock, target)
                if paused:
                    quiet.append((now, target))
                now = target
            elif action == "quantity":
                item = ok(await api.get(path))["items"]["data"][0]["id"]
                await api.post(path, {"items": [{"id": item, "quantity": first}]})
            elif action == "cancel_at_period_end":
                await api.post(f"{path}/cancel", {"at_period_end": True})
            else:
                answer = await api.post(f"{path}/{action}")
                paused = (action == "pause") if answer.status_code == 200 else paused
            status = ok(await api.get(path))["status"]
            assert not (ended and status != "canceled")
            ended = status == "canceled"
    await _check_invariants(api, pool, sub["id"], customer, quiet)


async def _check_invariants(
    api: Api,
    pool: asyncpg.Pool,
    subscription: str,
    customer: str,
    quiet: list[tuple[datetime, datetime]],
) -> None:
    invoices = await invoices_of(api, customer)
    starts = [i["period_start"] for i in invoices if i["period_start"] is not None]
    assert len(starts) == len(set(starts)), "a period invoiced twice"
    for invoice in invoices:
        assert invoice["total"] == sum(line["amount"] for line in invoice["lines"]["data"])
        created = datetime.fromtimestamp(invoice["created"], UTC)
        assert not any(a < created < b for a, b in quiet), "an invoice while paused"
    ended_at = ok(await api.get(f"/v1/subscriptions/{subscription}"))["ended_at"]
    if ended_at is not None:
        assert all(i["created"] <= ended_at for i in invoices), "an invoice after the end"
        paid_after = await pool.fetchval(
            "SELECT count(*) FROM payments WHERE customer_id = $1 AND created_at > $2",
            customer,
            datetime.fromtimestamp(ended_at, UTC),
        )
        assert paid_after == 0, "a charge after the end"


async def test_the_upcoming_invoice_is_the_next_renewal_line_for_line(api: Api, deps: Deps) -> None:
    price, extra = await monthly_price(api, 2000), await monthly_price(api, 700)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    async with billing_worker(deps, STEP):
        await move(api, clock, T0 + timedelta(days=9, hours=5))
        body = {"items": [{"price": extra, "quantity": 2}]}  # pending prorations
        ok(await api.post(f"/v1/subscriptions/{sub['id']}", body))
        preview = ok(await api.get("/v1/invoices/upcoming", subscription=sub["id"]))
        await move(api, clock, T0 + timedelta(days=31))
    renewal = (await invoices_of(api, customer))[-1]

    def shape(invoice: Json) -> list[tuple[Any, ...]]:
        return [
            (
                line["price"],
                line["quantity"],
                line["unit_amount"],
                line["amount"],
                line["proration"],
                line["period"],
                line["description"],
            )
            for line in invoice["lines"]["data"]
        ]

    assert shape(preview) == shape(renewal) and len(shape(preview)) == 3
    assert (preview["period_start"], preview["total"]) == (
        renewal["period_start"],
        renewal["total"],
    )
    assert preview["id"] == "upcoming" and renewal["status"] == "paid"
    ok(await api.post(f"/v1/subscriptions/{sub['id']}/pause"))
    none = await api.get("/v1/invoices/upcoming", subscription=sub["id"])
    assert (none.status_code, none.json()["error"]["code"]) == (404, "invoice_upcoming_none")


async def test_invoice_upcoming_is_sent_a_week_before_each_renewal_once(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    price = await monthly_price(api, 4200)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    async with billing_worker(deps, STEP):
        await move(api, clock, T0 + timedelta(days=20))
        assert await _upcoming(pool, sub["id"]) == []
        await move(api, clock, T0 + timedelta(days=25))
        await move(api, clock, T0 + timedelta(days=40))
    feb_1 = unix(datetime(2030, 2, 1, 9, tzinfo=UTC))
    assert await _upcoming(pool, sub["id"]) == [(feb_1, 4200)]


async def _upcoming(pool: asyncpg.Pool, subscription: str) -> list[tuple[int, int]]:
    rows = await pool.fetch(
        "SELECT data FROM events WHERE object_id = $1 AND type = 'invoice.upcoming' ORDER BY id",
        subscription,
    )
    snapshots = [row["data"]["object"] for row in rows]
    return [(s["period_start"], s["total"]) for s in snapshots]


async def test_a_billing_cycle_anchor_prorates_the_first_invoice_up_to_it(
    api: Api, deps: Deps
) -> None:
    price = await monthly_price(api, 1500)
    clock, customer = await clock_customer(api, T0)
    anchor = datetime(2030, 1, 20, 9, tzinfo=UTC)
    sub = await subscribe(api, customer, price, billing_cycle_anchor=unix(anchor))
    assert (sub["status"], sub["billing_cycle_anchor"]) == ("active", unix(anchor))
    assert (sub["current_period_start"], sub["current_period_end"]) == (unix(T0), unix(anchor))
    first = ok(await api.get(f"/v1/invoices/{sub['latest_invoice']}"))
    line = first["lines"]["data"][0]
    # 19 of the 31 days of the cycle's period [Dec 20, Jan 20): 1500 * 19 / 31 = 919.35...
    assert (line["amount"], line["proration"], first["amount_paid"]) == (919, True, 919)
    assert line["period"] == {"start": unix(T0), "end": unix(anchor)}
    async with billing_worker(deps, STEP):
        await move(api, clock, datetime(2030, 2, 21, tzinfo=UTC))
    renewals = (await invoices_of(api, customer))[1:]
    assert [(i["period_start"], i["total"]) for i in renewals] == [
        (unix(anchor), 1500),
        (unix(datetime(2030, 2, 20, 9, tzinfo=UTC)), 1500),
    ]
    too_far = await api.post(
        "/v1/subscriptions",
        {
            "customer": customer,
            "items": [{"price": price}],
            "billing_cycle_anchor": unix(datetime(2030, 4, 1, tzinfo=UTC)),
        },
    )
    assert (too_far.status_code, too_far.json()["error"]["param"]) == (400, "billing_cycle_anchor")


async def test_items_made_in_one_request_keep_the_order_they_were_given(api: Api) -> None:
    """Items made together share their creation time: their ids order them, as given, in
    the subscription and on its invoices (as Stripe lists them)."""
    prices = [await monthly_price(api, amount=100 * (n + 1)) for n in range(6)]
    _, customer = await clock_customer(api, T0)
    body = {"customer": customer, "items": [{"price": p} for p in prices[:4]]}
    sub = ok(await api.post("/v1/subscriptions", body))
    assert [i["price"]["id"] for i in sub["items"]["data"]] == prices[:4]
    invoice = ok(await api.get(f"/v1/invoices/{sub['latest_invoice']}"))
    assert [line["price"] for line in invoice["lines"]["data"]] == prices[:4]
    added = {"items": [{"price": p} for p in reversed(prices[4:])], "proration_behavior": "none"}
    updated = ok(await api.post(f"/v1/subscriptions/{sub['id']}", added))
    expected = [*prices[:4], *reversed(prices[4:])]
    assert [i["price"]["id"] for i in updated["items"]["data"]] == expected
    again = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
    assert [i["price"]["id"] for i in again["items"]["data"]] == expected
