"""The dashboard's Reconciliation pages in Chromium: the runs list and a run with its
discrepancies pass axe at both widths, and the demo admin resolves an open discrepancy with
a note through the page's form."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from playwright.async_api import Page, expect

from paygrid.clock import SYSTEM_CLOCK
from paygrid.ids import new_id
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import DemoServer
from tests.browser.test_dashboard_flows import sign_in


async def _run_with_a_discrepancy(demo_server: DemoServer) -> tuple[str, str]:
    """A completed run of the demo merchant with one open discrepancy (as a run stores
    them; the runs themselves are tested in tests/integration/test_reconciliation.py)."""
    async with demo_server.api() as api:
        made = await api.post(
            "/v1/connector_accounts",
            json={"provider": "simulator", "name": "Reconciled", "currencies": ["NGN"]},
        )
        assert made.status_code == 200, made.text
    account = made.json()["id"]
    conn = await asyncpg.connect(demo_server.database_url)
    try:
        now = SYSTEM_CLOCK.now()
        run_id, found_id = new_id("recon"), new_id("rdis")
        await conn.execute(
            "INSERT INTO reconciliation_runs (id, merchant_id, livemode, connector_account_id,"
            " window_start, window_end, heal, trigger, status, objects_compared, counts,"
            " created_at, completed_at, updated_at) VALUES ($1, $2, false, $3, $4, $5, false,"
            " 'api', 'completed', 12, '{\"amount_mismatch\": 1}', $5, $5, $5)",
            run_id,
            demo_server.merchant_id,
            account,
            now - timedelta(days=1),
            now,
        )
        await conn.execute(
            "INSERT INTO reconciliation_discrepancies (id, merchant_id, livemode,"
            " connector_account_id, run_id, type, status, object_key, provider_reference,"
            " currency, paygrid_value, provider_value, description, created_at, updated_at)"
            " VALUES ($1, $2, false, $3, $4, 'amount_mismatch', 'open', 'pay_x', 'ref_x',"
            " 'NGN', '300000', '310000', 'the charged amount differs', $5, $5)",
            found_id,
            demo_server.merchant_id,
            account,
            run_id,
            now,
        )
        return run_id, found_id
    finally:
        await conn.close()


async def test_reconciliation_pages_are_accessible_and_resolve_works(
    page: Page, demo_server: DemoServer
) -> None:
    run_id, _ = await _run_with_a_discrepancy(demo_server)
    await sign_in(page, demo_server.dashboard_email, demo_server.dashboard_password, "admin")
    await page.get_by_role("link", name="Reconciliation").click()
    await expect(page.get_by_role("link", name=run_id)).to_be_visible()
    await assert_accessible(page, "/dashboard/reconciliation")
    await page.get_by_role("link", name=run_id).click()
    await expect(page.get_by_text("the charged amount differs")).to_be_visible()
    await assert_accessible(page, f"/dashboard/reconciliation/{run_id}")
    await page.get_by_label("Note").fill("Confirmed with Paystack support")
    await page.get_by_role("button", name="Resolve").click()
    await expect(page.get_by_role("status")).to_contain_text("Resolved")
    await expect(page.get_by_text("resolved: Confirmed with Paystack support")).to_be_visible()
    await assert_accessible(page, f"/dashboard/reconciliation/{run_id} after resolving")
