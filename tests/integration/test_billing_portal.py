"""The customer billing portal (issue 14 §4) over HTTP: sessions made by the API (shape,
validation, tenancy), the link opened once and bound to that browser, expiry of the link and
of the session, what the page lists, and each action: CSRF-protected, allowed by the
merchant's portal settings, limited to the session's own customer, and audited."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from paygrid.app import create_app
from paygrid.clock import FakeClock
from paygrid.config import Settings
from paygrid.dependencies import Deps
from paygrid.domain.billing_portal import LINK_LIFETIME, SESSION_LIFETIME
from paygrid.services.merchants import NewMerchant
from tests.conftest import SUCCESS_CARD, TEST_BASE_URL, Api, auth, card
from tests.integration.test_subscriptions import monthly_price, ok, subscribe

Json = dict[str, Any]
RETURN_URL = "https://shop.example/account"
MASTERCARD = "5555555555554444"
DECLINED_CARD = "4000000000000002"
THREE_DS_CARD = "4000002500003155"
INSUFFICIENT_FUNDS_CARD = "4000000000009995"


@asynccontextmanager
async def browser(deps: Deps, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Another browser: its own cookie jar, on the same app and database."""
    app = create_app(settings, deps=deps)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as client:
        yield client


async def customer_with_card(api: Api, number: str = SUCCESS_CARD, **fields: Any) -> str:
    """A customer whose default method is a card of ``number``."""
    customer = ok(await api.post("/v1/customers", {"email": "ada@example.com", **fields}))["id"]
    method = await attached_card(api, customer, number)
    settings = {"invoice_settings": {"default_payment_method": method}}
    ok(await api.post(f"/v1/customers/{customer}", settings))
    return str(customer)


async def attached_card(api: Api, customer: str, number: str) -> str:
    body = {"customer": customer, **card(number)}
    return str(ok(await api.post("/v1/payment_methods", body))["id"])


async def new_portal(api: Api, customer: str, **fields: Any) -> Json:
    return ok(await api.post("/v1/billing_portal/sessions", {"customer": customer, **fields}))


def path_of(session: Json) -> str:
    return urlsplit(session["url"]).path


async def open_portal(client: httpx.AsyncClient, session: Json) -> tuple[str, str]:
    """Open the link in ``client`` (it keeps the cookie); the page and its form token."""
    page = await client.get(path_of(session))
    assert page.status_code == 200, page.text
    return page.text, form_token(page.text)


def form_token(html: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', html)
    assert found is not None, "the page has no form"
    return found.group(1)


async def default_of(api: Api, customer: str) -> str | None:
    found: str | None = ok(await api.get(f"/v1/customers/{customer}"))["invoice_settings"][
        "default_payment_method"
    ]
    return found


async def portal_audit(pool: asyncpg.Pool, merchant_id: str, session_id: str) -> list[Any]:
    return list(
        await pool.fetch(
            "SELECT actor, action, object_id, before, after FROM audit_log"
            " WHERE merchant_id = $1 AND actor = $2 ORDER BY id",
            merchant_id,
            f"billing_portal:{session_id}",
        )
    )


async def set_portal(api: Api, **fields: bool) -> None:
    """Change the merchant's portal settings (``/v1/billing_settings``)."""
    answer = ok(await api.post("/v1/billing_settings", {"portal": fields}))
    assert all(answer["portal"][k] is v for k, v in fields.items())


async def test_a_session_has_stripes_shape_and_only_a_hash_of_its_token_is_kept(
    api: Api, pool: asyncpg.Pool
) -> None:
    customer = await customer_with_card(api)
    session = await new_portal(api, customer, return_url=RETURN_URL)
    assert session["object"] == "billing_portal.session"
    assert session["id"].startswith("bps_")
    assert (session["customer"], session["return_url"], session["livemode"]) == (
        customer,
        RETURN_URL,
        False,
    )
    assert session["expires_at"] - session["created"] == LINK_LIFETIME.total_seconds()
    assert session["url"].startswith(f"{TEST_BASE_URL}/p/")
    token = path_of(session).rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 random bits, base64url
    row = await pool.fetchrow("SELECT * FROM billing_portal_sessions WHERE id = $1", session["id"])
    assert row is not None
    assert row["token_hash"] == hashlib.sha256(token.encode()).digest()
    assert token not in str(dict(row))
    # Without a return_url the portal simply has no link back.
    assert (await new_portal(api, customer))["return_url"] is None


async def test_creating_a_session_validates_the_customer_and_the_return_url(
    api: Api, client: httpx.AsyncClient, other_merchant: NewMerchant, merchant: NewMerchant
) -> None:
    customer = await customer_with_card(api)
    missing = await api.post("/v1/billing_portal/sessions", {"customer": "cus_nope"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "resource_missing")
    other = Api(client, other_merchant.key("secret", livemode=False))
    theirs = await other.post("/v1/billing_portal/sessions", {"customer": customer})
    assert theirs.status_code == 404
    live = Api(client, merchant.key("secret", livemode=True))
    assert (
        await live.post("/v1/billing_portal/sessions", {"customer": customer})
    ).status_code == 404
    ok(await api.delete(f"/v1/customers/{(await customer_with_card(api))}"))
    for bad in ("javascript:alert(1)", "/relative", "https://user:pw@shop.example/x"):
        answer = await api.post(
            "/v1/billing_portal/sessions", {"customer": customer, "return_url": bad}
        )
        assert answer.status_code == 400, bad
        assert answer.json()["error"]["param"] == "return_url"
    for body in ({}, {"customer": customer, "configuration": "bpc_1"}, {"customer": 7}):
        assert (await api.post("/v1/billing_portal/sessions", body)).status_code == 400
    publishable = merchant.key("publishable", livemode=False)
    refused = await client.post(
        "/v1/billing_portal/sessions", json={"customer": customer}, headers=auth(publishable)
    )
    assert refused.status_code in (401, 403)


async def test_a_deleted_customer_gets_no_session(api: Api) -> None:
    customer = await customer_with_card(api)
    ok(await api.delete(f"/v1/customers/{customer}"))
    answer = await api.post("/v1/billing_portal/sessions", {"customer": customer})
    assert answer.status_code == 404


async def test_the_page_lists_subscriptions_invoices_and_saved_cards(
    api: Api, client: httpx.AsyncClient
) -> None:
    customer = await customer_with_card(api)
    second = await attached_card(api, customer, MASTERCARD)
    price = await monthly_price(api, amount=1500)
    sub = await subscribe(api, customer, price)
    invoice = ok(await api.get(f"/v1/invoices/{sub['latest_invoice']}"))
    default = await default_of(api, customer)
    page, _ = await open_portal(client, await new_portal(api, customer, return_url=RETURN_URL))
    assert f'data-subscription="{sub["id"]}"' in page
    assert "Gold plan" in page and "$15.00 / month" in page and "Renews on" in page
    assert f'data-invoice="{invoice["id"]}"' in page
    assert invoice["number"] in page and "Paid" in page
    assert invoice["invoice_pdf"] is not None  # the hosted invoice's PDF, linked from the portal
    assert f'href="{invoice["invoice_pdf"]}"' in page
    assert f'data-payment-method="{default}"' in page and f'data-payment-method="{second}"' in page
    assert "Visa ending in 4242" in page and "Mastercard ending in 4444" in page
    assert "Expires 12/2034" in page
    assert page.count(">Default<") == 1
    assert 'name="payment_method" value="' + second + '"' in page  # "Make default" for it
    assert f'href="{RETURN_URL}"' in page
    assert 'id="card-form"' in page and 'data-publishable-key="pk_test_' in page


async def test_an_open_invoice_shows_as_due(api: Api, client: httpx.AsyncClient) -> None:
    customer = await customer_with_card(api, INSUFFICIENT_FUNDS_CARD)
    sub = await subscribe(api, customer, await monthly_price(api))
    invoice = ok(await api.get(f"/v1/invoices/{sub['latest_invoice']}"))
    assert invoice["status"] == "open"
    page, _ = await open_portal(client, await new_portal(api, customer))
    item = page.split(f'data-invoice="{invoice["id"]}"', 1)[1].split("</li>", 1)[0]
    assert "Due" in item and "$15.00" in item


async def test_a_link_belongs_to_the_first_browser_that_opens_it(
    api: Api, client: httpx.AsyncClient, deps: Deps, settings: Settings
) -> None:
    customer = await customer_with_card(api)
    second = await attached_card(api, customer, MASTERCARD)
    session = await new_portal(api, customer)
    first = await client.get(path_of(session))
    assert first.status_code == 200
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and f"Path={path_of(session)}" in cookie
    assert "samesite=lax" in cookie.lower()
    token = form_token(first.text)
    async with browser(deps, settings) as stranger:
        again = await stranger.get(path_of(session))
        assert again.status_code == 403
        assert "already opened" in again.text and token not in again.text
        taken = await stranger.post(
            f"{path_of(session)}/default", data={"form_token": token, "payment_method": second}
        )
        assert taken.status_code == 403
    assert await default_of(api, customer) != second
    assert (await client.get(path_of(session))).status_code == 200  # still the first's
    assert (await client.get("/p/not-a-token")).status_code == 404
    assert (await client.get("/p/" + "x" * 500)).status_code == 404


async def test_the_link_expires_unopened_and_the_session_after_its_hour(
    api: Api, deps: Deps, settings: Settings
) -> None:
    clock = FakeClock()
    async with browser(replace(deps, clock=clock), settings) as client:
        clocked = Api(client, api.key)
        customer = await customer_with_card(clocked)
        late = await new_portal(clocked, customer, return_url=RETURN_URL)
        used = await new_portal(clocked, customer)
        assert (await client.get(path_of(used))).status_code == 200
        clock.advance(LINK_LIFETIME)
        expired = await client.get(path_of(late))
        assert expired.status_code == 410
        assert "This billing session has expired" in expired.text
        assert f'href="{RETURN_URL}"' in expired.text
        # The opened session lasts an hour from its opening, whatever the link's time.
        clock.advance(SESSION_LIFETIME - LINK_LIFETIME - LINK_LIFETIME / 5)
        page = await client.get(path_of(used))
        assert page.status_code == 200
        token = form_token(page.text)
        clock.advance(LINK_LIFETIME)
        assert (await client.get(path_of(used))).status_code == 410
        second = await attached_card(clocked, customer, MASTERCARD)
        refused = await client.post(
            f"{path_of(used)}/default", data={"form_token": token, "payment_method": second}
        )
        assert refused.status_code == 410
        assert await default_of(clocked, customer) != second


async def test_every_action_needs_the_pages_form_token(api: Api, client: httpx.AsyncClient) -> None:
    customer = await customer_with_card(api)
    second = await attached_card(api, customer, MASTERCARD)
    sub = await subscribe(api, customer, await monthly_price(api))
    session = await new_portal(api, customer)
    _, token = await open_portal(client, session)
    base = path_of(session)
    for form in ({}, {"form_token": ""}, {"form_token": token + "x"}):
        for action, field in (
            ("default", {"payment_method": second}),
            ("cancel", {"subscription": sub["id"]}),
        ):
            refused = await client.post(f"{base}/{action}", data={**form, **field})
            assert refused.status_code == 403, (action, form)
            assert "This form is out of date" in refused.text
        as_script = await client.post(
            f"{base}/cards",
            data={**form, "payment_method": second},
            headers={"Accept": "application/json"},
        )
        assert as_script.status_code == 403
        assert "out of date" in as_script.json()["error"]
    assert await default_of(api, customer) != second
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["cancel_at_period_end"] is False


async def test_choosing_another_saved_card_sets_the_default_and_is_audited(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    customer = await customer_with_card(api)
    first = await default_of(api, customer)
    second = await attached_card(api, customer, MASTERCARD)
    session = await new_portal(api, customer)
    _, token = await open_portal(client, session)
    done = await client.post(
        f"{path_of(session)}/default", data={"form_token": token, "payment_method": second}
    )
    assert (done.status_code, done.headers["location"]) == (303, f"{path_of(session)}?done=default")
    assert await default_of(api, customer) == second
    page = await client.get(done.headers["location"])
    assert "Your default payment method was updated." in page.text
    item = page.text.split(f'data-payment-method="{second}"', 1)[1].split("</li>", 1)[0]
    assert ">Default<" in item
    entries = await portal_audit(pool, merchant.id, session["id"])
    actions_seen = [e["action"] for e in entries]
    assert "customer.updated" in actions_seen  # the row's own trigger, as the portal
    explicit = [e for e in entries if e["action"] == "billing_portal.default_payment_method_set"]
    assert len(explicit) == 1
    assert explicit[0]["object_id"] == customer
    assert explicit[0]["before"] == {"default_payment_method": first}
    assert explicit[0]["after"] == {"default_payment_method": second}
    event = await pool.fetchval(
        "SELECT count(*) FROM events WHERE object_id = $1 AND type = 'customer.updated'"
        " AND data->'object'->'invoice_settings'->>'default_payment_method' = $2",
        customer,
        second,
    )
    assert event == 1


async def test_a_session_cannot_touch_another_customers_card_or_subscription(
    api: Api, client: httpx.AsyncClient
) -> None:
    customer = await customer_with_card(api)
    before = await default_of(api, customer)
    other = await customer_with_card(api, MASTERCARD)
    others_card = await default_of(api, other)
    assert others_card is not None
    others_sub = await subscribe(api, other, await monthly_price(api))
    unattached = ok(await api.post("/v1/payment_methods", card(SUCCESS_CARD)))["id"]
    session = await new_portal(api, customer)
    _, token = await open_portal(client, session)
    base = path_of(session)
    for method in (others_card, unattached, "pm_nope", ""):
        refused = await client.post(
            f"{base}/default", data={"form_token": token, "payment_method": method}
        )
        assert refused.status_code == 400, method
        assert "not one of yours" in refused.text
    stolen = await client.post(
        f"{base}/cards",
        data={"form_token": token, "payment_method": others_card},
        headers={"Accept": "application/json"},
    )
    assert stolen.status_code == 400
    assert await default_of(api, customer) == before
    assert await default_of(api, other) == others_card
    canceled = await client.post(
        f"{base}/cancel", data={"form_token": token, "subscription": others_sub["id"]}
    )
    assert canceled.status_code == 404
    after = ok(await api.get(f"/v1/subscriptions/{others_sub['id']}"))
    assert after["cancel_at_period_end"] is False


async def test_cancel_at_period_end_when_the_settings_allow_it(
    api: Api,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    merchant: NewMerchant,
) -> None:
    customer = await customer_with_card(api)
    sub = await subscribe(api, customer, await monthly_price(api))
    session = await new_portal(api, customer)
    page, token = await open_portal(client, session)
    assert f'value="{sub["id"]}"' in page  # its cancel button
    await set_portal(api, allow_cancel=False)
    page = (await client.get(path_of(session))).text
    assert f'name="subscription" value="{sub["id"]}"' not in page
    refused = await client.post(
        f"{path_of(session)}/cancel", data={"form_token": token, "subscription": sub["id"]}
    )
    assert refused.status_code == 403
    assert ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["cancel_at_period_end"] is False
    await set_portal(api, allow_cancel=True)
    done = await client.post(
        f"{path_of(session)}/cancel", data={"form_token": token, "subscription": sub["id"]}
    )
    assert done.status_code == 303
    after = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))
    assert (after["status"], after["cancel_at_period_end"]) == ("active", True)
    page = (await client.get(done.headers["location"])).text
    assert "will be cancelled at the end" in page and "Cancels on" in page
    assert f'name="subscription" value="{sub["id"]}"' not in page  # nothing left to cancel
    entries = await portal_audit(pool, merchant.id, session["id"])
    assert {"subscription.updated", "billing_portal.subscription_cancel_scheduled"} <= {
        e["action"] for e in entries
    }


async def test_changing_methods_needs_the_setting(api: Api, client: httpx.AsyncClient) -> None:
    customer = await customer_with_card(api)
    second = await attached_card(api, customer, MASTERCARD)
    session = await new_portal(api, customer)
    _, token = await open_portal(client, session)
    await set_portal(api, allow_update_method=False)
    page = (await client.get(path_of(session))).text
    assert 'id="card-form"' not in page and "Make default" not in page
    refused = await client.post(
        f"{path_of(session)}/default", data={"form_token": token, "payment_method": second}
    )
    assert refused.status_code == 403
    as_script = await client.post(
        f"{path_of(session)}/cards",
        data={"form_token": token, "payment_method": second},
        headers={"Accept": "application/json"},
    )
    assert as_script.status_code == 403
    assert await default_of(api, customer) != second


async def tokenized(client: httpx.AsyncClient, page: str, number: str) -> str:
    """What the page's script does: tokenize with the page's publishable key."""
    found = re.search(r'data-publishable-key="([^"]+)"', page)
    assert found is not None
    answer = await client.post(
        "/v1/payment_methods", json=card(number), headers=auth(found.group(1))
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


async def post_card(
    client: httpx.AsyncClient, session: Json, token: str, pm: str
) -> httpx.Response:
    return await client.post(
        f"{path_of(session)}/cards",
        data={"form_token": token, "payment_method": pm},
        headers={"Accept": "application/json"},
    )


async def test_a_new_card_is_saved_with_a_setup_intent_and_becomes_the_default(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    customer = await customer_with_card(api, INSUFFICIENT_FUNDS_CARD)
    session = await new_portal(api, customer)
    page, token = await open_portal(client, session)
    declined = await post_card(client, session, token, await tokenized(client, page, DECLINED_CARD))
    assert declined.status_code == 402
    assert "declined" in declined.json()["error"]
    new = await tokenized(client, page, MASTERCARD)
    saved = await post_card(client, session, token, new)
    assert saved.json() == {"navigate": f"{path_of(session)}?done=card"}
    assert await default_of(api, customer) == new
    method = ok(await api.get(f"/v1/payment_methods/{new}"))
    assert method["customer"] == customer and method["mandate"] is not None
    mandate = ok(await api.get(f"/v1/mandates/{method['mandate']}"))
    assert mandate["customer_acceptance"]["type"] == "online"
    setups = ok(await api.get("/v1/setup_intents", customer=customer))["data"]
    assert {s["status"] for s in setups} == {"succeeded", "requires_payment_method"}
    assert all(s["metadata"]["billing_portal_session"] == session["id"] for s in setups)
    actions_seen = {e["action"] for e in await portal_audit(pool, merchant.id, session["id"])}
    assert {
        "billing_portal.card_added",
        "billing_portal.default_payment_method_set",
    } <= actions_seen


async def test_a_card_that_needs_3ds_is_saved_after_the_customer_authenticates(
    api: Api, client: httpx.AsyncClient
) -> None:
    customer = await customer_with_card(api)
    session = await new_portal(api, customer)
    page, token = await open_portal(client, session)
    new = await tokenized(client, page, THREE_DS_CARD)
    answer = (await post_card(client, session, token, new)).json()
    challenge = urlsplit(answer["navigate"]).path
    assert challenge.startswith("/simulator/authenticate/")
    assert await default_of(api, customer) != new
    approved = await client.post(challenge, data={"decision": "approve"})
    assert approved.status_code == 303
    back = approved.headers["location"]
    assert urlsplit(back).path == f"{path_of(session)}/cards/return"
    done = await client.get(back)
    assert (done.status_code, done.headers["location"]) == (303, f"{path_of(session)}?done=card")
    assert await default_of(api, customer) == new
    # A setup of another session is not this session's to finish.
    other = await new_portal(api, customer)
    await open_portal(client, other)
    setup = urlsplit(back).query
    refused = await client.get(f"{path_of(other)}/cards/return?{setup}")
    assert refused.status_code == 404


async def test_a_retried_create_replays_the_link_but_never_stores_the_token_in_clear(
    api: Api, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    customer = await customer_with_card(api)
    body = {"customer": customer}
    first = ok(await api.post("/v1/billing_portal/sessions", body, **{"Idempotency-Key": "bps-1"}))
    again = ok(await api.post("/v1/billing_portal/sessions", body, **{"Idempotency-Key": "bps-1"}))
    assert again == first
    token = path_of(first).rsplit("/", 1)[1]
    stored = await pool.fetchrow(
        "SELECT response_body, response_body_sealed FROM idempotency_keys"
        " WHERE merchant_id = $1 AND key = 'bps-1'",
        merchant.id,
    )
    assert stored is not None
    assert stored["response_body"] is None and stored["response_body_sealed"] is not None
    assert token.encode() not in bytes(stored["response_body_sealed"])
    events = await pool.fetchval(
        "SELECT count(*) FROM events WHERE merchant_id = $1 AND data::text LIKE $2",
        merchant.id,
        f"%{token}%",
    )
    assert events == 0
