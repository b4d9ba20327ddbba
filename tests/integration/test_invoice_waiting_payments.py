"""An invoice whose off-session payment waits for the customer's authentication is never
charged a second time: if the customer authenticated that payment (at the provider, after
``invoice.payment_action_required``), a ``/pay`` or a retry settles the invoice with it
instead of making another charge (review of issue 14)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from paygrid.dependencies import Deps
from paygrid.services.billing.retries.jobs import STEP as DUNNING
from paygrid.services.billing.subscriptions.schedule import STEP as RENEWALS
from tests.conftest import Api
from tests.integration.test_dunning import (
    RENEWAL,
    T0,
    attempt_payments,
    default_of,
    renewal_invoice,
    save_card,
    script,
    set_dunning,
)
from tests.integration.test_subscriptions import clock_customer, monthly_price, move, ok, subscribe
from tests.integration.test_test_clocks import billing_worker
from tests.integration.worker_harness import eventually

Json = dict[str, Any]


async def _authenticated_waiting_invoice(api: Api, deps: Deps) -> tuple[Json, str]:
    """A renewal invoice whose off-session payment asked for authentication, which the
    customer then gave at the provider's page; the invoice and its clock."""
    await set_dunning(api, retry_schedule_days=[2, 4], action_expiry_hours=12)
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    await script(api, await default_of(api, customer), "authentication_required")
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + timedelta(hours=1))
        invoice = await renewal_invoice(api, sub)
    waiting = ok(await api.get(f"/v1/payments/{invoice['payment']}"))
    assert waiting["status"] == "requires_action"
    bank_page = waiting["next_action"]["redirect_to_url"]["url"]
    decided = await api.http.post(urlsplit(bank_page).path, data={"decision": "approve"})
    assert decided.status_code in (200, 303), decided.text
    return invoice, customer


async def test_pay_settles_with_the_payment_the_customer_authenticated(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    invoice, _ = await _authenticated_waiting_invoice(api, deps)
    paid = ok(await api.post(f"/v1/invoices/{invoice['id']}/pay"))
    assert (paid["status"], paid["payment"]) == ("paid", invoice["payment"])
    payments = await attempt_payments(pool, invoice["id"])
    assert [(p["id"], p["status"]) for p in payments] == [(invoice["payment"], "succeeded")]


async def test_a_method_update_retry_settles_with_the_authenticated_payment(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    invoice, customer = await _authenticated_waiting_invoice(api, deps)
    fresh = await save_card(api, customer)
    body = {"invoice_settings": {"default_payment_method": fresh}}
    async with billing_worker(deps, RENEWALS, DUNNING):
        ok(await api.post(f"/v1/customers/{customer}", body))

        async def settled() -> bool:
            found = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
            return bool(found["status"] == "paid")

        await eventually(settled)
    paid = ok(await api.get(f"/v1/invoices/{invoice['id']}"))
    assert paid["payment"] == invoice["payment"]
    payments = await attempt_payments(pool, invoice["id"])
    assert [(p["id"], p["status"]) for p in payments] == [(invoice["payment"], "succeeded")]


async def test_a_waiting_payment_that_could_not_be_canceled_is_never_forgotten(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    """The provider is down when ``/pay`` wants to cancel the waiting payment: nothing is
    charged (409), and once the provider is back the payment the customer authenticated
    meanwhile pays the invoice, rather than a second charge."""
    account = ok(await api.post("/v1/connector_accounts", {"provider": "simulator"}))["id"]
    ok(await api.post("/v1/routing_rules", {"destinations": [{"connector_account": account}]}))
    await set_dunning(api, retry_schedule_days=[2, 4], action_expiry_hours=12)
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    await script(api, await default_of(api, customer), "authentication_required")
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + timedelta(hours=1))
        invoice = await renewal_invoice(api, sub)
    waiting = ok(await api.get(f"/v1/payments/{invoice['payment']}"))
    assert waiting["connector_account"] == account
    await _provider(pool, account, failure_mode="unavailable")
    refused = await api.post(f"/v1/invoices/{invoice['id']}/pay")
    assert refused.status_code == 409, refused.text
    await _provider(pool, account, failure_mode="none")
    bank_page = waiting["next_action"]["redirect_to_url"]["url"]
    await api.http.post(urlsplit(bank_page).path, data={"decision": "approve"})
    paid = ok(await api.post(f"/v1/invoices/{invoice['id']}/pay"))
    assert (paid["status"], paid["payment"]) == ("paid", invoice["payment"])
    payments = await attempt_payments(pool, invoice["id"])
    assert [(p["id"], p["status"]) for p in payments] == [(invoice["payment"], "succeeded")]


async def _provider(pool: asyncpg.Pool, account: str, *, failure_mode: str) -> None:
    """Make the simulator account refuse connections (or work again)."""
    await pool.execute(
        "UPDATE connector_accounts SET metadata = jsonb_build_object('failure_mode', $2::text),"
        " updated_at = clock_timestamp() WHERE id = $1",
        account,
        failure_mode,
    )
