"""Every payment operation against every status, through the API: allowed transitions land
where the table says, forbidden ones get 409 naming the current status and change nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from paygrid.dependencies import Deps
from tests.conftest import SUCCESS_CARD, Api, card, confirmed_payment
from tests.integration.payment_builders import payment_in

STATUSES = [
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "succeeded",
    "canceled",
]
OPERATIONS: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
    # name: (path suffix, body, {allowed source status: resulting status})
    "confirm": ("confirm", {}, {"requires_confirmation": "succeeded"}),
    "confirm_with_method": (
        "confirm",
        {"payment_method": "pm_card_visa"},
        {"requires_payment_method": "succeeded", "requires_confirmation": "succeeded"},
    ),
    "capture": ("capture", {}, {"requires_capture": "succeeded"}),
    "cancel": (
        "cancel",
        {},
        {
            "requires_payment_method": "canceled",
            "requires_confirmation": "canceled",
            "requires_action": "canceled",
            "requires_capture": "canceled",
        },
    ),
}
CASES = [(op, status) for op in OPERATIONS for status in STATUSES]


@pytest.mark.parametrize(("operation", "status"), CASES)
async def test_operation_from_status(api: Api, deps: Deps, operation: str, status: str) -> None:
    payment = await payment_in(api, deps, status)
    suffix, body, allowed = OPERATIONS[operation]
    response = await api.post(f"/v1/payments/{payment['id']}/{suffix}", body)
    after = (await api.get(f"/v1/payments/{payment['id']}")).json()
    if status in allowed:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == allowed[status]
        assert after["status"] == allowed[status]
    else:
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "payment_invalid_state"
        assert f"status of {status}" in error["message"]
        assert after["status"] == status
        assert after["attempts"] == payment["attempts"]


async def test_concurrent_confirms_charge_once(api: Api, pool: asyncpg.Pool) -> None:
    created = (
        await api.post(
            "/v1/payments", {"amount": 700, "currency": "USD", "payment_method": "pm_card_visa"}
        )
    ).json()
    responses = await asyncio.gather(
        *[api.post(f"/v1/payments/{created['id']}/confirm") for _ in range(8)]
    )
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 1, codes
    assert set(codes) == {200, 409}
    charges = await pool.fetchval(
        "SELECT count(*) FROM simulator.charges WHERE idempotency_key IN"
        " (SELECT id FROM payment_attempts WHERE payment_id = $1)",
        created["id"],
    )
    assert charges == 1


async def test_concurrent_capture_and_cancel_never_both(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    for _ in range(5):
        payment = await payment_in(api, deps, "requires_capture")
        capture, cancel = await asyncio.gather(
            api.post(f"/v1/payments/{payment['id']}/capture"),
            api.post(f"/v1/payments/{payment['id']}/cancel"),
        )
        final = (await api.get(f"/v1/payments/{payment['id']}")).json()
        charge = await pool.fetchrow(
            "SELECT c.status FROM simulator.charges c JOIN payment_attempts a ON a.provider_reference = c.id"
            " WHERE a.payment_id = $1 AND a.operation = 'authorize'",
            payment["id"],
        )
        assert final["status"] in ("succeeded", "canceled")
        assert {capture.status_code, cancel.status_code} <= {200, 409}
        # paygrid's record agrees with the provider's: no captured money on a canceled payment
        expected = {"succeeded": "captured", "canceled": "voided"}[final["status"]]
        assert charge is not None
        assert charge["status"] == expected


@pytest.mark.parametrize(
    ("number", "code", "decline_code"),
    [
        ("4000000000000002", "card_declined", "generic_decline"),
        ("5061020283705678", "insufficient_funds", "insufficient_funds"),
        ("4000000000009995", "insufficient_funds", "insufficient_funds"),
        ("4000000000000069", "expired_card", "expired_card"),
        ("4000000000000127", "incorrect_cvc", "incorrect_cvc"),
    ],
)
async def test_declines(
    api: Api, pool: asyncpg.Pool, number: str, code: str, decline_code: str
) -> None:
    response = await api.post(
        "/v1/payments",
        {
            "amount": 1000,
            "currency": "NGN",
            "confirm": True,
            "payment_method_data": card(number),
        },
    )
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error",
        code,
        decline_code,
    )
    payment = (await api.get(f"/v1/payments/{error['payment_id']}")).json()
    assert payment["status"] == "requires_payment_method"
    assert payment["last_payment_error"]["code"] == code
    assert payment["payment_method"] is None
    assert payment["attempts"][-1]["status"] == "declined"
    assert payment["attempts"][-1]["error_code"] == code
    events = await pool.fetch(
        "SELECT type FROM events WHERE object_id = $1 ORDER BY id", payment["id"]
    )
    assert [e["type"] for e in events] == ["payment.created", "payment.payment_failed"]
    retried = await api.post(
        f"/v1/payments/{payment['id']}/confirm", {"payment_method_data": card(SUCCESS_CARD)}
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "succeeded"
    assert retried.json()["last_payment_error"] is None
    assert len(retried.json()["attempts"]) == 2


async def test_magic_decline_id(api: Api) -> None:
    response = await api.post(
        "/v1/payments",
        confirmed_payment("pm_card_chargeDeclined"),
    )
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "card_declined"


async def test_processing_error_failure_mode(api: Api, deps: Deps) -> None:
    deps.connectors.simulator.failure_mode = "processing_error"
    response = await api.post(
        "/v1/payments",
        confirmed_payment(),
    )
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "processing_error"


async def test_unreachable_provider_charges_nothing_and_allows_retry(api: Api, deps: Deps) -> None:
    deps.connectors.simulator.failure_mode = "unavailable"
    response = await api.post(
        "/v1/payments",
        confirmed_payment(),
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "provider_unavailable")
    payment = (await api.get(f"/v1/payments/{error['payment_id']}")).json()
    assert payment["status"] == "requires_confirmation"
    assert payment["attempts"][0]["status"] == "unreachable"
    deps.connectors.simulator.failure_mode = "none"
    retried = await api.post(f"/v1/payments/{payment['id']}/confirm")
    assert retried.json()["status"] == "succeeded"


async def test_unknown_outcome_leaves_payment_processing(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    payment = await payment_in(api, deps, "processing")
    assert payment["attempts"][0]["status"] == "unknown"
    events = await pool.fetch(
        "SELECT type FROM events WHERE object_id = $1 ORDER BY id", payment["id"]
    )
    assert [e["type"] for e in events] == ["payment.created", "payment.processing"]
    refund = await api.post("/v1/refunds", {"payment": payment["id"]})
    assert refund.status_code == 409
    assert refund.json()["error"]["code"] == "payment_invalid_state"
