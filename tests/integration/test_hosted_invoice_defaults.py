"""The hosted invoice page's "Make this card my default for future payments" box (issue 14
§1, §3): ticked (the default), a new card that pays becomes the customer's
``invoice_settings.default_payment_method`` (after 3-D Secure too), and, as a default set
through the API, the customer's other open failed invoice is retried within one worker
cycle; unticked, the default stays."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import httpx

from paygrid.dependencies import Deps
from paygrid.services.billing.retries.jobs import STEP as DUNNING
from paygrid.services.billing.subscriptions.schedule import STEP as RENEWALS
from tests.conftest import SUCCESS_CARD, Api, card
from tests.integration.test_dunning import (
    RENEWAL,
    T0,
    default_of,
    renewal_invoice,
    script,
    set_dunning,
)
from tests.integration.test_hosted_invoices import follow, page_path
from tests.integration.test_invoices import draft
from tests.integration.test_subscriptions import clock_customer, monthly_price, move, ok, subscribe
from tests.integration.test_test_clocks import billing_worker
from tests.integration.worker_harness import eventually

Json = dict[str, object]


async def pay_with_new_card(
    api: Api, client: httpx.AsyncClient, invoice: Json, number: str, *, make_default: bool
) -> tuple[str, httpx.Response]:
    """The page's card form, posted as its script posts it (the box ticked or not)."""
    page = await client.get(page_path(invoice))
    assert 'id="make-default"' in page.text
    assert re.search(r'<input type="checkbox" id="make-default"[^>]*checked>', page.text)
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert form_token is not None
    method = str(ok(await api.post("/v1/payment_methods", card(number)))["id"])
    fields = {"form_token": form_token[1], "method": "card", "payment_method": method}
    if make_default:
        fields["make_default"] = "1"
    return method, await client.post(f"{page_path(invoice)}/pay", data=fields)


async def status_of(api: Api, invoice_id: object) -> str:
    return str(ok(await api.get(f"/v1/invoices/{invoice_id}"))["status"])


async def test_a_new_default_on_the_page_retries_the_other_open_invoice(
    api: Api, client: httpx.AsyncClient, deps: Deps
) -> None:
    await set_dunning(api, retry_schedule_days=[5], on_exhausted="past_due")
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    sub = await subscribe(api, customer, price)
    await script(api, await default_of(api, customer), "expired_card")
    async with billing_worker(deps, RENEWALS, DUNNING):
        await move(api, clock, RENEWAL + timedelta(hours=1))
        failed = await renewal_invoice(api, sub)
        assert (failed["status"], failed["next_payment_attempt"]) == ("open", None)
        one_off = ok(
            await api.post(f"/v1/invoices/{(await draft(api, customer, 700))['id']}/finalize", {})
        )

        method, paid = await pay_with_new_card(
            api, client, one_off, SUCCESS_CARD, make_default=True
        )
        assert paid.status_code == 303
        assert await status_of(api, one_off["id"]) == "paid"
        assert await default_of(api, customer) == method

        async def retried() -> bool:
            return await status_of(api, failed["id"]) == "paid"

        await eventually(retried)
    settled = ok(await api.get(f"/v1/invoices/{failed['id']}"))
    payment = ok(await api.get(f"/v1/payments/{settled['payment']}"))
    assert payment["payment_method"] == method


async def test_unticked_the_default_stays(api: Api, client: httpx.AsyncClient) -> None:
    customer = ok(await api.post("/v1/customers", {"name": "Ada"}))["id"]
    before = str(
        ok(await api.post("/v1/payment_methods", {"customer": customer, **card(SUCCESS_CARD)}))[
            "id"
        ]
    )
    ok(
        await api.post(
            f"/v1/customers/{customer}", {"invoice_settings": {"default_payment_method": before}}
        )
    )
    invoice = ok(
        await api.post(f"/v1/invoices/{(await draft(api, customer, 900))['id']}/finalize", {})
    )
    method, paid = await pay_with_new_card(api, client, invoice, SUCCESS_CARD, make_default=False)
    assert paid.status_code == 303 and await status_of(api, invoice["id"]) == "paid"
    assert ok(await api.get(f"/v1/payment_methods/{method}"))["customer"] == customer  # saved
    assert await default_of(api, customer) == before


async def test_ticked_the_default_is_set_after_3ds(api: Api, client: httpx.AsyncClient) -> None:
    customer = ok(await api.post("/v1/customers", {"name": "Ada"}))["id"]
    invoice = ok(
        await api.post(f"/v1/invoices/{(await draft(api, customer, 900))['id']}/finalize", {})
    )
    method, challenge = await pay_with_new_card(
        api, client, invoice, "4000002760003184", make_default=True
    )
    assert "/simulator/authenticate/" in challenge.headers["location"]
    assert (
        ok(await api.get(f"/v1/customers/{customer}"))["invoice_settings"]["default_payment_method"]
        is None
    )  # not before it pays
    decided = await client.post(
        urlsplit(challenge.headers["location"]).path, content=b"decision=approve"
    )
    page = await follow(client, decided)
    assert page.status_code == 200 and "Paid. Thank you!" in page.text
    assert await default_of(api, customer) == method
