"""The dashboard's catalog pages over HTTP: products listed and shown with their prices,
created and archived through the same use cases as the API (with their events and audit
actor), refused for roles without the write scopes and for forms without the CSRF token."""

from __future__ import annotations

import html
import re

import asyncpg

from tests.conftest import Api
from tests.integration import test_dashboard as dashboard_tests
from tests.integration.test_dashboard import Login, csrf_of, post_form

# The signed-in clients of the dashboard's own tests, shared as fixtures by name.
new_client = dashboard_tests.new_client
login = dashboard_tests.login


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


async def test_an_admin_creates_a_product_and_prices_and_archives_them(
    login: Login, api: Api, pool: asyncpg.Pool
) -> None:
    http, user = await login("admin")
    created = await post_form(
        http, "/dashboard/products", "/dashboard/products", {"name": "Gold plan"}
    )
    assert created.status_code == 303, created.text
    product_page = created.headers["location"].split("?")[0]
    product_id = product_page.rsplit("/", 1)[1]
    assert product_id.startswith("prod_")
    assert (await api.get(f"/v1/products/{product_id}")).json()["name"] == "Gold plan"

    monthly = await post_form(
        http,
        product_page,
        "/dashboard/prices",
        {
            "product": product_id,
            "amount": "1.500",
            "currency": "KWD",
            "interval": "month",
            "interval_count": "3",
            "lookup_key": "gold_q",
        },
    )
    assert monthly.status_code == 303, monthly.text
    once = await post_form(
        http,
        product_page,
        "/dashboard/prices",
        {"product": product_id, "amount": "2000", "currency": "JPY", "interval": ""},
    )
    assert once.status_code == 303, once.text
    listed = (await api.get("/v1/prices", product=product_id)).json()["data"]
    shapes = {(p["currency"], p["unit_amount"], p["type"]) for p in listed}
    assert shapes == {("KWD", 1500, "recurring"), ("JPY", 2000, "one_time")}
    quarterly = next(p for p in listed if p["currency"] == "KWD")
    assert quarterly["recurring"]["interval_count"] == 3

    page = _text((await http.get(product_page)).text)
    assert "1.500 KWD" in page and "every 3 months" in page and "2000 JPY" in page
    archived = await post_form(
        http, product_page, f"/dashboard/prices/{quarterly['id']}/active", {"active": "false"}
    )
    assert archived.status_code == 303
    assert (await api.get(f"/v1/prices/{quarterly['id']}")).json()["active"] is False
    await post_form(
        http, product_page, f"/dashboard/products/{product_id}/active", {"active": "false"}
    )
    assert (await api.get(f"/v1/products/{product_id}")).json()["active"] is False
    listing = _text((await http.get("/dashboard/products?active=false")).text)
    assert product_id in listing and "Archived" in listing
    assert "Recurring" in (await http.get("/dashboard/prices?type=recurring")).text

    actors = await pool.fetch(
        "SELECT DISTINCT actor FROM audit_log WHERE object_id = ANY($1::text[])",
        [product_id, quarterly["id"]],
    )
    assert {r["actor"] for r in actors} == {f"dashboard:{user.id}"}
    events = await pool.fetch(
        "SELECT type FROM events WHERE object_id = $1 ORDER BY id", quarterly["id"]
    )
    assert [e["type"] for e in events] == ["price.created", "price.updated"]


async def test_an_invalid_price_form_shows_why_and_creates_nothing(login: Login, api: Api) -> None:
    http, _ = await login("admin")
    product_id = (await api.post("/v1/products", {"name": "Mug"})).json()["id"]
    page = f"/dashboard/products/{product_id}"
    refused = await post_form(
        http,
        page,
        "/dashboard/prices",
        {
            "product": product_id,
            "amount": "5",
            "currency": "USD",
            "interval": "week",
            "interval_count": "53",
        },
    )
    assert refused.status_code == 400
    assert "one year" in html.unescape(refused.text)
    assert (await api.get("/v1/prices", product=product_id)).json()["data"] == []


async def test_roles_without_write_scopes_only_read_the_catalog(login: Login, api: Api) -> None:
    product_id = (await api.post("/v1/products", {"name": "Mug"})).json()["id"]
    http, _ = await login("viewer")
    page = await http.get(f"/dashboard/products/{product_id}")
    assert page.status_code == 200 and "Mug" in page.text
    assert "cannot create prices" in page.text and "cannot change products" in page.text
    assert 'href="/dashboard/products"' in page.text  # in the navigation
    token = csrf_of(page.text)
    refused = await http.post("/dashboard/products", data={"csrf_token": token, "name": "Sneaky"})
    assert refused.status_code == 403 and "products:write" in refused.text
    refused = await http.post(
        f"/dashboard/products/{product_id}/active", data={"csrf_token": token, "active": "false"}
    )
    assert refused.status_code == 403
    assert (await api.get(f"/v1/products/{product_id}")).json()["active"] is True
    operator, _ = await login("operator")
    assert (await operator.get("/dashboard/products")).status_code == 403
    assert 'href="/dashboard/products"' not in (await operator.get("/dashboard")).text


async def test_catalog_forms_need_the_csrf_token(login: Login, api: Api) -> None:
    http, _ = await login("admin")
    refused = await http.post("/dashboard/products", data={"name": "No token"})
    assert refused.status_code == 403
    assert (await api.get("/v1/products")).json()["data"] == []
