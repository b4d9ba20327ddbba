"""The tokens in the paths of capability pages (a hosted invoice page's ``/i/{token}``, a
billing portal link's ``/p/{token}``) never reach the request log: whoever reads the log
could otherwise open the page (the portal stores only the token's hash for that reason)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from paygrid.observability.paths import REDACTED, loggable_path
from tests.conftest import Api
from tests.integration.test_billing_portal import customer_with_card, new_portal
from tests.integration.test_hosted_invoices import open_invoice


def test_only_the_token_segment_is_redacted() -> None:
    assert loggable_path("/i/abcDEF_123-x/pdf") == f"/i/{REDACTED}/pdf"
    assert loggable_path("/p/tok/cards/return") == f"/p/{REDACTED}/cards/return"
    assert loggable_path("/v1/invoices/in_1") == "/v1/invoices/in_1"
    assert loggable_path("/l/slug") == "/l/slug"
    assert loggable_path("/invoices/i/x") == "/invoices/i/x"


async def test_page_tokens_stay_out_of_the_request_log(
    api: Api,
    client: httpx.AsyncClient,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    invoice = await open_invoice(api)
    page = urlsplit(str(invoice["hosted_invoice_url"])).path
    portal = urlsplit(str((await new_portal(api, await customer_with_card(api)))["url"])).path
    capfd.readouterr()
    for path in (page, f"{page}/pdf", portal):
        assert (await client.get(path)).status_code == 200, path
    logged = capfd.readouterr()
    everything_logged = logged.out + logged.err + caplog.text
    assert f"/i/{REDACTED}/pdf" in everything_logged  # proves the lines were captured
    for path in (page, portal):
        token = path.rsplit("/", 1)[1]
        assert token not in everything_logged, f"the token of {path} was logged"
