"""Browser tests: Debian's Chromium, driven by Playwright, against a real ``paygrid serve
--demo`` process on a scratch database, with its worker in-process so webhooks go out.

One server and one Chromium serve every test here, and stop once the last one has run (not at
the end of the session: an idle server would hold database connections the rest of the
suite needs). Each test gets a fresh browser context (no cookies or storage shared). Without Chromium or Playwright every test here
is skipped, saying which is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest

from paygrid.db import engine
from tests.conftest import ROOT, auth, scratch_database
from tests.integration.test_worker_process import serving
from tests.integration.webhook_receiver import Receiver, receiver
from tests.integration.worker_harness import eventually

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = Path(os.environ.get("PAYGRID_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# Root in a container has no user namespaces for Chromium's sandbox; /dev/shm may be tiny.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage"]
START_SECONDS = 60.0  # a bound on a broken start, not a measure of a working one


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "browser tests need the playwright package (a dev dependency: make test installs it)"
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return (
            f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium, "
            "or set PAYGRID_TEST_CHROMIUM to a Chromium binary)"
        )
    return None


MISSING = _missing()


class _Unavailable(pytest.Module):
    """A test module that is reported as skipped instead of imported (it imports playwright)."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        pytest.skip(MISSING or "")


def pytest_pycollect_makemodule(
    module_path: Path, parent: pytest.Collector
) -> pytest.Module | None:
    if MISSING:
        return _Unavailable.from_parent(parent, path=module_path)
    return None


@dataclass(frozen=True)
class DemoServer:
    """A running ``paygrid serve --demo``, its demo merchant's test keys and the demo
    dashboard user's sign-in."""

    url: str
    database_url: str
    merchant_id: str
    secret_key: str
    dashboard_email: str
    dashboard_password: str

    def api(self) -> httpx.AsyncClient:
        """An API client authenticated with the demo merchant's test secret key."""
        return httpx.AsyncClient(base_url=self.url, headers=auth(self.secret_key), timeout=10)

    async def get(self, path: str) -> dict[str, Any]:
        """An API object, as the demo merchant sees it."""
        async with self.api() as api:
            response = await api.get(path)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(scope="package")
def browser_database(server_url: str) -> Iterator[str]:
    """An empty database of its own: serve migrates it, and it is dropped afterwards."""
    with scratch_database(server_url, "paygrid_browser") as url:
        yield url


@pytest.fixture(scope="package")
async def demo_server(
    browser_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DemoServer]:
    data_dir = tmp_path_factory.mktemp("demo")
    env = {
        "PAYGRID_WORKER_IN_PROCESS": "true",
        # A handful of requests at a time: small pools leave the shared server's connections
        # to the rest of the suite.
        "PAYGRID_DB_POOL_SIZE": "8",
        "PAYGRID_WORKER_CONCURRENCY": "4",
        # The webhook receiver listens on loopback, which endpoints may use only when allowed.
        "PAYGRID_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    }
    demo_serve = serving(
        ["serve", "--demo"], browser_database, data_dir, deadline=START_SECONDS, **env
    )
    async with demo_serve as (url, process):
        demo = json.loads((data_dir / "demo.json").read_text())
        dashboard = json.loads((data_dir / "demo_dashboard.json").read_text())
        yield DemoServer(
            url=url,
            database_url=browser_database,
            merchant_id=demo["id"],
            secret_key=demo["secret_key"],
            dashboard_email=dashboard["email"],
            dashboard_password=dashboard["password"],
        )
        process.send_signal(signal.SIGTERM)  # stop gracefully: the worker marks itself stopped
        process.wait(timeout=30)


@pytest.fixture(scope="package")
async def demo_pool(demo_server: DemoServer) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the server's database, for setting up what a test needs (dashboard users)."""
    created = await engine.create_pool(demo_server.database_url, 2)
    yield created
    await created.close()


@pytest.fixture(scope="package")
async def webhooks(demo_server: DemoServer) -> AsyncIterator[Receiver]:
    """A receiver subscribed (test mode, loopback URL) to every event of the demo merchant."""
    async with receiver() as hooks, demo_server.api() as api:
        created = await api.post(
            "/v1/webhook_endpoints", json={"url": hooks.url, "enabled_events": ["*"]}
        )
        assert created.status_code == 200, created.text
        yield hooks


def _events(hooks: Receiver) -> list[dict[str, Any]]:
    """The events delivered so far, parsed."""
    return [json.loads(received.body) for received in hooks.received]


async def webhook_event(hooks: Receiver, event_type: str, **fields: str) -> dict[str, Any]:
    """Wait for an ``event_type`` event whose object has these ``fields`` values to arrive,
    and return it."""

    def matching() -> list[dict[str, Any]]:
        return [
            event
            for event in _events(hooks)
            if event["type"] == event_type
            and all(event["data"]["object"].get(k) == v for k, v in fields.items())
        ]

    async def arrived() -> bool:
        return bool(matching())

    await eventually(arrived, deadline=15)
    return matching()[0]


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for the browser tests (Debian's, never a downloaded one)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(
    browser: Browser, demo_server: DemoServer, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """A page in a fresh browser context whose relative URLs go to the demo server. A test
    that fails leaves a screenshot of where it stopped."""
    context = await browser.new_context(base_url=demo_server.url)
    context.set_default_timeout(10_000)
    opened = await context.new_page()
    yield opened
    report = getattr(request.node, "call_report", None)
    if report is not None and report.failed:
        await screenshot(opened, f"FAILED-{request.node.name}")
    await context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.call_report = report  # type: ignore[attr-defined]  # read by the page fixture
    return report


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG as test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


def unique(prefix: str) -> str:
    """A value no other test uses (an email, an order number)."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"
