"""Docs that work with no network: /docs and /redoc load only assets paygrid serves itself,
the guides render at /docs/<name>, every error's doc_url lands on its code's row, and the
landing page at / says what is running and where everything is."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from paygrid.app import create_app
from paygrid.config import Settings
from paygrid.demo import DemoMerchant, _save
from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant
from tests.conftest import TEST_BASE_URL, auth

ASSET_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


def _references(html: str) -> list[str]:
    return ASSET_REFERENCE.findall(html)


@pytest.mark.parametrize(("page", "script"), [("/docs", "SwaggerUIBundle"), ("/redoc", "Redoc")])
async def test_reference_pages_load_only_local_assets(
    client: httpx.AsyncClient, page: str, script: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    references = _references(response.text)
    assert any(ref.endswith(".js") for ref in references), references
    for reference in references:
        # Local means a path on this server: no scheme, no host, no protocol-relative URL.
        parts = urlsplit(reference)
        assert not parts.scheme and not parts.netloc, reference
        asset = await client.get(reference)
        assert asset.status_code == 200, reference
        assert len(asset.content) > 1000, reference
    scripts = [ref for ref in references if ref.endswith(".js")]
    bodies = [(await client.get(ref)).text for ref in scripts]
    assert any(script in body for body in bodies)
    # The browser is told the same: nothing may load from another origin.
    policy = response.headers["content-security-policy"]
    assert "http" not in policy and "script-src 'self'" in policy


async def test_assets_have_their_types_and_unknown_ones_are_404(client: httpx.AsyncClient) -> None:
    css = await client.get("/docs/assets/swagger-ui.css")
    assert css.headers["content-type"].startswith("text/css")
    js = await client.get("/docs/assets/redoc.standalone.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert (await client.get("/docs/assets/..%2Fcore.py")).status_code == 404
    assert (await client.get("/docs/assets/secrets.txt")).status_code == 404


async def test_guides_render_with_anchors_and_local_links(client: httpx.AsyncClient) -> None:
    guide = await client.get("/docs/api")
    assert guide.status_code == 200
    assert '<h2 id="errors">Errors</h2>' in guide.text
    assert 'id="checkout-sessions"' in guide.text
    assert 'href="checkout#' in guide.text or 'href="checkout"' in guide.text
    assert (await client.get("/docs/checkout")).status_code == 200
    stripe = await client.get("/docs/providers/stripe")
    assert stripe.status_code == 200 and 'href="../routing' in stripe.text
    for missing in ("/docs/no-such-guide", "/docs/../pyproject", "/docs/providers/../../README"):
        assert (await client.get(missing)).status_code == 404, missing


async def test_every_error_carries_a_doc_url_that_lands_on_its_code(
    client: httpx.AsyncClient,
) -> None:
    guide = (await client.get("/docs/api")).text
    for response in (
        await client.get("/v1/payments"),  # no key
        await client.get("/v1/payments", headers=auth("sk_test_nope")),
        await client.get("/v1/no_such_route"),
    ):
        error = response.json()["error"]
        url = urlsplit(error["doc_url"])
        assert f"{url.scheme}://{url.netloc}" == TEST_BASE_URL  # PAYGRID_PUBLIC_URL
        assert url.path == "/docs/api" and url.fragment == error["code"]
        assert f'<tr id="{error["code"]}">' in guide


@pytest.fixture
async def demo_client(
    deps: Deps, settings: Settings, merchant: NewMerchant, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
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


async def test_landing_page_links_everything(client: httpx.AsyncClient) -> None:
    home = await client.get("/")
    assert home.status_code == 200
    assert "paygrid 0.1.0 is running" in home.text
    links = set(_references(home.text))
    assert {"/docs", "/redoc", "/docs/api", "/dashboard", "/healthz", "/readyz"} <= links
    assert "/demo/store" not in links  # only with serve --demo
    assert f"curl {TEST_BASE_URL}/v1/payments" in home.text
    assert "Bearer sk_test_..." in home.text
    for link in links - {"/dashboard"}:
        assert (await client.get(link.split("#")[0])).status_code == 200, link


async def test_landing_page_shows_the_demo_key_to_this_machine_only(
    demo_client: httpx.AsyncClient, merchant: NewMerchant
) -> None:
    key = merchant.key("secret", False)
    home = await demo_client.get("/")
    assert "/demo/store" in _references(home.text)
    assert f"Bearer {key}" in home.text
    assert home.headers["cache-control"] == "no-store"
    # The same page to a browser elsewhere: a placeholder, never the key.
    app = demo_client._transport.app  # type: ignore[attr-defined]
    remote = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=remote, base_url=TEST_BASE_URL) as http:
        page = await http.get("/")
    assert page.status_code == 200
    assert key not in page.text and "Bearer sk_test_..." in page.text
