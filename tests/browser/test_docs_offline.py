"""The API reference works with no network: Chromium loads /docs (Swagger UI) and /redoc with
every request to another host blocked, and they still render paygrid's operations."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, Route, expect

from tests.browser.conftest import DemoServer


async def _block_other_hosts(page: Page, server: DemoServer) -> list[str]:
    """Abort every request that leaves the server; return the list of what was tried."""
    tried: list[str] = []
    local = urlsplit(server.url).netloc

    async def route(route: Route) -> None:
        if urlsplit(route.request.url).netloc == local or route.request.url.startswith(
            ("data:", "blob:")
        ):
            await route.continue_()
        else:
            tried.append(route.request.url)
            await route.abort()

    await page.route("**/*", route)
    return tried


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_api_reference_renders_offline(
    page: Page, demo_server: DemoServer, path: str
) -> None:
    tried = await _block_other_hosts(page, demo_server)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(demo_server.url + path)
    # Swagger UI shows it as an operation, ReDoc as a heading (and in a folded menu).
    operation = page.locator("text=Create a payment >> visible=true").first
    await expect(operation).to_be_visible(timeout=20_000)
    assert tried == [], "the page tried to reach another host"
    assert errors == []


async def test_landing_page_leads_to_the_docs(page: Page, demo_server: DemoServer) -> None:
    tried = await _block_other_hosts(page, demo_server)
    await page.goto(demo_server.url + "/")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("is running")
    await expect(page.get_by_text(f"Bearer {demo_server.secret_key}")).to_be_visible()
    await page.get_by_role("link", name="Integration guide").click()
    await expect(page.get_by_role("heading", name="Errors", exact=True)).to_be_attached()
    assert tried == []
