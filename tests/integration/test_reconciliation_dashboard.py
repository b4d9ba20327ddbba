"""The dashboard's Reconciliation page: runs listed, a run with the discrepancies it found,
and the resolve action (CSRF-checked, with a note, audited as the dashboard user), refused
for a role without ``reconciliation:write``."""

from __future__ import annotations

import asyncpg
import httpx

from paygrid.dependencies import Deps
from tests.conftest import Api
from tests.fakes.paystack import FakeMerchant, PaystackFake
from tests.integration import test_dashboard as dashboard_tests
from tests.integration.test_dashboard import Login, post_form
from tests.integration.test_reconciliation import _discrepancies, _run
from tests.integration.test_settlements_paystack import _pay, _paystack_account

new_client = dashboard_tests.new_client
login = dashboard_tests.login


async def test_runs_and_discrepancies_are_shown_and_resolved_with_a_note(
    login: Login,
    api: Api,
    client: httpx.AsyncClient,
    deps: Deps,
    pool: asyncpg.Pool,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    account = await _paystack_account(api, paystack_fake, paystack_merchant)
    payment, reference = await _pay(api, client, paystack_merchant, 150_000)
    await paystack_merchant.inject("missing_charge", reference=reference)
    run = await _run(api, deps, account, heal=False)
    (found,) = await _discrepancies(api, run=run["id"])

    viewer_http, _ = await login("viewer")
    listing = await viewer_http.get("/dashboard/reconciliation")
    assert listing.status_code == 200 and run["id"] in listing.text
    assert 'href="/dashboard/reconciliation"' in listing.text  # the nav link
    run_page = await viewer_http.get(f"/dashboard/reconciliation/{run['id']}")
    assert "missing_at_provider" in run_page.text and payment in run_page.text
    assert "/resolve" not in run_page.text  # no write scope, no form
    refused = await post_form(
        viewer_http,
        f"/dashboard/reconciliation/{run['id']}",
        f"/dashboard/reconciliation/discrepancies/{found['id']}/resolve",
        {"note": "nope"},
    )
    assert refused.status_code == 403

    admin_http, admin = await login("admin")
    no_csrf = await admin_http.post(
        f"/dashboard/reconciliation/discrepancies/{found['id']}/resolve", data={"note": "x"}
    )
    assert no_csrf.status_code in (400, 403)
    assert (await _discrepancies(api, run=run["id"]))[0]["status"] == "open"
    resolved = await post_form(
        admin_http,
        f"/dashboard/reconciliation/{run['id']}",
        f"/dashboard/reconciliation/discrepancies/{found['id']}/resolve",
        {"note": "Customer paid by bank transfer"},
    )
    assert resolved.status_code == 303, resolved.text
    assert resolved.headers["location"].startswith(f"/dashboard/reconciliation/{run['id']}")
    (after,) = await _discrepancies(api, run=run["id"])
    assert (after["status"], after["resolution_note"]) == (
        "resolved",
        "Customer paid by bank transfer",
    )
    actor = await pool.fetchval(
        "SELECT actor FROM audit_log WHERE object_id = $1"
        " AND action = 'reconciliation_discrepancy.updated'",
        found["id"],
    )
    assert actor == f"dashboard:{admin.id}"
