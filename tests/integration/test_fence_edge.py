"""The HTTP edge and the restore's write fence (api/edge.py): a request that arrived before
the fence rose but was still being read (its body uploading, its key being looked up) when
it rose is answered 503 ``maintenance_restoring`` and never reaches the app, so the drain,
which counts only requests past every check, cannot miss it; a request already past the
checks is counted until it is answered."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx

from paygrid.app import create_app
from paygrid.config import Settings
from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant
from tests.conftest import TEST_BASE_URL, auth, confirmed_payment


def _slow_body(body: bytes, halfway: asyncio.Event, go_on: asyncio.Event) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        yield body[:10]
        halfway.set()
        await go_on.wait()
        yield body[10:]

    return chunks()


async def test_a_request_still_uploading_when_the_fence_rises_never_reaches_the_app(
    deps: Deps, settings: Settings, merchant: NewMerchant
) -> None:
    app = create_app(settings, deps=deps)
    fence = app.state.write_fence
    key = f"fence-edge-{uuid.uuid4().hex}"
    body = json.dumps(confirmed_payment(amount=4_321)).encode()
    halfway, go_on = asyncio.Event(), asyncio.Event()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
        headers = auth(merchant.key("secret", livemode=False), **{"Idempotency-Key": key})
        sending = asyncio.create_task(
            http.post(
                "/v1/payments",
                content=_slow_body(body, halfway, go_on),
                headers=headers | {"Content-Type": "application/json"},
            )
        )
        await asyncio.wait_for(halfway.wait(), 10)
        fence.set(30)  # the NOTIFY heard while the body is still arriving
        assert app.state.write_fence.raised
        go_on.set()
        answered = await asyncio.wait_for(sending, 10)

        assert answered.status_code == 503, answered.text
        assert answered.json()["error"]["code"] == "maintenance_restoring"
        assert answered.headers["Retry-After"] == "30"
        made = await deps.pool.fetchval(
            "SELECT count(*) FROM payments WHERE merchant_id = $1 AND idempotency_key = $2",
            merchant.id,
            key,
        )
        assert made == 0

        fence.set(None)  # lowered: the same request goes through
        again = await http.post(
            "/v1/payments", json=confirmed_payment(amount=4_321), headers=headers
        )
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "succeeded"


async def test_probes_still_answer_while_fenced(deps: Deps, settings: Settings) -> None:
    app = create_app(settings, deps=deps)
    app.state.write_fence.set(30)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
        live = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert live.status_code == 200, live.text
    assert ready.status_code == 503 and ready.json()["status"] == "restoring", ready.text
