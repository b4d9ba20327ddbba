"""The dashboard's invoice page links to the invoice's hosted page and PDF once it has them
(a finalized invoice), and not while it is a draft."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from tests.conftest import Api
from tests.integration import test_dashboard as dashboard_tests
from tests.integration.test_dashboard import Login
from tests.integration.test_dashboard_billing import _customer_with_card, _draft_invoice, ok

# The signed-in clients of the dashboard's own tests, shared as fixtures by name.
new_client = dashboard_tests.new_client
login = dashboard_tests.login


def links(page: str) -> dict[str, str]:
    """The page's links, by their text."""
    found = re.findall(r'<a href="([^"]+)">([^<]+)</a>', page)
    return {html.unescape(text): html.unescape(href) for href, text in found}


async def test_the_invoice_page_links_to_the_hosted_page_and_pdf_once_finalized(
    login: Login, api: Api
) -> None:
    customer, _ = await _customer_with_card(api)
    invoice = await _draft_invoice(api, customer)
    http, _ = await login("viewer")
    page = f"/dashboard/invoices/{invoice['id']}"
    draft = await http.get(page)
    assert draft.status_code == 200, draft.text
    assert "Hosted invoice page" not in draft.text and "Download the PDF" not in draft.text

    final = ok(await api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    shown = links((await http.get(page)).text)
    assert shown["Hosted invoice page"] == final["hosted_invoice_url"]
    assert shown["Download the PDF"] == final["invoice_pdf"]
    hosted = await http.get(urlsplit(shown["Hosted invoice page"]).path)
    assert hosted.status_code == 200 and final["number"] in hosted.text
    pdf = await http.get(urlsplit(shown["Download the PDF"]).path)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
