"""The dashboard over HTTP: sign-in, sessions and CSRF, every page with real data, and
actions that go through the services (audited as the dashboard user) within the role."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.app import create_app
from paygrid.bootstrap import build_deps
from paygrid.clock import FakeClock
from paygrid.config import Settings
from paygrid.dependencies import Deps
from paygrid.services.dashboard_users import DashboardUser, create_user
from paygrid.services.merchants import NewMerchant
from tests.conftest import TEST_BASE_URL, Api, auth, confirmed_payment

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

Client = Callable[[], Awaitable[httpx.AsyncClient]]
Login = Callable[[str], Awaitable[tuple[httpx.AsyncClient, DashboardUser]]]


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, html[:500]
    return found.group(1)


@pytest.fixture
async def new_client(deps: Deps, settings: Settings) -> AsyncIterator[Client]:
    """Each call: a fresh browser (own cookie jar) on a fresh app (own login counters)."""
    opened: list[httpx.AsyncClient] = []

    async def make() -> httpx.AsyncClient:
        app = create_app(settings, deps=deps)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        http = httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL)
        opened.append(http)
        return http

    yield make
    for http in opened:
        await http.aclose()


async def sign_in(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await http.get("/dashboard/login")
    assert page.status_code == 200
    return await http.post(
        "/dashboard/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
    )


@pytest.fixture
def login(pool: asyncpg.Pool, merchant: NewMerchant, new_client: Client) -> Login:
    async def as_role(role: str) -> tuple[httpx.AsyncClient, DashboardUser]:
        user = await create_user(
            pool,
            merchant_id=merchant.id,
            email=f"{role}-{uuid.uuid4().hex[:8]}@example.com",
            role=role,
            password=PASSWORD,
        )
        http = await new_client()
        response = await sign_in(http, user.email, PASSWORD)
        assert response.status_code == 303, response.text
        return http, user

    return as_role


async def post_form(
    http: httpx.AsyncClient, page_path: str, action: str, fields: dict[str, str]
) -> httpx.Response:
    """Load the page the form is on (for its CSRF token), then submit the form."""
    page = await http.get(page_path)
    assert page.status_code == 200, page.text
    return await http.post(action, data={"csrf_token": csrf_of(page.text), **fields})


async def _payment(api: Api, **fields: Any) -> dict[str, Any]:
    response = await api.post("/v1/payments", confirmed_payment(**fields))
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def _audit_actors(pool: asyncpg.Pool, object_id: str) -> set[str]:
    rows = await pool.fetch("SELECT actor FROM audit_log WHERE object_id = $1", object_id)
    return {r["actor"] for r in rows}


# -- signing in ------------------------------------------------------------------------------


async def test_login_success_sets_a_hashed_session_cookie(
    pool: asyncpg.Pool, merchant: NewMerchant, new_client: Client
) -> None:
    user = await create_user(
        pool, merchant_id=merchant.id, email="ok@example.com", role="admin", password=PASSWORD
    )
    http = await new_client()
    assert (await http.get("/dashboard")).headers["location"].startswith("/dashboard/login")
    response = await sign_in(http, "OK@example.com", PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    cookie = next(h for h in response.headers.get_list("set-cookie") if "paygrid_dashboard=" in h)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/dashboard" in cookie
    token = http.cookies.get("paygrid_dashboard")
    assert token is not None
    stored = await pool.fetchrow("SELECT * FROM dashboard_sessions WHERE user_id = $1", user.id)
    assert stored is not None and token.encode() not in bytes(stored["token_hash"])
    assert stored["livemode"] is False
    overview = await http.get("/dashboard")
    assert overview.status_code == 200 and "Overview" in overview.text
    assert "script-src" not in overview.headers["content-security-policy"]
    assert overview.headers["cache-control"] == "no-store"


async def test_login_failure_and_rate_limit(
    pool: asyncpg.Pool, merchant: NewMerchant, new_client: Client
) -> None:
    await create_user(
        pool, merchant_id=merchant.id, email="limit@example.com", role="viewer", password=PASSWORD
    )
    http = await new_client()
    for _ in range(5):
        wrong = await sign_in(http, "limit@example.com", "not the password")
        assert wrong.status_code == 401 and "Incorrect email or password." in wrong.text
        assert "paygrid_dashboard" not in http.cookies
    blocked = await sign_in(http, "limit@example.com", PASSWORD)
    assert blocked.status_code == 429
    assert "Too many failed sign-in attempts" in blocked.text and "Try again in" in blocked.text
    unknown = await sign_in(http, "nobody@example.com", PASSWORD)
    assert unknown.status_code == 429  # the same address is limited too


async def test_login_and_forms_need_the_csrf_token(login: Login, new_client: Client) -> None:
    http = await new_client()
    await http.get("/dashboard/login")
    forged = await http.post(
        "/dashboard/login", data={"email": "a@example.com", "password": "x", "csrf_token": "no"}
    )
    assert forged.status_code == 403
    admin, _ = await login("admin")
    missing = await admin.post("/dashboard/mode", data={"mode": "live"})
    assert missing.status_code == 403 and "Reload the page" in missing.text
    wrong = await admin.post("/dashboard/mode", data={"mode": "live", "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    assert "Test mode" in (await admin.get("/dashboard")).text


async def test_logout_and_expiry_end_the_session(
    login: Login, pool: asyncpg.Pool, new_client: Client
) -> None:
    http, user = await login("viewer")
    token = http.cookies["paygrid_dashboard"]
    out = await post_form(http, "/dashboard", "/dashboard/logout", {})
    assert out.status_code == 303 and out.headers["location"].startswith("/dashboard/login")
    replay = await new_client()
    replay.cookies.set("paygrid_dashboard", token, domain="testserver", path="/dashboard")
    assert (await replay.get("/dashboard")).status_code == 303  # revoked, not just forgotten

    again = await new_client()
    assert (await sign_in(again, user.email, PASSWORD)).status_code == 303
    await pool.execute(
        "UPDATE dashboard_sessions SET expires_at = now() - interval '1 second'"
        " WHERE user_id = $1 AND revoked_at IS NULL",
        user.id,
    )
    expired = await again.get("/dashboard/payments")
    assert expired.status_code == 303
    assert expired.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Fpayments"


async def test_mode_toggle_switches_to_live_data(login: Login, api: Api) -> None:
    await _payment(api, reference="test-mode-order")
    http, _ = await login("admin")
    assert "test-mode-order" in (await http.get("/dashboard/payments")).text
    switched = await post_form(http, "/dashboard", "/dashboard/mode", {"mode": "live"})
    assert switched.status_code == 303
    live = await http.get("/dashboard/payments")
    assert "Live mode" in live.text and "test-mode-order" not in live.text


# -- pages -----------------------------------------------------------------------------------


async def test_every_page_renders_for_an_admin(login: Login, api: Api) -> None:
    customer = (await api.post("/v1/customers", {"email": "ada@example.com"})).json()
    payment = await _payment(api, customer=customer["id"], receipt_email="ada@example.com")
    refund = (await api.post("/v1/refunds", {"payment": payment["id"], "amount": 100})).json()
    endpoint = (
        await api.post(
            "/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/hooks", "enabled_events": ["*"]}
        )
    ).json()
    account = (await api.post("/v1/connector_accounts", {"provider": "simulator"})).json()
    event = (await api.get("/v1/events")).json()["data"][0]
    http, _ = await login("admin")
    pages = {
        "/dashboard": "Payments by status",
        "/dashboard/payments": payment["id"],
        f"/dashboard/payments/{payment['id']}": "Timeline",
        "/dashboard/refunds": refund["id"],
        f"/dashboard/refunds/{refund['id']}": payment["id"],
        "/dashboard/customers": customer["id"],
        f"/dashboard/customers/{customer['id']}": payment["id"],
        "/dashboard/events": event["id"],
        f"/dashboard/events/{event['id']}": event["type"],
        "/dashboard/webhooks": endpoint["url"],
        f"/dashboard/webhooks/{endpoint['id']}": "Delivery log",
        "/dashboard/developers/api_keys": "Create a secret key",
        "/dashboard/developers/connector_accounts": account["id"],
        f"/dashboard/developers/connector_accounts/{account['id']}": "Capabilities",
        "/dashboard/audit": payment["id"],
    }
    for path, expected in pages.items():
        response = await http.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        assert expected in response.text, path
        assert '<main id="main"' in response.text and "<h1" in response.text
    overview = (await http.get("/dashboard")).text
    assert '<svg class="chart"' in overview and "<title id=" in overview
    # Queued deliveries to this dead address must not reach other tests' workers.
    await api.http.delete(f"/v1/webhook_endpoints/{endpoint['id']}", headers=auth(api.key))


async def test_search_and_filters(login: Login, api: Api) -> None:
    shoes = await _payment(api, amount=1234, reference="order-shoes", receipt_email="s@example.com")
    hats = await _payment(api, amount=5000, currency="EUR", reference="order-hats")
    held = await _payment(api, amount=777, capture_method="manual")
    http, _ = await login("viewer")

    async def found(**params: str) -> set[str]:
        page = (await http.get("/dashboard/payments", params=params)).text
        return {p for p in (shoes["id"], hats["id"], held["id"]) if p in page}

    assert await found(q=shoes["id"]) == {shoes["id"]}
    assert await found(q="order-hats") == {hats["id"]}
    assert await found(q="S@EXAMPLE.COM") == {shoes["id"]}
    assert await found(q="12.34") == {shoes["id"]}
    assert await found(q="50") == {hats["id"]}
    assert await found(currency="EUR") == {hats["id"]}
    assert await found(status="requires_capture") == {held["id"]}
    assert await found(connector="simulator") == {shoes["id"], hats["id"], held["id"]}
    assert await found(created_from="2000-01-01", created_to="2000-01-02") == set()


async def test_pagination_walks_older_and_newer(login: Login, api: Api) -> None:
    created = [(await _payment(api, reference=f"page-{n}"))["id"] for n in range(27)]
    http, _ = await login("viewer")
    first = (await http.get("/dashboard/payments")).text
    assert created[-1] in first and created[1] not in first
    older = re.search(r'href="(/dashboard/payments\?[^"]*after=[^"]+)" rel="next"', first)
    assert older is not None
    second = (await http.get(older.group(1).replace("&amp;", "&"))).text
    assert created[0] in second and created[1] in second and created[-1] not in second
    assert 'rel="prev"' in second


# -- actions ---------------------------------------------------------------------------------


async def test_capture_void_and_partial_refund_go_through_the_services(
    login: Login, api: Api, pool: asyncpg.Pool
) -> None:
    to_capture = await _payment(api, amount=2000, capture_method="manual")
    to_void = await _payment(api, amount=3000, capture_method="manual")
    http, user = await login("admin")
    actor = f"dashboard:{user.id}"

    page = f"/dashboard/payments/{to_capture['id']}"
    unconfirmed = await post_form(http, page, f"{page}/capture", {"amount": "15.00"})
    assert unconfirmed.status_code == 400 and "confirmation box" in unconfirmed.text
    captured = await post_form(http, page, f"{page}/capture", {"amount": "15.00", "confirm": "yes"})
    assert captured.status_code == 303
    after = (await api.get(f"/v1/payments/{to_capture['id']}")).json()
    assert after["status"] == "succeeded" and after["amount_received"] == 1500
    assert actor in await _audit_actors(pool, to_capture["id"])
    assert "Payment captured." in (await http.get(captured.headers["location"])).text

    void_page = f"/dashboard/payments/{to_void['id']}"
    voided = await post_form(http, void_page, f"{void_page}/void", {"confirm": "yes"})
    assert voided.status_code == 303
    assert (await api.get(f"/v1/payments/{to_void['id']}")).json()["status"] == "canceled"
    assert actor in await _audit_actors(pool, to_void["id"])

    refunded = await post_form(
        http,
        page,
        f"{page}/refund",
        {"amount": "4.50", "reason": "requested_by_customer", "confirm": "yes"},
    )
    assert refunded.status_code == 303
    refunds = (await api.get("/v1/refunds", payment=to_capture["id"])).json()["data"]
    assert [(r["amount"], r["status"]) for r in refunds] == [(450, "succeeded")]
    assert actor in await _audit_actors(pool, refunds[0]["id"])
    detail = (await http.get(page)).text
    assert "Refund created." not in detail and refunds[0]["id"] in detail
    audit = (await http.get("/dashboard/audit", params={"actor": actor})).text
    assert refunds[0]["id"] in audit and "refund.created" in audit


async def test_a_resubmitted_refund_form_refunds_once(login: Login, api: Api) -> None:
    payment = await _payment(api, amount=2000)
    http, _ = await login("support")
    page = f"/dashboard/payments/{payment['id']}"
    html = (await http.get(page)).text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert key is not None
    form = {"csrf_token": csrf_of(html), "idempotency_key": key.group(1)}
    for _ in range(2):
        sent = await http.post(f"{page}/refund", data={**form, "amount": "1", "confirm": "yes"})
        assert sent.status_code == 303
    refunds = (await api.get("/v1/refunds", payment=payment["id"])).json()["data"]
    assert len(refunds) == 1


async def test_roles_are_enforced(login: Login, api: Api) -> None:
    payment = await _payment(api, amount=2000)
    page = f"/dashboard/payments/{payment['id']}"

    viewer, _ = await login("viewer")
    html = (await viewer.get(page)).text
    assert "Your role (viewer) cannot refund payments." in html and "<fieldset disabled>" in html
    refused = await post_form(viewer, page, f"{page}/refund", {"amount": "1", "confirm": "yes"})
    assert refused.status_code == 403 and "refunds:write" in refused.text
    assert (await api.get("/v1/refunds", payment=payment["id"])).json()["data"] == []

    support, _ = await login("support")
    allowed = await post_form(support, page, f"{page}/refund", {"amount": "1", "confirm": "yes"})
    assert allowed.status_code == 303
    assert len((await api.get("/v1/refunds", payment=payment["id"])).json()["data"]) == 1

    operator, _ = await login("operator")
    keys_page = await operator.get("/dashboard/developers/api_keys")
    assert keys_page.status_code == 403 and "admin:read" in keys_page.text
    assert "Developers" not in (await operator.get("/dashboard")).text
    forged = await post_form(
        operator, "/dashboard", "/dashboard/developers/api_keys", {"role": "admin"}
    )
    assert forged.status_code == 403 and "admin:write" in forged.text

    support_keys = (await support.get("/dashboard/developers/api_keys")).text
    assert "Your role (support) cannot create API keys." in support_keys


async def test_api_key_secret_is_shown_once(login: Login, api: Api) -> None:
    http, _ = await login("admin")
    created = await post_form(
        http,
        "/dashboard/developers/api_keys",
        "/dashboard/developers/api_keys",
        {"name": "reporting", "role": "viewer"},
    )
    assert created.status_code == 200 and "shown only this once" in created.text
    secret = re.search(r'id="new-secret" readonly value="(sk_test_[^"]+)"', created.text)
    assert secret is not None
    key_api = Api(api.http, secret.group(1))
    assert (await key_api.get("/v1/payments")).status_code == 200
    assert (await key_api.post("/v1/refunds", {"payment": "pay_x"})).status_code == 403
    listing = (await http.get("/dashboard/developers/api_keys")).text
    assert secret.group(1) not in listing and f"…{secret.group(1)[-4:]}" in listing
    key_id = re.search(r"<td>(key_[A-Za-z0-9]+)</td><td>reporting</td>", listing)
    assert key_id is not None
    revoked = await post_form(
        http,
        "/dashboard/developers/api_keys",
        f"/dashboard/developers/api_keys/{key_id.group(1)}/revoke",
        {"confirm": "yes"},
    )
    assert revoked.status_code == 303
    assert (await key_api.get("/v1/payments")).status_code == 401


async def test_connector_credentials_are_never_shown(login: Login, api: Api) -> None:
    secret = "sk_test_dashboardNeverShowsThis9876"
    hook = "whsec_dashboardNeverShowsThis5432"
    account = (
        await api.post(
            "/v1/connector_accounts",
            {"provider": "stripe", "credentials": {"secret_key": secret, "webhook_secret": hook}},
        )
    ).json()
    http, _ = await login("admin")
    for path in (
        "/dashboard/developers/connector_accounts",
        f"/dashboard/developers/connector_accounts/{account['id']}",
        "/dashboard/audit",
    ):
        html = (await http.get(path)).text
        assert secret not in html and hook not in html and secret[:-4] not in html
    assert (
        "…9876"
        in (await http.get(f"/dashboard/developers/connector_accounts/{account['id']}")).text
    )


async def test_webhook_redeliver_and_replay(login: Login, api: Api, pool: asyncpg.Pool) -> None:
    endpoint = (
        await api.post(
            "/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/hooks", "enabled_events": ["*"]}
        )
    ).json()
    await _payment(api)
    event = (await api.get("/v1/events")).json()["data"][0]
    http, _ = await login("admin")
    page = f"/dashboard/webhooks/{endpoint['id']}"
    redelivered = await post_form(http, page, f"{page}/redeliver", {"event": event["id"]})
    assert redelivered.status_code == 303 and "queued=1" in redelivered.headers["location"]
    replayed = await post_form(http, page, f"{page}/replay", {"type": event["type"]})
    assert replayed.status_code == 303
    deliveries = await pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1", endpoint["id"]
    )
    assert deliveries >= 2

    viewer, _ = await login("viewer")
    refused = await post_form(viewer, page, f"{page}/redeliver", {"event": event["id"]})
    assert refused.status_code == 403
    # Queued deliveries to this dead address must not reach other tests' workers.
    await api.http.delete(f"/v1/webhook_endpoints/{endpoint['id']}", headers=auth(api.key))


async def test_another_merchants_payment_is_not_found(
    login: Login, client: httpx.AsyncClient, other_merchant: NewMerchant
) -> None:
    theirs = await _payment(Api(client, other_merchant.key("secret", livemode=False)))
    http, _ = await login("admin")
    response = await http.get(f"/dashboard/payments/{theirs['id']}")
    assert response.status_code == 404 and theirs["id"] in response.text


def test_users_create_from_the_cli(database_url: str, merchant: NewMerchant) -> None:
    from tests.integration.test_cli import _paygrid

    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    args = ("users", "create", "--merchant", merchant.id, "--email", email, "--role", "support")
    created = _paygrid(database_url, *args, "--password", PASSWORD)
    assert created.returncode == 0, created.stderr + created.stdout
    assert email in created.stdout and PASSWORD not in created.stdout
    again = _paygrid(database_url, *args, "--password", PASSWORD)
    assert again.returncode == 1 and "already exists" in again.stderr


async def test_concurrent_wrong_passwords_for_one_email_get_at_most_the_limit_of_checks(
    pool: asyncpg.Pool, merchant: NewMerchant, new_client: Client
) -> None:
    """Each browser on its own app (own per-IP counters): only the per-email count, shared
    by every process through the database, can stop them."""
    email = f"race-{uuid.uuid4().hex[:8]}@example.com"
    await create_user(pool, merchant_id=merchant.id, email=email, role="viewer", password=PASSWORD)
    browsers = [await new_client() for _ in range(30)]
    pages = [await http.get("/dashboard/login") for http in browsers]
    answers = await asyncio.gather(
        *(
            http.post(
                "/dashboard/login",
                data={"email": email, "password": "wrong", "csrf_token": csrf_of(page.text)},
            )
            for http, page in zip(browsers, pages, strict=True)
        )
    )
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {401: 5, 429: 25}


async def test_concurrent_wrong_passwords_from_one_address_get_at_most_the_limit_of_checks(
    new_client: Client,
) -> None:
    http = await new_client()
    page = await http.get("/dashboard/login")
    answers = await asyncio.gather(
        *(
            http.post(
                "/dashboard/login",
                data={
                    "email": f"nobody-{n}-{uuid.uuid4().hex[:6]}@example.com",
                    "password": "wrong",
                    "csrf_token": csrf_of(page.text),
                },
            )
            for n in range(30)
        )
    )
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {401: 5, 429: 25}


async def test_a_successful_login_does_not_use_up_the_limit(
    pool: asyncpg.Pool, merchant: NewMerchant, new_client: Client
) -> None:
    email = f"regular-{uuid.uuid4().hex[:8]}@example.com"
    await create_user(pool, merchant_id=merchant.id, email=email, role="viewer", password=PASSWORD)
    http = await new_client()
    for _ in range(4):
        assert (await sign_in(http, email, "typo")).status_code == 401
    for _ in range(3):  # each success clears the email's count and gives its address hit back
        assert (await sign_in(http, email, PASSWORD)).status_code == 303
    assert (await sign_in(http, email, "typo")).status_code == 401  # the address's fifth
    assert (await sign_in(http, email, PASSWORD)).status_code == 429


async def test_an_email_may_sign_in_again_once_its_window_has_passed_on_the_clock(
    pool: asyncpg.Pool, merchant: NewMerchant, settings: Settings
) -> None:
    """The per-email sign-in window is measured on the injected clock: moving a FakeClock
    past it (nothing sleeps) lets the email in again."""
    email = f"window-{uuid.uuid4().hex[:8]}@example.com"
    await create_user(pool, merchant_id=merchant.id, email=email, role="viewer", password=PASSWORD)
    clock = FakeClock()
    deps = build_deps(pool, settings, clock=clock)

    async def browser() -> httpx.AsyncClient:
        # A fresh app each time, so only the email's counter (in the database) carries over.
        transport = httpx.ASGITransport(app=create_app(settings, deps=deps))
        return httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL)

    async with await browser() as http:
        for _ in range(5):
            assert (await sign_in(http, email, "typo")).status_code == 401
    async with await browser() as http:
        assert (await sign_in(http, email, PASSWORD)).status_code == 429
    clock.advance(timedelta(minutes=14))
    async with await browser() as http:
        assert (await sign_in(http, email, PASSWORD)).status_code == 429  # still in the window
    clock.advance(timedelta(minutes=16))
    async with await browser() as http:
        assert (await sign_in(http, email, PASSWORD)).status_code == 303
    await deps.connectors.aclose()
