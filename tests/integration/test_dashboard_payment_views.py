"""The dashboard's payment views over HTTP: a payment's card, description, metadata, customer
and refunds; refund states in the list and its filter; human status labels; the overview's
figures for today, one currency at a time."""

from __future__ import annotations

import html
import re
from typing import Any

from tests.conftest import Api, confirmed_payment
from tests.integration import test_dashboard as dashboard_tests
from tests.integration.test_dashboard import Login

# The signed-in clients of the dashboard's own tests, shared as fixtures by name.
new_client = dashboard_tests.new_client
login = dashboard_tests.login


async def _payment(api: Api, **fields: Any) -> dict[str, Any]:
    response = await api.post("/v1/payments", confirmed_payment(**fields))
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def _refund(api: Api, payment: dict[str, Any], amount: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"payment": payment["id"]}
    if amount is not None:
        body["amount"] = amount
    response = await api.post("/v1/refunds", body)
    assert response.status_code == 200, response.text
    refund: dict[str, Any] = response.json()
    return refund


def _text(page: str) -> str:
    """The page's text, tags dropped and whitespace folded, for plain-text assertions."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _facts(page: str) -> dict[str, str]:
    """The detail page's ``<dt>``/``<dd>`` pairs, as text."""
    pairs = re.findall(r"<dt>(.*?)</dt>\s*<dd>(.*?)</dd>", page, re.S)
    return {_text(k).strip(): _text(v).strip() for k, v in pairs}


async def test_the_detail_page_shows_card_description_metadata_customer_and_refunds(
    login: Login, api: Api
) -> None:
    customer = (await api.post("/v1/customers", {"email": "ada@example.com"})).json()
    payment = await _payment(
        api,
        amount=1000,
        customer=customer["id"],
        description="2 x mug",
        metadata={"order_number": "1043"},
    )
    refund = await _refund(api, payment, 300)
    method = (await api.get(f"/v1/payment_methods/{payment['payment_method']}")).json()
    http, _ = await login("viewer")
    page = (await http.get(f"/dashboard/payments/{payment['id']}")).text
    facts = _facts(page)
    expiry = f"{method['card']['exp_month']:02d}/{method['card']['exp_year']}"
    assert facts["Card"] == f"Visa •••• 4242, expires {expiry}"
    assert facts["Description"] == "2 x mug"
    assert facts["Status"] == "Partially refunded"
    assert facts["Refunded"] == "3.00 USD"
    assert f'<a href="/dashboard/customers/{customer["id"]}">' in page
    assert "ada@example.com" in facts["Customer"]
    metadata = re.search(r"<table><caption>Metadata</caption>.*?</table>", page, re.S)
    assert metadata is not None and "order_number 1043" in _text(metadata.group(0))
    refunds = re.search(r"<caption>Refunds of this payment</caption>.*?</table>", page, re.S)
    assert refunds is not None
    assert f"{refund['id']} 3.00 USD Succeeded" in _text(refunds.group(0))


async def test_refund_states_show_in_the_list_and_the_status_filter_finds_them(
    login: Login, api: Api
) -> None:
    full = await _payment(api, reference="full")
    part = await _payment(api, reference="part")
    kept = await _payment(api, reference="kept")
    await _refund(api, full)
    await _refund(api, part, 100)
    http, _ = await login("viewer")

    async def found(status: str) -> set[str]:
        page = (await http.get("/dashboard/payments", params={"status": status})).text
        return {p["id"] for p in (full, part, kept) if p["id"] in page}

    assert await found("refunded") == {full["id"]}
    assert await found("partially_refunded") == {part["id"]}
    assert await found("succeeded") == {kept["id"]}
    listing = _text((await http.get("/dashboard/payments")).text)
    assert f"{full['id']} 10.00 USD Refunded" in listing
    assert f"{part['id']} 10.00 USD Partially refunded" in listing
    assert f"{kept['id']} 10.00 USD Succeeded" in listing
    page = (await http.get("/dashboard/payments")).text
    assert '<option value="partially_refunded">Partially refunded</option>' in page
    assert '<option value="refunded">Refunded</option>' in page


async def test_statuses_show_human_labels_not_enum_names(login: Login, api: Api) -> None:
    held = await _payment(api, capture_method="manual")
    http, _ = await login("viewer")
    listing = (await http.get("/dashboard/payments")).text
    assert ">Requires capture<" in listing and ">requires_capture<" not in listing
    assert '<option value="requires_capture">Requires capture</option>' in listing
    detail = (await http.get(f"/dashboard/payments/{held['id']}")).text
    assert _facts(detail)["Status"] == "Requires capture"
    overview = (await http.get("/dashboard")).text
    assert ">requires_capture<" not in overview and "Requires capture" in overview


async def test_the_overview_leads_with_today_per_currency(login: Login, api: Api) -> None:
    paid = await _payment(api, amount=2500)
    await _payment(api, amount=1000)
    declined = await api.post("/v1/payments", confirmed_payment("pm_card_chargeDeclined"))
    assert declined.status_code == 402, declined.text
    await _payment(api, amount=300, currency="JPY")
    await _refund(api, paid, 400)
    http, _ = await login("viewer")
    page = (await http.get("/dashboard")).text
    first = re.search(r"<section.*?</section>", page, re.S)
    assert first is not None and '<h2 id="today-heading">Today</h2>' in first.group(0)
    rows = {
        code: [_text(cell).strip() for cell in re.findall(r"<td>(.*?)</td>", cells)]
        for code, cells in re.findall(r'<tr><th scope="row">(\w+)</th>(.*?)</tr>', first.group(0))
    }
    # Volume, payments received, success rate of authorizations, refunded, refunds: each
    # currency on its own row, in its own units.
    assert rows == {
        "JPY": ["300 JPY", "1", "100% (1 of 1)", "0 JPY", "0"],
        "USD": ["35.00 USD", "2", "67% (2 of 3)", "4.00 USD", "1"],
    }
