"""Dunning over HTTP with the real worker on test clocks (issue 14 §1, §8): soft declines
retried on the schedule until paid, a stolen card never retried (with or without a fallback
method), the card network cap skipping retries, a new default method retrying at once, and
an abandoned authentication expiring without leaving a pending attempt."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paygrid.clock import FrozenClock
from paygrid.dependencies import Deps
from paygrid.services.billing import invoice_outcomes
from paygrid.services.billing.retries.jobs import STEP as DUNNING
from paygrid.services.billing.retries.jobs import retries_job
from paygrid.services.billing.subscriptions.schedule import STEP as RENEWALS
from paygrid.worker.registry import JobContext
from tests.conftest import SUCCESS_CARD, Api, card
from tests.integration import test_dashboard as dashboard_tests
from tests.integration.test_dashboard import Login
from tests.integration.test_dashboard_billing import _text as page_text
from tests.integration.test_subscriptions import (
    clock_customer,
    monthly_price,
    move,
    ok,
    subscribe,
)
from tests.integration.test_test_clocks import billing_worker, event_types, unix
from tests.integration.worker_harness import eventually

# The dashboard's signed-in clients, shared as fixtures by name.
new_client = dashboard_tests.new_client
login = dashboard_tests.login

Json = dict[str, Any]
DAY = timedelta(days=1)
T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
RENEWAL = T0 + 31 * DAY  # the first renewal of a monthly subscription from T0


async def set_dunning(api: Api, **dunning: Any) -> Json:
    return ok(await api.post("/v1/billing_settings", {"dunning": dunning}))


async def script(api: Api, method: str, *outcomes: str) -> None:
    path = f"/v1/test_helpers/payment_methods/{method}/outcomes"
    ok(await api.post(path, {"outcomes": list(outcomes)}))


async def save_card(api: Api, customer: str, number: str = SUCCESS_CARD) -> str:
    body = {"customer": customer, **card(number)}
    return str(ok(await api.post("/v1/payment_methods", body))["id"])


async def default_of(api: Api, customer: str) -> str:
    found = ok(await api.get(f"/v1/customers/{customer}"))
    return str(found["invoice_settings"]["default_payment_method"])


async def renewal_invoice(api: Api, sub: Json) -> Json:
    current = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
    assert current["latest_invoice"] != sub["latest_invoice"], "the renewal made an invoice"
    return ok(await api.get(f"/v1/invoices/{current['latest_invoice']}"))


async def attempt_payments(pool: asyncpg.Pool, invoice_id: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            # a declined payment keeps its method on its authorization attempt only
            "SELECT p.id, p.status, p.created_at, coalesce(p.payment_method_id,"
            " (SELECT a.payment_method_id FROM payment_attempts a WHERE a.payment_id = p.id"
            "  AND a.operation = 'authorize' LIMIT 1)) AS payment_method_id"
            " FROM payments p WHERE p.idempotency_key LIKE $1 ORDER BY p.created_at, p.id",
            f"invoice:{invoice_id}:attempt:%",
        )
    )


async def history(pool: asyncpg.Pool, invoice_id: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT * FROM invoice_dunning_attempts WHERE invoice_id = $1 ORDER BY created_at, id",
            invoice_id,
        )
    )


async def test_two_soft_declines_then_success_pay_the_invoice_on_the_schedule(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    await set_dunning(api, retry_schedule_days=[1, 3, 5, 7])
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    method = await default_of(api, customer)
    await script(api, method, "insufficient_funds", "insufficient_funds", "succeeded")
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + timedelta(hours=2))
        invoice = await renewal_invoice(api, sub)
        assert (invoice["status"], invoice["attempt_count"]) == ("open", 1)
        assert invoice["next_payment_attempt"] == unix(RENEWAL + DAY)
        error = invoice["last_payment_error"]
        assert (error["code"], error["decline_code"], error["classification"]) == (
            "insufficient_funds",
            "insufficient_funds",
            "soft",
        )
        assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "past_due"

        await move(api, clock, RENEWAL + 3 * DAY + timedelta(hours=1))
    paid = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (paid["status"], paid["attempt_count"], paid["next_payment_attempt"]) == (
        "paid",
        3,
        None,
    )
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "active"
    payments = await attempt_payments(pool, invoice["id"])
    assert [p["status"] for p in payments] == [
        "requires_payment_method",
        "requires_payment_method",
        "succeeded",
    ]
    # days 1 and 3 after the first failure, on the clock
    assert [p["created_at"] for p in payments] == [RENEWAL, RENEWAL + DAY, RENEWAL + 3 * DAY]
    assert [row["classification"] for row in await history(pool, invoice["id"])] == ["soft"] * 2
    assert (await event_types(pool, invoice["id"])).count("invoice.payment_failed") == 2


@pytest.mark.parametrize("stolen", ["scripted", "test_card"])
async def test_a_stolen_card_is_never_retried_and_on_exhausted_applies(
    api: Api, deps: Deps, pool: asyncpg.Pool, stolen: str
) -> None:
    await set_dunning(api, on_exhausted="cancel", fallback_to_other_methods=False)
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    await save_card(api, customer)  # another method: not tried without the fallback
    sub = await subscribe(api, customer, price)
    if stolen == "scripted":
        await script(api, await default_of(api, customer), "stolen_card")
    else:  # Stripe's test card, made the default after the first (paid) invoice
        method = await save_card(api, customer, "4000000000009979")
        body = {"invoice_settings": {"default_payment_method": method}}
        ok(await api.post(f"/v1/customers/{customer}", body))
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + 20 * DAY)
    invoice = await renewal_invoice(api, sub)
    assert (invoice["status"], invoice["attempt_count"]) == ("uncollectible", 1)
    assert invoice["next_payment_attempt"] is None
    assert invoice["last_payment_error"]["decline_code"] == "stolen_card"
    assert invoice["last_payment_error"]["classification"] == "hard"
    canceled = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
    assert (canceled["status"], canceled["ended_at"]) == ("canceled", unix(RENEWAL))
    assert len(await attempt_payments(pool, invoice["id"])) == 1
    assert "invoice.marked_uncollectible" in await event_types(pool, invoice["id"])
    assert "customer.subscription.deleted" in await event_types(pool, sub["id"])


async def test_with_the_fallback_the_newest_other_saved_method_is_charged(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    await set_dunning(api, fallback_to_other_methods=True)
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    default = await default_of(api, customer)
    await save_card(api, customer)  # older
    newest = await save_card(api, customer)
    sub = await subscribe(api, customer, price)
    await script(api, default, "stolen_card")
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + timedelta(hours=1))
    invoice = await renewal_invoice(api, sub)
    assert (invoice["status"], invoice["attempt_count"]) == ("paid", 2)
    payments = await attempt_payments(pool, invoice["id"])
    assert [(p["payment_method_id"], p["status"]) for p in payments] == [
        (default, "requires_payment_method"),
        (newest, "succeeded"),
    ]
    assert payments[1]["created_at"] == RENEWAL  # at once, not a schedule's day later
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "active"


async def test_the_card_network_cap_skips_retries_and_the_schedule_moves_on(
    api: Api, deps: Deps, pool: asyncpg.Pool, login: Login
) -> None:
    await set_dunning(
        api,
        retry_schedule_days=[1, 2, 3],
        max_attempts_per_method=2,
        attempt_window_days=30,
        on_exhausted="past_due",
    )
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    method = await default_of(api, customer)
    await script(api, method, *["insufficient_funds"] * 6)
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + 10 * DAY)
    invoice = await renewal_invoice(api, sub)
    # attempts at the renewal and a day later; the two retries after would be the
    # method's third payment in 30 days: skipped.
    assert (invoice["status"], invoice["attempt_count"]) == ("open", 2)
    assert invoice["next_payment_attempt"] is None
    payments = await attempt_payments(pool, invoice["id"])
    assert [p["created_at"] for p in payments] == [RENEWAL, RENEWAL + DAY]
    lines = await history(pool, invoice["id"])
    assert [(r["outcome"], r["code"]) for r in lines] == [
        ("failed", "insufficient_funds"),
        ("failed", "insufficient_funds"),
        ("skipped", "attempt_cap_reached"),
        ("skipped", "attempt_cap_reached"),
    ]
    # days 2 and 3 of the schedule [1, 2, 3]
    assert [r["created_at"] for r in lines[2:]] == [RENEWAL + 2 * DAY, RENEWAL + 3 * DAY]
    assert lines[-1]["exhausted"] is True
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "past_due"

    # The invoice's page shows the attempt history with codes, classes and retries.
    http, _ = await login("viewer")
    page = page_text((await http.get(f"/dashboard/invoices/{invoice['id']}")).text)
    assert "Next automatic attempt: none scheduled" in page
    assert page.count("insufficient_funds soft") == 2
    assert page.count("attempt_cap_reached") == 2 and "Schedule exhausted" in page


async def test_a_new_default_method_retries_the_open_invoices_within_one_worker_cycle(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    await set_dunning(api, retry_schedule_days=[5], on_exhausted="past_due")
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    await script(api, await default_of(api, customer), "expired_card")
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + timedelta(hours=1))
        invoice = await renewal_invoice(api, sub)
        assert (invoice["status"], invoice["next_payment_attempt"]) == ("open", None)
        assert invoice["last_payment_error"]["classification"] == "hard"

        fresh = await save_card(api, customer)
        body = {"invoice_settings": {"default_payment_method": fresh}}
        ok(await api.post(f"/v1/customers/{customer}", body))

        async def paid() -> bool:
            found = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
            return bool(found["status"] == "paid")

        await eventually(paid)
    payments = await attempt_payments(pool, invoice["id"])
    assert [(p["payment_method_id"], p["status"]) for p in payments][-1] == (fresh, "succeeded")
    assert payments[-1]["created_at"] == RENEWAL + timedelta(hours=1)  # the clock's now
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["status"] == "active"


async def test_an_abandoned_authentication_expires_without_a_pending_attempt(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    await set_dunning(api, retry_schedule_days=[2, 4], action_expiry_hours=12)
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    await script(api, await default_of(api, customer), "authentication_required")
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + timedelta(hours=1))
        invoice = await renewal_invoice(api, sub)
        assert (invoice["status"], invoice["next_payment_attempt"]) == ("open", None)
        assert invoice["last_payment_error"]["classification"] == "action"
        types = await event_types(pool, invoice["id"])
        assert types.index("invoice.payment_action_required") > types.index(
            "invoice.payment_failed"
        )
        waiting = ok(await api.get(f"/v1/payments/{invoice['payment']}"))
        assert waiting["status"] == "requires_action"

        await move(api, clock, RENEWAL + timedelta(hours=13))
        expired = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
        assert (expired["status"], expired["attempt_count"]) == ("open", 1)
        assert expired["next_payment_attempt"] == unix(RENEWAL + 2 * DAY)
        canceled = ok(await api.get(f"/v1/payments/{invoice['payment']}"))
        assert (canceled["status"], canceled["cancellation_reason"]) == ("canceled", "abandoned")
        pending = await pool.fetchval(
            "SELECT count(*) FROM payment_attempts WHERE payment_id = $1"
            " AND status IN ('pending', 'requires_action', 'unknown')",
            invoice["payment"],
        )
        assert pending == 0

        await move(api, clock, RENEWAL + 2 * DAY + timedelta(hours=1))
    paid = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (paid["status"], paid["attempt_count"]) == ("paid", 2)
    outcomes = [r["outcome"] for r in await history(pool, invoice["id"])]
    assert outcomes == ["requires_action", "action_expired"]


async def test_pay_with_a_method_is_refused_unless_it_is_the_customers(api: Api) -> None:
    price = await monthly_price(api)
    _, customer = await clock_customer(api, T0)
    _, stranger = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price, payment_behavior="default_incomplete")
    invoice = sub["latest_invoice"]
    foreign = await default_of(api, stranger)
    refused = await api.post(f"/v1/invoices/{invoice}/pay", {"payment_method": foreign})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "payment_method_not_owned"
    missing = await api.post(f"/v1/invoices/{invoice}/pay", {"payment_method": "pm_nope"})
    assert missing.status_code == 404, missing.text
    own = await save_card(api, customer)
    paid = ok(await api.post(f"/v1/invoices/{invoice}/pay", {"payment_method": own}))
    assert (paid["status"], paid["attempt_count"]) == ("paid", 1)


@pytest.mark.parametrize("on_exhausted", ["unpaid", "pause"])
async def test_on_exhausted_unpaid_and_pause(api: Api, deps: Deps, on_exhausted: str) -> None:
    await set_dunning(api, retry_schedule_days=[1], on_exhausted=on_exhausted)
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    await script(api, await default_of(api, customer), "do_not_honor", "do_not_honor")
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + 2 * DAY)
    invoice = await renewal_invoice(api, sub)
    expected = {"unpaid": ("uncollectible", "unpaid"), "pause": ("open", "paused")}
    after = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
    assert (invoice["status"], after["status"]) == expected[on_exhausted]
    assert (invoice["attempt_count"], invoice["next_payment_attempt"]) == (2, None)


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    days=st.lists(st.integers(1, 7), min_size=1, max_size=3, unique=True).map(sorted),
    cap=st.integers(1, 3),
    window=st.integers(1, 30),
    stop=st.booleans(),
    fallback=st.booleans(),
    answers=st.lists(
        st.sampled_from(["insufficient_funds", "do_not_honor", "stolen_card", "succeeded"]),
        min_size=1,
        max_size=6,
    ),
)
async def test_attempts_never_exceed_the_schedule_or_the_cap_in_the_database(
    api: Api,
    deps: Deps,
    pool: asyncpg.Pool,
    days: list[int],
    cap: int,
    window: int,
    stop: bool,
    fallback: bool,
    answers: list[str],
) -> None:
    """A Hypothesis property through the worker and the database: whatever the card says
    and however the schedule and the cap are set, a renewal's invoice is attempted at most
    once plus once per step of the schedule, no retry takes its method past the cap (counted
    over every payment of the method), and a stopped method is never charged again."""
    await set_dunning(
        api,
        retry_schedule_days=days,
        max_attempts_per_method=cap,
        attempt_window_days=window,
        stop_on_hard_decline=stop,
        fallback_to_other_methods=fallback,
        on_exhausted="past_due",
    )
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    await save_card(api, customer)
    sub = await subscribe(api, customer, price)
    method = await default_of(api, customer)
    await script(api, method, *answers)
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + 27 * DAY)
    invoice = await renewal_invoice(api, sub)
    payments = await attempt_payments(pool, invoice["id"])
    assert 1 <= len(payments) <= 1 + len(days)
    assert invoice["attempt_count"] == len(payments)
    every = await pool.fetch(
        "SELECT p.created_at, coalesce(p.payment_method_id, (SELECT a.payment_method_id"
        " FROM payment_attempts a WHERE a.payment_id = p.id AND a.operation = 'authorize'"
        " LIMIT 1)) AS method FROM payments p WHERE p.customer_id = $1",
        customer,
    )
    for retry in payments[1:]:
        since = retry["created_at"] - timedelta(days=window)
        earlier = [
            p
            for p in every
            if p["method"] == retry["payment_method_id"]
            and since < p["created_at"] < retry["created_at"]
        ]
        assert len(earlier) < cap, "a retry took its method past the card network cap"
    stolen = {
        row["payment_method_id"]: row["created_at"]
        for row in reversed(await history(pool, invoice["id"]))
        if row["decline_code"] == "stolen_card"
    }
    if stop:
        for p in payments:
            at = stolen.get(p["payment_method_id"])
            assert at is None or p["created_at"] <= at, "a stopped method was charged again"
    if invoice["status"] == "open":
        assert invoice["next_payment_attempt"] is None or invoice["next_payment_attempt"] > unix(
            RENEWAL + 27 * DAY
        )


async def test_customers_on_the_system_clock_are_retried_by_the_periodic_job_exactly_once(
    api: Api, deps: Deps, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test clock: the periodic ``dunning.retries`` job runs the due retry; a crash
    between the charge and the invoice's settlement is re-run and resumes the same payment
    (its key ``invoice:{id}:attempt:2``), so nothing is charged twice."""
    await set_dunning(api, retry_schedule_days=[2])
    customer = str(ok(await api.post("/v1/customers", {"name": "Ada"}))["id"])
    method = await save_card(api, customer)
    settings_body = {"invoice_settings": {"default_payment_method": method}}
    ok(await api.post(f"/v1/customers/{customer}", settings_body))
    ok(await api.post("/v1/invoiceitems", {"customer": customer, "amount": 900, "currency": "USD"}))
    body = {"customer": customer, "auto_advance": True}
    invoice = ok(await api.post("/v1/invoices", body))
    ok(await api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    await script(api, method, "try_again_later", "succeeded")
    declined = await api.post(f"/v1/invoices/{invoice['id']}/pay")
    assert declined.status_code == 402, declined.text
    failed = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert failed["last_payment_error"]["classification"] == "soft"
    due = datetime.fromtimestamp(failed["next_payment_attempt"], UTC)
    assert due - datetime.fromtimestamp(failed["status_transitions"]["finalized_at"], UTC) >= (
        2 * DAY - timedelta(minutes=5)
    )

    early = JobContext(replace(deps, clock=FrozenClock(due - timedelta(seconds=1))), "j", 1, "w")
    await retries_job({}, early)
    assert ok(await api.get(f"/v1/invoices/{invoice['id']}"))["status"] == "open"

    real_settle, crashes = invoice_outcomes.settle_attempt, list[bool]()

    async def crash_once(*args: Any) -> Any:
        if not crashes:
            crashes.append(True)
            raise RuntimeError("the worker died after the charge")
        return await real_settle(*args)

    monkeypatch.setattr(invoice_outcomes, "settle_attempt", crash_once)
    on_time = JobContext(replace(deps, clock=FrozenClock(due + timedelta(seconds=1))), "j", 1, "w")
    with pytest.raises(RuntimeError):
        await retries_job({}, on_time)
    await retries_job({}, on_time)  # the job's retry
    paid = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert (paid["status"], paid["attempt_count"]) == ("paid", 2)
    payments = await attempt_payments(pool, invoice["id"])
    assert [p["status"] for p in payments] == ["requires_payment_method", "succeeded"]
