"""The inbox of provider webhooks: an event about something paygrid does not know yet is
kept and retried on a schedule by a job; the signature is checked again from the stored
headers; a bad signature writes nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import asyncpg
import httpx

from paygrid.clock import SYSTEM_CLOCK
from paygrid.dependencies import Deps
from paygrid.services import provider_webhooks
from tests.conftest import Api

SECRET = "sk_test_inbox0000000000000000000000"


async def _paystack_account(api: Api) -> str:
    response = await api.post(
        "/v1/connector_accounts",
        {
            "provider": "paystack",
            "credentials": {"secret_key": SECRET},
            "api_base": "http://127.0.0.1:9",  # never called by these tests
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _signed(body: bytes) -> dict[str, str]:
    signature = hmac.new(SECRET.encode(), body, hashlib.sha512).hexdigest()
    return {"x-paystack-signature": signature, "content-type": "application/json"}


def _refund_processed(refund_id: int) -> bytes:
    return json.dumps(
        {
            "event": "refund.processed",
            "data": {
                "id": refund_id,
                "status": "processed",
                "amount": "5000",  # Paystack's samples send it as a string
                "currency": "NGN",
                "transaction_reference": "ref_unknown",
            },
        }
    ).encode()


async def test_an_unmatched_event_is_kept_and_retried_by_a_job(
    api: Api, client: httpx.AsyncClient, deps: Deps, pool: asyncpg.Pool
) -> None:
    account = await _paystack_account(api)
    body = _refund_processed(918273)
    response = await client.post(
        f"/v1/provider_webhooks/{account}", content=body, headers=_signed(body)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "status": "unmatched"}
    stored = await pool.fetchrow(
        "SELECT * FROM provider_webhook_events WHERE connector_account_id = $1", account
    )
    assert stored is not None
    assert (stored["status"], stored["provider_event_id"]) == (
        "unmatched",
        "refund.processed:918273",
    )
    assert bytes(stored["body"]) == body
    job = await pool.fetchrow(
        "SELECT * FROM jobs WHERE kind = $1 AND payload->>'event' = $2",
        provider_webhooks.APPLY,
        stored["id"],
    )
    assert job is not None
    assert job["payload"]["attempt"] == 2
    assert timedelta(seconds=3) < job["run_at"] - SYSTEM_CLOCK.now() <= timedelta(seconds=5)

    # The job re-reads the stored body, verifies it with the stored signature, and (still
    # nothing to match) schedules the next try further out.
    await provider_webhooks.apply_job(dict(job["payload"]), deps)
    after = await pool.fetchrow("SELECT * FROM provider_webhook_events WHERE id = $1", stored["id"])
    assert after is not None and after["attempts"] == 2
    retry = await pool.fetchrow(
        "SELECT * FROM jobs WHERE kind = $1 AND payload->>'event' = $2 AND id <> $3",
        provider_webhooks.APPLY,
        stored["id"],
        job["id"],
    )
    assert retry is not None and retry["payload"]["attempt"] == 3


async def test_a_duplicate_is_acknowledged_and_stored_once(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    account = await _paystack_account(api)
    body = json.dumps({"event": "subscription.create", "data": {"id": 77}}).encode()
    first = await client.post(
        f"/v1/provider_webhooks/{account}", content=body, headers=_signed(body)
    )
    again = await client.post(
        f"/v1/provider_webhooks/{account}", content=body, headers=_signed(body)
    )
    assert first.json() == {"received": True, "status": "ignored"}
    assert again.json() == {"received": True, "duplicate": True}
    count = await pool.fetchval(
        "SELECT count(*) FROM provider_webhook_events WHERE connector_account_id = $1", account
    )
    assert count == 1


async def test_a_bad_signature_is_refused_and_nothing_is_stored(
    api: Api, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    account = await _paystack_account(api)
    body = _refund_processed(5)
    headers = _signed(body + b" ")  # signed over other bytes
    response = await client.post(f"/v1/provider_webhooks/{account}", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "signature_invalid"
    missing = await client.post(
        f"/v1/provider_webhooks/{account}",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert missing.status_code == 400
    count = await pool.fetchval(
        "SELECT count(*) FROM provider_webhook_events WHERE connector_account_id = $1", account
    )
    assert count == 0


async def test_an_unknown_account_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/provider_webhooks/ca_nope", content=b"{}", headers={"content-type": "application/json"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"
