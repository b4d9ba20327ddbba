"""The 4000002500003155 card: requires_action, the simulator's hosted page, and the return."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from tests.conftest import Api, card
from tests.integration.payment_builders import THREE_DS_CARD


async def _start(api: Api, capture_method: str = "automatic") -> dict[str, object]:
    response = await api.post(
        "/v1/payments",
        {
            "amount": 4200,
            "currency": "ZAR",
            "confirm": True,
            "capture_method": capture_method,
            "payment_method_data": card(THREE_DS_CARD),
            "return_url": "https://shop.test/return?order=9",
        },
    )
    assert response.status_code == 200, response.text
    payment: dict[str, object] = response.json()
    assert payment["status"] == "requires_action"
    return payment


async def _decide(
    client: httpx.AsyncClient, payment: dict[str, object], decision: str
) -> httpx.Response:
    next_action = payment["next_action"]
    assert isinstance(next_action, dict)
    url = urlsplit(next_action["redirect_to_url"]["url"])
    assert next_action["redirect_to_url"]["return_url"] == "https://shop.test/return?order=9"
    page = await client.get(url.path)
    assert page.status_code == 200
    assert "Approve" in page.text and "Deny" in page.text and "42.00 ZAR" in page.text
    decided = await client.post(
        url.path,
        content=f"decision={decision}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert decided.status_code == 303
    back = urlsplit(decided.headers["location"])
    assert back.path == f"/payments/{payment['id']}/return"
    return await client.get(back.path)


@pytest.mark.parametrize(
    ("capture_method", "final"), [("automatic", "succeeded"), ("manual", "requires_capture")]
)
async def test_approve_completes_and_returns_to_merchant(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool, capture_method: str, final: str
) -> None:
    payment = await _start(api, capture_method)
    landed = await _decide(client, payment, "approve")
    assert landed.status_code == 303
    target = urlsplit(landed.headers["location"])
    assert (target.netloc, target.path) == ("shop.test", "/return")
    assert parse_qs(target.query) == {
        "order": ["9"],
        "payment": [payment["id"]],
        "redirect_status": ["succeeded"],
    }
    after = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert after["status"] == final
    assert after["next_action"] is None
    events = await pool.fetch(
        "SELECT type FROM events WHERE object_id = $1 ORDER BY id", payment["id"]
    )
    assert [e["type"] for e in events][-2:] == ["payment.requires_action", f"payment.{final}"]
    # Visiting the return URL again changes nothing and emits nothing.
    again = await client.get(f"/payments/{payment['id']}/return")
    assert again.status_code == 303
    assert await pool.fetchval(
        "SELECT count(*) FROM events WHERE object_id = $1", payment["id"]
    ) == len(events)


async def test_deny_returns_to_requires_payment_method(api: Api, client: httpx.AsyncClient) -> None:
    payment = await _start(api)
    landed = await _decide(client, payment, "deny")
    assert parse_qs(urlsplit(landed.headers["location"]).query)["redirect_status"] == ["failed"]
    after = (await api.get(f"/v1/payments/{payment['id']}")).json()
    assert after["status"] == "requires_payment_method"
    assert after["last_payment_error"]["code"] == "authentication_failed"


async def test_cancel_during_authentication_voids_the_challenge(
    api: Api, client: httpx.AsyncClient
) -> None:
    payment = await _start(api)
    assert (await api.post(f"/v1/payments/{payment['id']}/cancel")).json()["status"] == "canceled"
    landed = await _decide_after_cancel(client, payment)
    assert landed.status_code == 303
    assert (await api.get(f"/v1/payments/{payment['id']}")).json()["status"] == "canceled"


async def _decide_after_cancel(
    client: httpx.AsyncClient, payment: dict[str, object]
) -> httpx.Response:
    next_action = payment["next_action"]
    assert isinstance(next_action, dict)
    path = urlsplit(next_action["redirect_to_url"]["url"]).path
    page = await client.get(path)
    assert "already complete" in page.text
    decided = await client.post(
        path,
        content="decision=approve",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return await client.get(urlsplit(decided.headers["location"]).path)


async def test_return_without_return_url_renders_a_result_page(
    api: Api, client: httpx.AsyncClient
) -> None:
    created = (
        await api.post(
            "/v1/payments",
            {
                "amount": 4200,
                "currency": "USD",
                "confirm": True,
                "payment_method": "pm_card_authenticationRequired",
            },
        )
    ).json()
    path = urlsplit(created["next_action"]["redirect_to_url"]["url"]).path
    decided = await client.post(
        path,
        content="decision=approve",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    page = await client.get(urlsplit(decided.headers["location"]).path)
    assert page.status_code == 200
    assert "Payment succeeded" in page.text
