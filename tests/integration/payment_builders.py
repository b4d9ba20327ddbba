"""Put a payment into any status through the public API."""

from __future__ import annotations

from typing import Any

import httpx

from paygrid.dependencies import Deps
from tests.conftest import SUCCESS_CARD, Api, card

THREE_DS_CARD = "4000002500003155"


async def payment_in(api: Api, deps: Deps, status: str) -> dict[str, Any]:
    """Create a payment and drive it to ``status``."""
    base: dict[str, Any] = {
        "amount": 5000,
        "currency": "USD",
        "return_url": "https://shop.test/done",
    }
    if status == "requires_payment_method":
        body = base
    elif status == "requires_confirmation":
        body = {**base, "payment_method": "pm_card_visa"}
    elif status == "requires_action":
        body = {**base, "confirm": True, "payment_method_data": card(THREE_DS_CARD)}
    elif status == "requires_capture":
        body = {
            **base,
            "confirm": True,
            "capture_method": "manual",
            "payment_method": "pm_card_visa",
        }
    elif status == "succeeded":
        body = {**base, "confirm": True, "payment_method_data": card(SUCCESS_CARD)}
    elif status == "processing":
        deps.connectors.simulator.failure_mode = "timeout"
        try:
            response = await api.post(
                "/v1/payments", {**base, "confirm": True, "payment_method": "pm_card_visa"}
            )
        finally:
            deps.connectors.simulator.failure_mode = "none"
        return _ok(response, status)
    elif status == "canceled":
        created = _ok(await api.post("/v1/payments", base), "requires_payment_method")
        return _ok(await api.post(f"/v1/payments/{created['id']}/cancel"), "canceled")
    else:
        raise ValueError(status)
    return _ok(await api.post("/v1/payments", body), status)


def _ok(response: httpx.Response, status: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    payment: dict[str, Any] = response.json()
    assert payment["status"] == status, payment
    return payment
