"""``/v1/account`` (the merchant's time zone through the API): the authenticated merchant as
an account object; a valid IANA zone is stored with ``account.updated`` and an audit entry,
and moves the next daily reconciliation run to 06:00 local; an unknown zone is
``400 parameter_invalid`` changing nothing; the same zone again writes nothing; scopes are
``account:read``/``account:write``; a merchant only ever sees and changes its own."""

from __future__ import annotations

import html
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from paygrid.services.merchants import NewMerchant, issue_key
from tests.conftest import Api
from tests.integration import test_dashboard as dashboard_tests
from tests.integration.test_dashboard import Login, post_form

new_client = dashboard_tests.new_client
login = dashboard_tests.login
SETTINGS = "/dashboard/billing_settings"


async def _scoped(pool: asyncpg.Pool, merchant: NewMerchant, scopes: list[str]) -> str:
    issued = await issue_key(pool, merchant.id, "secret", False, scopes=scopes)
    return issued.secret


async def test_the_account_shows_and_changes_the_merchants_time_zone(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    shown = await api.get("/v1/account")
    assert shown.status_code == 200, shown.text
    created = await pool.fetchval("SELECT created_at FROM merchants WHERE id = $1", merchant.id)
    assert shown.json() == {
        "id": merchant.id,
        "object": "account",
        "name": merchant.name,
        "timezone": "UTC",
        "created": int(created.timestamp()),
        "livemode": False,
    }

    changed = await api.post("/v1/account", {"timezone": "Africa/Lagos"})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**shown.json(), "timezone": "Africa/Lagos"}
    assert (await api.get("/v1/account")).json()["timezone"] == "Africa/Lagos"
    stored = await pool.fetchval("SELECT timezone FROM merchants WHERE id = $1", merchant.id)
    assert stored == "Africa/Lagos"
    events = await pool.fetch(
        "SELECT type, livemode, data FROM events WHERE merchant_id = $1 AND object_id = $1",
        merchant.id,
    )
    assert [(e["type"], e["livemode"]) for e in events] == [("account.updated", False)]
    assert events[0]["data"]["object"]["timezone"] == "Africa/Lagos"
    audited = await pool.fetch(
        "SELECT actor, before, after FROM audit_log"
        " WHERE merchant_id = $1 AND object_id = $1 AND action = 'merchant.updated'",
        merchant.id,
    )
    assert len(audited) == 1 and audited[0]["actor"].startswith("api_key:")
    assert (audited[0]["before"]["timezone"], audited[0]["after"]["timezone"]) == (
        "UTC",
        "Africa/Lagos",
    )

    again = await api.post("/v1/account", {"timezone": "Africa/Lagos"})
    assert again.status_code == 200 and again.json()["timezone"] == "Africa/Lagos"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM events WHERE merchant_id = $1 AND object_id = $1", merchant.id
        )
        == 1
    )  # nothing changed: nothing sent

    for bad in ("Mars/Olympus", "africa/lagos", "", "+01:00"):
        refused = await api.post("/v1/account", {"timezone": bad})
        assert refused.status_code == 400, (bad, refused.text)
        error = refused.json()["error"]
        assert (error["code"], error["param"]) == ("parameter_invalid", "timezone"), error
    assert (await api.post("/v1/account", {"timezone": 7})).status_code == 400
    assert (await api.post("/v1/account", {"country": "NG"})).status_code == 400
    stored = await pool.fetchval("SELECT timezone FROM merchants WHERE id = $1", merchant.id)
    assert stored == "Africa/Lagos"


async def test_account_scopes_and_tenancy(
    api: Api,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    merchant: NewMerchant,
    other_merchant: NewMerchant,
) -> None:
    reader = Api(client, await _scoped(pool, merchant, ["account:read"]))
    assert (await reader.get("/v1/account")).status_code == 200
    refused = await reader.post("/v1/account", {"timezone": "Europe/Paris"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["missing_scope"] == "account:write"
    payments_only = Api(client, await _scoped(pool, merchant, ["payments:read"]))
    assert (await payments_only.get("/v1/account")).status_code == 403
    writer = Api(client, await _scoped(pool, merchant, ["account:write"]))
    assert (await writer.post("/v1/account", {"timezone": "Europe/Paris"})).status_code == 200

    other = Api(client, other_merchant.key("secret", livemode=False))
    theirs = (await other.get("/v1/account")).json()
    assert (theirs["id"], theirs["timezone"]) == (other_merchant.id, "UTC")
    live = Api(client, merchant.key("secret", livemode=True))
    mine_live = (await live.get("/v1/account")).json()
    assert (mine_live["timezone"], mine_live["livemode"]) == ("Europe/Paris", True)
    assert ZoneInfo(mine_live["timezone"]).key == "Europe/Paris"


async def test_the_dashboard_settings_page_shows_and_changes_the_time_zone(
    login: Login, api: Api, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    http, user = await login("admin")
    page = await http.get(SETTINGS)
    assert page.status_code == 200 and 'name="timezone" value="UTC"' in page.text
    saved = await post_form(http, SETTINGS, "/dashboard/account", {"timezone": "Asia/Tokyo"})
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"].endswith("notice=account_saved")
    assert (await api.get("/v1/account")).json()["timezone"] == "Asia/Tokyo"
    actor = await pool.fetchval(
        "SELECT actor FROM audit_log WHERE object_id = $1 AND action = 'merchant.updated'",
        merchant.id,
    )
    assert actor == f"dashboard:{user.id}"
    refused = await post_form(http, SETTINGS, "/dashboard/account", {"timezone": "Tokyo"})
    assert refused.status_code == 400
    assert "Unknown timezone 'Tokyo'" in html.unescape(refused.text)
    assert (await api.get("/v1/account")).json()["timezone"] == "Asia/Tokyo"

    viewer, _ = await login("viewer")
    shown = await viewer.get(SETTINGS)
    assert 'value="Asia/Tokyo"' in shown.text and "Save time zone" not in shown.text
    denied = await post_form(viewer, SETTINGS, "/dashboard/account", {"timezone": "UTC"})
    assert denied.status_code == 403
    assert (await api.get("/v1/account")).json()["timezone"] == "Asia/Tokyo"
