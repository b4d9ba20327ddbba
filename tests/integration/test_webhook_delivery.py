"""Events reach merchant endpoints: dispatch from the outbox, Standard Webhooks signatures
(checked with the reference library), retries, dead letters, replay, rotation, 410, 429."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from standardwebhooks import Webhook

from paygrid.app import create_app
from paygrid.bootstrap import build_deps, standard_registry
from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import Settings
from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant, issue_key
from paygrid.webhooks.destinations import SYSTEM_RESOLVER
from paygrid.webhooks.dispatcher import EventDispatcher
from tests.conftest import LOCAL_WEBHOOK_HOSTS, TEST_BASE_URL, Api, write_rolled_back_event
from tests.integration.webhook_receiver import Receiver, receiver
from tests.integration.worker_harness import eventually, running


class RebindingResolver:
    """DNS whose answers a test changes between saving an endpoint and delivering to it;
    other names go to the system resolver."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}

    async def resolve(self, host: str, port: int) -> list[str]:
        if host in self.answers:
            return self.answers[host]
        return await SYSTEM_RESOLVER.resolve(host, port)


@dataclass
class Rig:
    api: Api
    deps: Deps
    hooks: Receiver
    dns: RebindingResolver


@pytest.fixture
async def rig(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, merchant: NewMerchant
) -> AsyncIterator[Rig]:
    """The app, a webhooks worker with its dispatcher, and a receiver; retries are immediate."""
    settings = Settings(
        public_url=TEST_BASE_URL,
        webhook_retry_schedule="0,0,0",
        webhook_allowed_hosts=LOCAL_WEBHOOK_HOSTS,
    )
    dns = RebindingResolver()
    deps = replace(build_deps(pool, settings, bookkeeping_pool=bookkeeping_pool), resolver=dns)
    app = create_app(settings, deps=deps)
    stopping = asyncio.Event()
    dispatcher = asyncio.create_task(EventDispatcher(deps, poll_seconds=0.2).run(stopping))
    async with (
        receiver() as hooks,
        running(deps, standard_registry(), "webhooks"),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=TEST_BASE_URL) as http,
    ):
        yield Rig(Api(http, merchant.key("secret", False)), deps, hooks, dns)
    stopping.set()
    await dispatcher


async def _endpoint(rig: Rig, events: list[str] | None = None) -> dict[str, str]:
    response = await rig.api.post(
        "/v1/webhook_endpoints", {"url": rig.hooks.url, "enabled_events": events or ["*"]}
    )
    assert response.status_code == 200, response.text
    endpoint: dict[str, str] = response.json()
    return endpoint


async def _pay(rig: Rig) -> dict[str, str]:
    response = await rig.api.post(
        "/v1/payments",
        {"amount": 1500, "currency": "USD", "confirm": True, "payment_method": "pm_card_visa"},
    )
    payment: dict[str, str] = response.json()
    return payment


async def _deliveries(rig: Rig, endpoint_id: str) -> list[dict[str, object]]:
    listed = (
        await rig.api.get(f"/v1/webhook_endpoints/{endpoint_id}/deliveries", limit=100)
    ).json()
    return list(listed["data"])


async def test_payment_events_are_delivered_signed_and_recorded(rig: Rig) -> None:
    endpoint = await _endpoint(rig)
    payment = await _pay(rig)
    await eventually(lambda: _count(rig, 2))
    for received in rig.hooks.received:
        event = Webhook(endpoint["secret"]).verify(received.body, received.headers)
        assert event["data"]["object"]["id"] == payment["id"]
        assert received.headers["webhook-id"] == event["id"]
    types = [json.loads(r.body)["type"] for r in rig.hooks.received]
    assert sorted(types) == ["payment.created", "payment.succeeded"]
    await eventually(lambda: _recorded(rig, endpoint["id"], 2))
    deliveries = await _deliveries(rig, endpoint["id"])
    assert {d["status"] for d in deliveries} == {"succeeded"}
    attempt = deliveries[0]["attempts"][0]  # type: ignore[index]
    assert attempt["status_code"] == 200 and attempt["response_body"] == "answer 200"
    assert attempt["latency_ms"] >= 0 and attempt["error"] is None
    event_id = json.loads(rig.hooks.received[0].body)["id"]
    by_event = (await rig.api.get(f"/v1/events/{event_id}/deliveries")).json()["data"]
    assert [d["endpoint"] for d in by_event] == [endpoint["id"]]


async def test_a_host_rebound_to_loopback_after_saving_is_not_delivered_to(rig: Rig) -> None:
    """DNS rebinding: the name resolved to a public address when the endpoint was saved and
    to loopback (where the receiver listens) at delivery; the connection is never made."""
    rig.dns.answers["hooks.rebind.test"] = ["93.184.215.14"]
    port = urlsplit(rig.hooks.url).port
    endpoint = await rig.api.post(
        "/v1/webhook_endpoints",
        {"url": f"http://hooks.rebind.test:{port}/hooks", "enabled_events": ["payment.succeeded"]},
    )
    assert endpoint.status_code == 200, endpoint.text
    rig.dns.answers["hooks.rebind.test"] = ["127.0.0.1"]
    await _pay(rig)

    async def dead() -> bool:
        deliveries = await _deliveries(rig, endpoint.json()["id"])
        return bool(deliveries) and deliveries[0]["status"] == "failed"

    await eventually(dead)
    attempts = (await _deliveries(rig, endpoint.json()["id"]))[0]["attempts"]
    assert isinstance(attempts, list) and len(attempts) == 3
    for attempt in attempts:
        assert attempt["error"].startswith("url_not_allowed"), attempt
        assert "127.0.0.1" in attempt["error"]
        assert (attempt["status_code"], attempt["response_body"]) == (None, None)
    assert rig.hooks.received == []


async def test_only_subscribed_types_are_sent(rig: Rig) -> None:
    await _endpoint(rig, ["refund.succeeded"])
    payment = await _pay(rig)
    await rig.api.post("/v1/refunds", {"payment": payment["id"], "amount": 100})
    await eventually(lambda: _count(rig, 1))
    await asyncio.sleep(0.3)  # give any wrongly subscribed event time to arrive
    assert [json.loads(r.body)["type"] for r in rig.hooks.received] == ["refund.succeeded"]


async def test_failures_are_retried_then_succeed(rig: Rig) -> None:
    rig.hooks.script = [(500, {}), (502, {})]
    endpoint = await _endpoint(rig, ["payment.succeeded"])
    await _pay(rig)
    await eventually(lambda: _count(rig, 3))
    await eventually(lambda: _recorded(rig, endpoint["id"], 1))
    deliveries = await _deliveries(rig, endpoint["id"])
    assert len(deliveries) == 1 and deliveries[0]["status"] == "succeeded"
    codes = [a["status_code"] for a in deliveries[0]["attempts"]]  # type: ignore[attr-defined]
    assert codes == [500, 502, 200]
    assert len(set(rig.hooks.event_ids())) == 1  # one event, the same webhook-id each time


async def test_dead_letter_then_replay(rig: Rig) -> None:
    rig.hooks.default = (500, {})
    endpoint = await _endpoint(rig, ["payment.succeeded"])
    await _pay(rig)

    async def dead() -> bool:
        deliveries = await _deliveries(rig, endpoint["id"])
        return bool(deliveries) and deliveries[0]["status"] == "failed"

    await eventually(dead)
    deliveries = await _deliveries(rig, endpoint["id"])
    assert deliveries[0]["attempt_count"] == 3  # the schedule "0,0,0" allows three attempts
    rig.hooks.default = (200, {})
    replayed = await rig.api.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/replay", {"status": "failed"}
    )
    assert replayed.json() == {"object": "webhook_redelivery", "deliveries": 1}

    async def redelivered() -> bool:
        return [d["status"] for d in await _deliveries(rig, endpoint["id"])] == [
            "succeeded",
            "failed",
        ]

    await eventually(redelivered)
    again = await rig.api.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/replay", {"status": "failed"}
    )
    assert again.json()["deliveries"] == 0  # the failure was superseded by a success


async def test_redeliver_one_event(rig: Rig) -> None:
    endpoint = await _endpoint(rig, ["payment.succeeded"])
    await _pay(rig)
    await eventually(lambda: _count(rig, 1))
    event_id = rig.hooks.event_ids()[0]
    response = await rig.api.post(f"/v1/events/{event_id}/redeliver", {"endpoint": endpoint["id"]})
    assert response.json()["deliveries"] == 1
    await eventually(lambda: _count(rig, 2))
    assert rig.hooks.event_ids() == [event_id, event_id]


async def test_rotation_signs_with_both_secrets(rig: Rig) -> None:
    endpoint = await _endpoint(rig, ["payment.succeeded"])
    rotated = (await rig.api.post(f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret")).json()
    await _pay(rig)
    await eventually(lambda: _count(rig, 1))
    received = rig.hooks.received[0]
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    Webhook(endpoint["secret"]).verify(received.body, received.headers)
    Webhook(rotated["secret"]).verify(received.body, received.headers)


async def test_410_disables_the_endpoint(rig: Rig) -> None:
    rig.hooks.default = (410, {})
    endpoint = await _endpoint(rig, ["payment.succeeded"])
    await _pay(rig)

    async def disabled() -> bool:
        current = (await rig.api.get(f"/v1/webhook_endpoints/{endpoint['id']}")).json()
        return bool(current["status"] == "disabled")

    await eventually(disabled)
    current = (await rig.api.get(f"/v1/webhook_endpoints/{endpoint['id']}")).json()
    assert current["disabled_reason"] == "gone_410"
    assert [d["status"] for d in await _deliveries(rig, endpoint["id"])] == ["failed"]
    assert _count_now(rig) == 1


async def test_429_retry_after_is_honoured(rig: Rig) -> None:
    rig.hooks.script = [(429, {"Retry-After": "3600"})]
    endpoint = await _endpoint(rig, ["payment.succeeded"])
    await _pay(rig)
    await eventually(lambda: _count(rig, 1))

    async def scheduled() -> bool:
        deliveries = await _deliveries(rig, endpoint["id"])
        return bool(deliveries) and deliveries[0]["next_attempt"] is not None

    await eventually(scheduled)
    delivery = (await _deliveries(rig, endpoint["id"]))[0]
    assert delivery["status"] == "pending"
    assert delivery["next_attempt"] >= int((SYSTEM_CLOCK.now() + timedelta(minutes=59)).timestamp())  # type: ignore[operator]


async def test_test_ping(rig: Rig) -> None:
    endpoint = await _endpoint(rig, ["payment.succeeded"])
    response = await rig.api.post(f"/v1/webhook_endpoints/{endpoint['id']}/test")
    assert response.status_code == 200, response.text
    await eventually(lambda: _count(rig, 1))
    ping = Webhook(endpoint["secret"]).verify(
        rig.hooks.received[0].body, rig.hooks.received[0].headers
    )
    assert ping["type"] == "ping" and ping["data"]["object"]["id"] == endpoint["id"]


async def test_rolled_back_event_is_never_visible_or_delivered(
    rig: Rig, merchant: NewMerchant
) -> None:
    await _endpoint(rig)
    await write_rolled_back_event(rig.deps.pool, merchant.id)
    committed = await _pay(rig)
    await eventually(lambda: _count(rig, 2))
    await asyncio.sleep(0.3)
    objects = {json.loads(r.body)["data"]["object"]["id"] for r in rig.hooks.received}
    assert objects == {committed["id"]}
    listed = (await rig.api.get("/v1/events", limit=100)).json()["data"]
    assert "pay_rolled_back" not in {e["data"]["object"]["id"] for e in listed}


async def _recorded(rig: Rig, endpoint_id: str, expected: int) -> bool:
    """The worker records an answer just after the receiver sent it (later still through
    PgBouncer, as CI also runs this module): wait for the record, not only the request."""
    deliveries = await _deliveries(rig, endpoint_id)
    return len(deliveries) == expected and all(d["status"] == "succeeded" for d in deliveries)


async def _count(rig: Rig, expected: int) -> bool:
    return len(rig.hooks.received) >= expected


def _count_now(rig: Rig) -> int:
    return len(rig.hooks.received)


async def _admin(rig: Rig, merchant: NewMerchant) -> Api:
    issued = await issue_key(rig.deps.pool, merchant.id, "secret", False, scopes=["admin"])
    return Api(rig.api.http, issued.secret)


async def test_admin_endpoints_need_the_admin_scope(rig: Rig, merchant: NewMerchant) -> None:
    for path in ("/v1/admin/webhooks/pause", "/v1/admin/webhooks/retry_failed"):
        refused = await rig.api.post(path, {})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "insufficient_permissions"
        assert refused.json()["error"]["missing_scope"] in {"admin:read", "admin:write"}
    assert (await rig.api.get("/v1/admin/queues")).status_code == 403
    admin = await _admin(rig, merchant)
    overview = (await admin.get("/v1/admin/queues")).json()
    assert overview["object"] == "queue_stats"
    assert "workers" not in overview  # the platform's workers are the operator's business
    assert all({"name", "counts", "oldest_due_seconds"} <= set(q) for q in overview["queues"])


async def test_pause_holds_deliveries_and_resume_sends_them(
    rig: Rig, merchant: NewMerchant
) -> None:
    admin = await _admin(rig, merchant)
    endpoint = await _endpoint(rig, ["payment.succeeded"])
    paused = await admin.post("/v1/admin/webhooks/pause", {"endpoint": endpoint["id"]})
    assert paused.json() == {"object": "webhook_pause", "paused": True, "endpoints": 1}
    await _pay(rig)

    async def held() -> bool:
        deliveries = await _deliveries(rig, endpoint["id"])
        return bool(deliveries) and deliveries[0]["status"] == "pending"

    await eventually(held)
    await asyncio.sleep(0.3)
    assert rig.hooks.received == []
    resumed = await admin.post("/v1/admin/webhooks/resume", {})
    assert resumed.json()["endpoints"] >= 1
    await eventually(lambda: _count(rig, 1))
    # The delivery is marked succeeded once the receiver's answer is read: after it arrived.
    await eventually(lambda: _recorded(rig, endpoint["id"], 1))


async def test_retry_everything_dead_lettered(rig: Rig, merchant: NewMerchant) -> None:
    admin = await _admin(rig, merchant)
    rig.hooks.default = (500, {})
    endpoint = await _endpoint(rig, ["payment.succeeded", "payment.created"])
    await _pay(rig)

    async def both_dead() -> bool:
        return [d["status"] for d in await _deliveries(rig, endpoint["id"])] == ["failed", "failed"]

    await eventually(both_dead)
    rig.hooks.default = (200, {})
    retried = (await admin.post("/v1/admin/webhooks/retry_failed")).json()
    assert retried["deliveries"] == 2

    async def delivered() -> bool:
        statuses = [d["status"] for d in await _deliveries(rig, endpoint["id"])]
        return statuses.count("succeeded") == 2

    await eventually(delivered)
