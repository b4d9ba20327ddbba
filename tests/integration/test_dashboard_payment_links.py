"""The dashboard's payment link pages over HTTP: support staff create a link from the form
(prices, quantities, limit, after-completion), its page shows the URL with a copy button,
an inline SVG QR code of the URL, and its completions; CSRF and roles are enforced."""

from __future__ import annotations

import html
import re

import asyncpg
import httpx
import segno

from tests.conftest import Api
from tests.integration import test_dashboard as dashboard_tests
from tests.integration.test_dashboard import Login, csrf_of, post_form
from tests.integration.test_payment_links import new_link, new_price, pay

new_client = dashboard_tests.new_client
login = dashboard_tests.login


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


async def test_support_staff_create_a_link_with_a_qr_code(
    login: Login, api: Api, pool: asyncpg.Pool
) -> None:
    once = await new_price(api, 1500)
    extra = await new_price(api, 250)
    http, user = await login("support")
    created = await post_form(
        http,
        "/dashboard/payment_links",
        "/dashboard/payment_links",
        {
            "price_0": once,
            "quantity_0": "2",
            "price_1": extra,
            "quantity_1": "1",
            "price_2": "",
            "limit": "10",
            "after_completion": "redirect",
            "redirect_url": "https://shop.example/thanks",
        },
    )
    assert created.status_code == 303, created.text
    page_path = created.headers["location"].split("?")[0]
    link_id = page_path.rsplit("/", 1)[1]
    link = (await api.get(f"/v1/payment_links/{link_id}")).json()
    assert [(i["price"]["id"], i["quantity"]) for i in link["line_items"]["data"]] == [
        (once, 2),
        (extra, 1),
    ]
    assert link["restrictions"]["completed_sessions"]["limit"] == 10
    assert link["after_completion"]["redirect"]["url"] == "https://shop.example/thanks"

    page = await http.get(page_path)
    assert page.status_code == 200
    assert f'value="{link["url"]}"' in page.text and 'id="copy-url"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    svg = re.search(r'<figure id="link-qr">(<svg.*?</svg>)', page.text, re.S)
    assert svg is not None and 'role="img"' in svg.group(1)
    # The same QR code segno makes for the URL: it encodes the link, nothing else.
    expected = segno.make(link["url"], error="m").svg_inline(scale=4, dark="#111827")
    path = re.search(r' d="([^"]+)"', expected)
    assert path is not None and path.group(1) in svg.group(1)
    script = await http.get("/dashboard/static/copy-link.js")
    assert script.status_code == 200 and "clipboard" in script.text

    actors = await pool.fetch("SELECT actor, action FROM audit_log WHERE object_id = $1", link_id)
    assert [(r["actor"], r["action"]) for r in actors] == [
        (f"dashboard:{user.id}", "payment_link.created")
    ]
    listing = _text((await http.get("/dashboard/payment_links")).text)
    assert link_id in listing and "0 of 10" in listing


async def test_the_link_page_lists_completions_and_deactivates(
    login: Login, api: Api, client: httpx.AsyncClient
) -> None:
    link = await new_link(api, await new_price(api, 700))
    paid = await pay(client, link)
    assert paid.status_code == 200, paid.text
    session = (await api.get("/v1/checkout_sessions")).json()["data"][0]
    http, _ = await login("admin")
    page_path = f"/dashboard/payment_links/{link['id']}"
    text = _text((await http.get(page_path)).text)
    assert session["id"] in text and session["payment"] in text and "ada@example.com" in text
    off = await post_form(http, page_path, f"{page_path}/active", {"active": "false"})
    assert off.status_code == 303
    assert (await api.get(f"/v1/payment_links/{link['id']}")).json()["active"] is False
    assert "Inactive" in _text((await http.get(page_path)).text)


async def test_forms_need_csrf_and_the_write_scope(login: Login, api: Api) -> None:
    price = await new_price(api)
    http, _ = await login("admin")
    refused = await http.post("/dashboard/payment_links", data={"price_0": price})
    assert refused.status_code == 403
    viewer, _ = await login("viewer")
    page = await viewer.get("/dashboard/payment_links")
    assert page.status_code == 200 and "cannot create payment links" in page.text
    refused = await viewer.post(
        "/dashboard/payment_links",
        data={"csrf_token": csrf_of(page.text), "price_0": price, "quantity_0": "1"},
    )
    assert refused.status_code == 403 and "payment_links:write" in refused.text
    assert (await api.get("/v1/payment_links")).json()["data"] == []


async def test_an_invalid_form_shows_why_and_creates_nothing(login: Login, api: Api) -> None:
    http, _ = await login("admin")
    monthly = await new_price(api, interval="month")
    once = await new_price(api)
    refused = await post_form(
        http,
        "/dashboard/payment_links",
        "/dashboard/payment_links",
        {"price_0": once, "quantity_0": "1", "price_1": monthly, "quantity_1": "1"},
    )
    assert refused.status_code == 400
    assert "all one-time, or all recurring" in html.unescape(refused.text)
    assert (await api.get("/v1/payment_links")).json()["data"] == []
