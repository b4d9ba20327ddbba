"""Hosted checkout: /v1/checkout_sessions, and the page's flows driven over HTTP as a browser
would (tokenize with the page's publishable key, then post the pm_... to /checkout/{id}/pay).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from paygrid.app import create_app
from paygrid.clock import SYSTEM_CLOCK, FakeClock
from paygrid.config import Settings
from paygrid.dependencies import Deps
from paygrid.services.checkout_sessions import DEFAULT_LIFETIME
from paygrid.services.merchants import NewMerchant, issue_key
from tests.conftest import SUCCESS_CARD, TEST_BASE_URL, Api, auth, card
from tests.fakes.paystack import FakeMerchant, PaystackFake

Json = dict[str, Any]
SUCCESS_URL = "https://shop.example/thanks"
CANCEL_URL = "https://shop.example/cart"
DECLINED_CARD = "4000000000000002"
THREE_DS_CARD = "4000002500003155"


def session_body(**overrides: Any) -> Json:
    return {
        "amount": 2000,
        "currency": "usd",
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        "description": "1 x paygrid mug",
        **overrides,
    }


async def new_session(api: Api, **overrides: Any) -> Json:
    response = await api.post("/v1/checkout_sessions", session_body(**overrides))
    assert response.status_code == 200, response.text
    created: Json = response.json()
    return created


def attribute(html: str, pattern: str) -> str:
    match = re.search(pattern, html)
    assert match is not None, pattern
    return match.group(1)


async def open_page(client: httpx.AsyncClient, session_id: str) -> tuple[str, str]:
    """The page's form token and the publishable key it tokenizes with."""
    page = await client.get(f"/checkout/{session_id}")
    assert page.status_code == 200, page.text
    token = attribute(page.text, r'name="form_token" value="([^"]+)"')
    return token, attribute(page.text, r'data-publishable-key="([^"]+)"')


async def tokenize(client: httpx.AsyncClient, publishable_key: str, number: str) -> str:
    response = await client.post(
        "/v1/payment_methods", json=card(number), headers=auth(publishable_key)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def submit(
    client: httpx.AsyncClient, session_id: str, token: str, **fields: str
) -> httpx.Response:
    return await client.post(
        f"/checkout/{session_id}/pay", data={"form_token": token, "method": "card", **fields}
    )


async def pay_with(client: httpx.AsyncClient, session_id: str, number: str) -> httpx.Response:
    token, key = await open_page(client, session_id)
    pm = await tokenize(client, key, number)
    return await submit(client, session_id, token, payment_method=pm)


def success_redirect(session_id: str) -> str:
    return f"{SUCCESS_URL}?session_id={session_id}"


async def follow_local(client: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    """Follow 303s while they stay on paygrid."""
    while response.status_code == 303 and response.headers["location"].startswith(TEST_BASE_URL):
        response = await client.get(response.headers["location"])
    return response


# -- the API -----------------------------------------------------------------------------------


async def test_create_retrieve_list_and_expire(api: Api) -> None:
    before = int(SYSTEM_CLOCK.now().timestamp())
    session = await new_session(api, metadata={"order": "1043"}, customer_email="ada@example.com")
    assert session["id"].startswith("cs_")
    assert session["object"] == "checkout_session"
    assert session["url"] == f"{TEST_BASE_URL}/checkout/{session['id']}"
    assert (session["status"], session["payment_status"], session["payment"]) == (
        "open",
        "unpaid",
        None,
    )
    assert (session["amount"], session["currency"]) == (2000, "USD")
    assert session["payment_method_types"] == ["card"]
    assert session["livemode"] is False
    assert (
        before + 86_400 - 5 <= session["expires_at"] <= int(SYSTEM_CLOCK.now().timestamp()) + 86_400
    )
    assert (await api.get(f"/v1/checkout_sessions/{session['id']}")).json() == session
    listed = (await api.get("/v1/checkout_sessions", status="open")).json()
    assert [s["id"] for s in listed["data"]] == [session["id"]]

    expired = await api.post(f"/v1/checkout_sessions/{session['id']}/expire")
    assert expired.status_code == 200, expired.text
    assert expired.json()["status"] == "expired"
    again = await api.post(f"/v1/checkout_sessions/{session['id']}/expire")
    assert again.json()["status"] == "expired"
    events = (await api.get("/v1/events")).json()["data"]
    assert "checkout_session.expired" in [e["type"] for e in events]


@pytest.mark.parametrize(
    ("overrides", "param", "code"),
    [
        ({"amount": 10}, "amount", "amount_too_small"),
        ({"currency": "xyz"}, "currency", "currency_not_supported"),
        ({"success_url": "/thanks"}, "success_url", "parameter_invalid"),
        ({"cancel_url": "javascript:alert(1)"}, "cancel_url", "parameter_invalid"),
        ({"expires_at": 1}, "expires_at", "parameter_invalid"),
        ({"expires_at": "far"}, "expires_at", "parameter_invalid"),
        ({"payment_method_types": ["cheque"]}, "payment_method_types[0]", "parameter_invalid"),
        ({"customer": "cus_missing"}, "customer", "resource_missing"),
        ({"surprise": 1}, "surprise", "parameter_unknown"),
    ],
)
async def test_invalid_sessions_are_refused(
    api: Api, pool: asyncpg.Pool, overrides: Json, param: str, code: str
) -> None:
    response = await api.post("/v1/checkout_sessions", session_body(**overrides))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


async def test_expiry_window_is_30_minutes_to_24_hours(api: Api) -> None:
    now = int(SYSTEM_CLOCK.now().timestamp())
    for expires_at, ok in (
        (now + 25 * 60, False),
        (now + 35 * 60, True),
        (now + 86_400 + 60, False),
    ):
        response = await api.post("/v1/checkout_sessions", session_body(expires_at=expires_at))
        assert (response.status_code == 200) is ok, response.text
    both = session_body(customer_email="a@example.com", customer="cus_x")
    assert (await api.post("/v1/checkout_sessions", both)).json()["error"]["param"] == (
        "customer_email"
    )


async def test_sessions_are_isolated_by_merchant_and_mode(
    api: Api, client: httpx.AsyncClient, merchant: NewMerchant, other_merchant: NewMerchant
) -> None:
    session = await new_session(api)
    for key in (other_merchant.key("secret", False), merchant.key("secret", True)):
        other = Api(client, key)
        response = await other.get(f"/v1/checkout_sessions/{session['id']}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "resource_missing"
        assert (
            await other.post(f"/v1/checkout_sessions/{session['id']}/expire")
        ).status_code == 404
        assert (await other.get("/v1/checkout_sessions")).json()["data"] == []


async def test_sessions_need_the_payments_scopes(
    api: Api, client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    session = await new_session(api)
    reader = await issue_key(pool, merchant.id, "secret", False, scopes=["payments:read"])
    outsider = await issue_key(pool, merchant.id, "secret", False, scopes=["customers:write"])
    read = Api(client, reader.secret)
    assert (await read.get(f"/v1/checkout_sessions/{session['id']}")).status_code == 200
    refused = await read.post("/v1/checkout_sessions", session_body())
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_permissions"
    denied = await Api(client, outsider.secret).get("/v1/checkout_sessions")
    assert denied.status_code == 403


# -- the page ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [(2000, "usd", "$20.00"), (500_000, "NGN", "₦5,000.00"), (1234, "EUR", "12,34\xa0€")],
)
async def test_page_shows_the_amount_in_the_currency_locale(
    api: Api,
    client: httpx.AsyncClient,
    merchant: NewMerchant,
    amount: int,
    currency: str,
    shown: str,
) -> None:
    session = await new_session(api, amount=amount, currency=currency)
    page = await client.get(f"/checkout/{session['id']}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f'<h1 class="amount" id="amount">{shown}</h1>' in page.text
    assert f">Pay {shown}</button>" in page.text
    assert merchant.name in page.text
    assert "1 x paygrid mug" in page.text
    for label in ("Card number", "Expiry (MM / YY)", "CVC"):
        assert f">{label}</label>" in page.text
    assert 'role="alert"' in page.text
    # Card fields have no name, so even without the script they are never posted to us.
    assert not re.search(r'id="card-(number|expiry|cvc)"[^>]*\bname=', page.text)


async def test_page_is_frameable_for_checkout_js_and_locked_down(
    api: Api, client: httpx.AsyncClient
) -> None:
    session = await new_session(api)
    page = await client.get(f"/checkout/{session['id']}")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors *" in csp  # PAYGRID_CORS_ORIGINS is * in tests
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "x-frame-options" not in page.headers
    assert page.headers["cache-control"] == "no-store"
    # The API itself still refuses to be framed.
    api_response = await api.get(f"/v1/checkout_sessions/{session['id']}")
    assert api_response.headers["x-frame-options"] == "DENY"
    dashboard_like = await client.get("/nowhere")
    assert dashboard_like.headers["x-frame-options"] == "DENY"


async def test_frame_ancestors_follow_the_cors_origins(deps: Deps, settings: Settings) -> None:
    listed = settings.model_copy(update={"cors_origins": "https://shop.example"})
    app = create_app(listed, deps=deps)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
        page = await http.get("/checkout/cs_missing")
    assert page.status_code == 404
    assert "frame-ancestors 'self' https://shop.example" in page.headers["content-security-policy"]


async def test_static_assets_are_served(client: httpx.AsyncClient) -> None:
    sdk = await client.get("/js/checkout.js")
    assert sdk.status_code == 200
    assert sdk.headers["content-type"].startswith("text/javascript")
    assert "paygrid.checkout.succeeded" in sdk.text and 'aria-label": "Close"' in sdk.text
    for path in ("/static/checkout-page.js", "/static/checkout.css"):
        assert (await client.get(path)).status_code == 200
    assert (await client.get("/static/../app.py")).status_code == 404


# -- paying ------------------------------------------------------------------------------------


async def test_paying_by_card_completes_the_session(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    session = await new_session(api, metadata={"order": "1043"})
    token, key = await open_page(client, session["id"])
    pm = await tokenize(client, key, SUCCESS_CARD)
    response = await submit(client, session["id"], token, payment_method=pm)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == success_redirect(session["id"])

    done = (await api.get(f"/v1/checkout_sessions/{session['id']}")).json()
    assert (done["status"], done["payment_status"]) == ("complete", "paid")
    assert done["completed_at"] is not None
    payment = (await api.get(f"/v1/payments/{done['payment']}")).json()
    assert (payment["status"], payment["amount"], payment["currency"]) == ("succeeded", 2000, "USD")
    assert payment["metadata"] == {"order": "1043", "checkout_session": session["id"]}
    assert payment["return_url"] == f"{TEST_BASE_URL}/checkout/{session['id']}/return"
    events = [e["type"] for e in (await api.get("/v1/events", limit=20)).json()["data"]]
    assert "checkout_session.completed" in events and "payment.succeeded" in events
    actors = await pool.fetch(
        "SELECT DISTINCT actor FROM audit_log WHERE object_id = ANY($1::text[])"
        " AND action LIKE '%.updated'",
        [session["id"], done["payment"]],
    )
    assert {r["actor"] for r in actors} == {f"checkout:{session['id']}"}
    # A complete session takes no more payments: its page sends the customer on.
    again = await submit(client, session["id"], token, payment_method=pm)
    assert again.headers["location"] == success_redirect(session["id"])
    revisit = await client.get(f"/checkout/{session['id']}")
    assert revisit.headers["location"] == success_redirect(session["id"])
    assert len((await api.get(f"/v1/payments/{done['payment']}")).json()["attempts"]) == 1


async def test_double_submit_pays_once(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    session = await new_session(api)
    token, key = await open_page(client, session["id"])
    first, second = [await tokenize(client, key, SUCCESS_CARD) for _ in range(2)]
    responses = await asyncio.gather(
        *(
            submit(client, session["id"], token, payment_method=pm)
            for pm in (first, second, first, second)
        )
    )
    assert {r.status_code for r in responses} <= {303, 200}, [r.text for r in responses]
    payments = await pool.fetch(
        "SELECT id, status FROM payments WHERE merchant_id = $1", merchant.id
    )
    assert [p["status"] for p in payments] == ["succeeded"]
    charged = await pool.fetchval(
        "SELECT count(*) FROM payment_attempts WHERE payment_id = $1 AND status = 'captured'",
        payments[0]["id"],
    )
    assert charged == 1
    done = (await api.get(f"/v1/checkout_sessions/{session['id']}")).json()
    assert (done["status"], done["payment"]) == ("complete", payments[0]["id"])


async def test_a_decline_shows_the_error_then_another_card_pays(
    api: Api, client: httpx.AsyncClient
) -> None:
    session = await new_session(api)
    declined = await pay_with(client, session["id"], DECLINED_CARD)
    assert declined.status_code == 402
    assert re.search(
        r'<div id="form-error" class="form-error" role="alert"[^>]*>Your card was declined\.</div>',
        declined.text,
    )
    payment_id = (await api.get(f"/v1/checkout_sessions/{session['id']}")).json()["payment"]
    assert (await api.get(f"/v1/payments/{payment_id}")).json()["status"] == (
        "requires_payment_method"
    )
    paid = await pay_with(client, session["id"], SUCCESS_CARD)
    assert paid.headers["location"] == success_redirect(session["id"])
    payment = (await api.get(f"/v1/payments/{payment_id}")).json()
    assert payment["status"] == "succeeded"
    assert [a["status"] for a in payment["attempts"]] == ["declined", "captured"]


async def test_three_d_secure_goes_to_the_bank_page_and_back(
    api: Api, client: httpx.AsyncClient
) -> None:
    session = await new_session(api)
    response = await pay_with(client, session["id"], THREE_DS_CARD)
    assert response.status_code == 303
    bank_page = response.headers["location"]
    assert bank_page.startswith(f"{TEST_BASE_URL}/simulator/authenticate/")
    page = await client.get(bank_page)
    assert "frame-ancestors *" in page.headers["content-security-policy"]  # inside the iframe
    decided = await client.post(urlsplit(bank_page).path, data={"decision": "approve"})
    back = await follow_local(client, decided)
    assert back.headers["location"] == success_redirect(session["id"])
    assert (await api.get(f"/v1/checkout_sessions/{session['id']}")).json()["status"] == "complete"


async def test_a_denied_authentication_lets_the_customer_try_again(
    api: Api, client: httpx.AsyncClient
) -> None:
    session = await new_session(api)
    bank_page = (await pay_with(client, session["id"], THREE_DS_CARD)).headers["location"]
    denied = await client.post(urlsplit(bank_page).path, data={"decision": "deny"})
    back = await follow_local(client, denied)
    assert back.status_code == 402
    assert 'role="alert"' in back.text and 'id="card-form"' in back.text
    paid = await pay_with(client, session["id"], SUCCESS_CARD)
    assert paid.headers["location"] == success_redirect(session["id"])


async def test_embedded_page_reports_to_checkout_js(api: Api, client: httpx.AsyncClient) -> None:
    session = await new_session(api)
    page = await client.get(f"/checkout/{session['id']}", params={"embed": "1"})
    token = attribute(page.text, r'name="form_token" value="([^"]+)"')
    key = attribute(page.text, r'data-publishable-key="([^"]+)"')
    assert 'name="embed" value="1"' in page.text
    pm = await tokenize(client, key, THREE_DS_CARD)
    response = await submit(client, session["id"], token, payment_method=pm, embed="1")
    decided = await client.post(
        urlsplit(response.headers["location"]).path, data={"decision": "approve"}
    )
    done = await follow_local(client, decided)
    assert done.status_code == 200
    payment_id = (await api.get(f"/v1/checkout_sessions/{session['id']}")).json()["payment"]
    assert 'data-event="paygrid.checkout.succeeded"' in done.text
    assert f'data-payment-id="{payment_id}"' in done.text


async def test_expired_sessions_refuse_payment(api: Api, client: httpx.AsyncClient) -> None:
    session = await new_session(api)
    token, key = await open_page(client, session["id"])
    await api.post(f"/v1/checkout_sessions/{session['id']}/expire")
    page = await client.get(f"/checkout/{session['id']}")
    assert page.status_code == 410
    assert "This checkout has expired" in page.text
    pm = await tokenize(client, key, SUCCESS_CARD)
    refused = await submit(client, session["id"], token, payment_method=pm)
    assert refused.status_code == 410
    assert (await api.get(f"/v1/checkout_sessions/{session['id']}")).json()["payment"] is None


async def test_sessions_expire_when_their_time_is_up(
    merchant: NewMerchant, deps: Deps, settings: Settings
) -> None:
    """Expiry is measured on the injected clock: moving it past ``expires_at`` is enough."""
    clock = FakeClock()
    app = create_app(settings, deps=replace(deps, clock=clock))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as client:
        api = Api(client, merchant.key("secret", livemode=False))
        session = await new_session(api)
        clock.advance(DEFAULT_LIFETIME)
        assert (await client.get(f"/checkout/{session['id']}")).status_code == 410
        assert (await api.get(f"/v1/checkout_sessions/{session['id']}")).json()[
            "status"
        ] == "expired"


async def test_a_complete_session_cannot_expire(api: Api, client: httpx.AsyncClient) -> None:
    session = await new_session(api)
    await pay_with(client, session["id"], SUCCESS_CARD)
    response = await api.post(f"/v1/checkout_sessions/{session['id']}/expire")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "checkout_session_invalid_state"


async def test_forged_posts_are_refused(api: Api, client: httpx.AsyncClient) -> None:
    session = await new_session(api)
    _, key = await open_page(client, session["id"])
    pm = await tokenize(client, key, SUCCESS_CARD)
    forged = await submit(client, session["id"], "not-the-token", payment_method=pm)
    assert forged.status_code == 403
    assert (await api.get(f"/v1/checkout_sessions/{session['id']}")).json()["payment"] is None
    assert (await client.get("/checkout/cs_nope")).status_code == 404


# -- a provider's hosted page (no JavaScript) --------------------------------------------------


async def test_redirect_methods_pay_at_paystack_without_javascript(
    api: Api,
    client: httpx.AsyncClient,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    account = await api.post(
        "/v1/connector_accounts",
        {
            "provider": "paystack",
            "credentials": {"secret_key": paystack_merchant.secret_key},
            "currencies": ["NGN"],
            "api_base": paystack_fake.base_url,
        },
    )
    assert account.status_code == 200, account.text
    session = await new_session(
        api, amount=500_000, currency="NGN", payment_method_types=["bank_transfer", "ussd"]
    )
    page = await client.get(f"/checkout/{session['id']}")
    assert 'id="card-form"' not in page.text and "<script" in page.text
    assert ">Email address</label>" in page.text  # the session has no email: the page asks
    token = attribute(page.text, r'name="form_token" value="([^"]+)"')
    form = {"form_token": token, "method": "redirect", "email": "ada@example.com"}
    response = await client.post(f"/checkout/{session['id']}/pay", data=form)
    assert response.status_code == 303, response.text
    provider_page = response.headers["location"]
    assert provider_page.startswith(paystack_fake.base_url)
    payment_id = (await api.get(f"/v1/checkout_sessions/{session['id']}")).json()["payment"]
    payment = (await api.get(f"/v1/payments/{payment_id}")).json()
    assert payment["payment_method_types"] == ["bank_transfer", "ussd"]
    assert payment["receipt_email"] == "ada@example.com"

    paid = await paystack_merchant.pay(provider_page, channel="bank_transfer")
    assert paid.status_code == 302, paid.text
    back = await client.get(paid.headers["location"])
    finished = await follow_local(client, back)
    assert finished.headers["location"] == success_redirect(session["id"])
    done = (await api.get(f"/v1/checkout_sessions/{session['id']}")).json()
    assert (done["status"], done["payment"]) == ("complete", payment_id)


# -- the demo store ----------------------------------------------------------------------------


@pytest.fixture
async def demo_client(
    deps: Deps, settings: Settings, merchant: NewMerchant, tmp_path: Any
) -> AsyncIterator[httpx.AsyncClient]:
    from paygrid.demo import DemoMerchant, _save

    _save(
        tmp_path / "demo.json",
        DemoMerchant(
            merchant.id, merchant.key("secret", False), merchant.key("publishable", False)
        ),
    )
    demo = settings.model_copy(update={"demo_store": True, "data_dir": tmp_path})
    app = create_app(demo, deps=Deps(**{**_fields(deps), "settings": demo}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
        yield http


def _fields(deps: Deps) -> dict[str, Any]:
    return {name: getattr(deps, name) for name in Deps.__dataclass_fields__}


async def test_demo_store_sells_through_checkout_js(
    demo_client: httpx.AsyncClient, client: httpx.AsyncClient, api: Api
) -> None:
    assert (await client.get("/demo/store")).status_code == 404  # only with serve --demo
    store = await demo_client.get("/demo/store")
    assert store.status_code == 200
    assert '<script src="/js/checkout.js"></script>' in store.text
    assert "frame-src 'self'" in store.headers["content-security-policy"]
    created = await demo_client.post("/demo/store/checkout")
    assert created.status_code == 200, created.text
    session_id = created.json()["id"]
    session = (await api.get(f"/v1/checkout_sessions/{session_id}")).json()
    assert (session["amount"], session["currency"], session["status"]) == (2000, "USD", "open")
    query = parse_qs(urlsplit(session["success_url"]).query)
    assert query == {"paid": ["1"]}
