"""Every committed event is also published to RabbitMQ through the outbox: one message per
event on the ``paygrid.events`` topic exchange, keyed by type, persistent, confirmed, never
for a change that rolled back, and retried while the broker is unreachable.

The tests that need a broker run against the real RabbitMQ at ``PAYGRID_TEST_AMQP_URL``
(``.ci/run`` sets it) and are skipped without it; the dispatch-side tests need none."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aio_pika
import asyncpg
import httpx
import pytest
from aio_pika.abc import AbstractIncomingMessage

from paygrid.app import create_app
from paygrid.bootstrap import Background, build_deps, standard_registry
from paygrid.broker.connection import EXCHANGE
from paygrid.broker.publisher import PUBLISH, QUEUE
from paygrid.config import Settings
from paygrid.db import events as events_db
from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant
from paygrid.webhooks.delivery import QUEUE as WEBHOOKS_QUEUE
from paygrid.webhooks.dispatcher import EventDispatcher, dispatch_pending
from paygrid.worker.runner import Worker, WorkerConfig
from tests.conftest import TEST_BASE_URL, Api, write_rolled_back_event
from tests.integration.worker_harness import FAST, eventually, settled

AMQP_URL = os.environ.get("PAYGRID_TEST_AMQP_URL", "")
needs_broker = pytest.mark.skipif(
    not AMQP_URL,
    reason="PAYGRID_TEST_AMQP_URL is unset: no RabbitMQ to publish to (.ci/run sets it to "
    "amqp://guest:guest@127.0.0.1:5672/)",
)
# Nothing listens on port 1: connecting is refused at once, as when the broker is down.
UNREACHABLE_URL = "amqp://guest:guest@127.0.0.1:1/"
QUIET_SECONDS = 0.3  # how long a test waits for a message that must not come


def _deps(pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, amqp_url: str | None) -> Deps:
    # Explicit, so a PAYGRID_AMQP_URL in the developer's environment changes nothing here.
    settings = Settings(public_url=TEST_BASE_URL, amqp_url=amqp_url)
    return build_deps(pool, settings, bookkeeping_pool=bookkeeping_pool)


async def _close(deps: Deps) -> None:
    if deps.broker is not None:
        await deps.broker.close()


@asynccontextmanager
async def _working(deps: Deps, *queues: str) -> AsyncIterator[Worker]:
    config = WorkerConfig(
        queues=queues,
        poll_seconds=FAST["poll_seconds"],
        lease_seconds=FAST["lease_seconds"],
        shutdown_seconds=FAST["shutdown_seconds"],
    )
    worker = Worker(deps, standard_registry(), config)
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


async def _dispatch_all(deps: Deps) -> None:
    while await dispatch_pending(deps):
        pass


async def _committed_event(
    pool: asyncpg.Pool, merchant_id: str, event_type: str = "customer.created"
) -> str:
    async with pool.acquire() as conn, conn.transaction():
        return await events_db.insert_event(
            conn,
            merchant_id=merchant_id,
            livemode=False,
            event_type=event_type,
            object_id=f"cus_{uuid.uuid4().hex[:12]}",
            snapshot={"id": "cus_test", "object": "customer"},
        )


async def _publish_jobs(pool: asyncpg.Pool, event_id: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT * FROM jobs WHERE kind = $1 AND payload->>'event_id' = $2",
            PUBLISH,
            event_id,
        )
    )


@dataclass
class Inbox:
    """What a queue bound to every routing key of ``paygrid.events`` received."""

    messages: list[AbstractIncomingMessage] = field(default_factory=list)

    def of(self, merchant_id: str) -> list[AbstractIncomingMessage]:
        """The messages of one merchant: the dispatcher also publishes other tests' events."""
        return [m for m in self.messages if m.headers.get("merchant_id") == merchant_id]

    async def wait_for(self, merchant_id: str, count: int) -> list[AbstractIncomingMessage]:
        async def arrived() -> bool:
            return len(self.of(merchant_id)) >= count

        await eventually(arrived)
        return self.of(merchant_id)


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    """An exclusive queue bound to ``paygrid.events`` with ``#``, consumed into a list."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        # Declared with the arguments paygrid uses: if paygrid declared the exchange any other
        # way (not durable, not a topic), one of the two declarations would be refused.
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="#")
        received = Inbox()

        async def collect(message: AbstractIncomingMessage) -> None:
            received.messages.append(message)

        await queue.consume(collect, no_ack=True)
        yield received
    finally:
        await connection.close()


@dataclass
class Rig:
    api: Api
    deps: Deps
    inbox: Inbox


@pytest.fixture
async def rig(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, merchant: NewMerchant, inbox: Inbox
) -> AsyncIterator[Rig]:
    """The app, its dispatcher and a worker on the webhooks and broker queues, configured
    with the test broker."""
    deps = _deps(pool, bookkeeping_pool, AMQP_URL)
    app = create_app(deps.settings, deps=deps)
    stopping = asyncio.Event()
    dispatcher = asyncio.create_task(EventDispatcher(deps, poll_seconds=0.2).run(stopping))
    try:
        async with (
            _working(deps, WEBHOOKS_QUEUE, QUEUE),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=TEST_BASE_URL
            ) as http,
        ):
            yield Rig(Api(http, merchant.key("secret", False)), deps, inbox)
    finally:
        stopping.set()
        await dispatcher
        await _close(deps)


async def _pay(api: Api) -> dict[str, str]:
    response = await api.post(
        "/v1/payments",
        {"amount": 1500, "currency": "USD", "confirm": True, "payment_method": "pm_card_visa"},
    )
    assert response.status_code == 200, response.text
    payment: dict[str, str] = response.json()
    return payment


# -- dispatch: no broker needed ------------------------------------------------------------


async def test_without_an_amqp_url_no_publish_jobs_are_created(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    deps = _deps(pool, bookkeeping_pool, None)
    assert deps.broker is None
    event_id = await _committed_event(pool, merchant.id)
    await _dispatch_all(deps)
    dispatched = await pool.fetchval("SELECT dispatched_at FROM events WHERE id = $1", event_id)
    assert dispatched is not None
    assert await _publish_jobs(pool, event_id) == []


async def test_publish_jobs_come_with_the_dispatch_and_only_for_committed_events(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    await _dispatch_all(_deps(pool, bookkeeping_pool, None))  # earlier tests' backlog
    # The URL is never connected to: no worker runs here, only the dispatcher.
    configured = _deps(pool, bookkeeping_pool, UNREACHABLE_URL)
    async with pool.acquire() as conn:
        uncommitted = conn.transaction()
        await uncommitted.start()
        pending_id = await events_db.insert_event(
            conn,
            merchant_id=merchant.id,
            livemode=False,
            event_type="customer.created",
            object_id="cus_uncommitted",
            snapshot={"id": "cus_uncommitted"},
        )
        committed_id = await _committed_event(pool, merchant.id)
        await _dispatch_all(configured)
        await uncommitted.rollback()
    jobs = await _publish_jobs(pool, committed_id)
    try:
        assert [(j["queue"], j["status"], j["payload"]) for j in jobs] == [
            (QUEUE, "queued", {"event_id": committed_id})
        ]
        assert await _publish_jobs(pool, pending_id) == []
    finally:  # no worker in a later test should publish this test's event
        await pool.execute("DELETE FROM jobs WHERE id = ANY($1::text[])", [j["id"] for j in jobs])


# -- publishing to the real broker ---------------------------------------------------------


@needs_broker
async def test_committed_events_are_published_keyed_by_type_persistent_and_identified(
    rig: Rig, merchant: NewMerchant
) -> None:
    payment = await _pay(rig.api)
    messages = await rig.inbox.wait_for(merchant.id, 2)
    by_type = {str(m.routing_key): m for m in messages}
    assert sorted(by_type) == ["payment.created", "payment.succeeded"]
    for event_type, message in by_type.items():
        event = json.loads(message.body)
        assert message.exchange == EXCHANGE
        assert event["type"] == message.type == event_type
        assert event["data"]["object"]["id"] == payment["id"]
        assert message.message_id == event["id"]
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.content_type == "application/json"
        assert message.headers == {"merchant_id": merchant.id, "livemode": False}
        assert message.timestamp is not None
        assert int(message.timestamp.timestamp()) == event["created"]
        # The same JSON as the API's rendering of the event (and so as webhooks send).
        assert event == (await rig.api.get(f"/v1/events/{event['id']}")).json()

    async def all_confirmed() -> bool:
        for message in messages:
            jobs = await _publish_jobs(rig.deps.pool, str(message.message_id))
            if [j["status"] for j in jobs] != ["succeeded"]:
                return False
        return True

    await eventually(all_confirmed)
    await asyncio.sleep(QUIET_SECONDS)
    assert len(rig.inbox.of(merchant.id)) == 2  # one job per event: no duplicates when healthy


@needs_broker
async def test_a_rolled_back_event_is_never_published(rig: Rig, merchant: NewMerchant) -> None:
    rolled_back = await write_rolled_back_event(rig.deps.pool, merchant.id)
    payment = await _pay(rig.api)
    await rig.inbox.wait_for(merchant.id, 2)
    await asyncio.sleep(QUIET_SECONDS)
    published = rig.inbox.of(merchant.id)
    assert {json.loads(m.body)["data"]["object"]["id"] for m in published} == {payment["id"]}
    assert rolled_back not in {m.message_id for m in rig.inbox.messages}
    assert await _publish_jobs(rig.deps.pool, rolled_back) == []


@needs_broker
async def test_an_unreachable_broker_fails_the_job_and_a_retry_publishes(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, merchant: NewMerchant, inbox: Inbox
) -> None:
    down = _deps(pool, bookkeeping_pool, UNREACHABLE_URL)
    up = _deps(pool, bookkeeping_pool, AMQP_URL)
    event_id = await _committed_event(pool, merchant.id)
    await _dispatch_all(down)
    [job] = await _publish_jobs(pool, event_id)
    try:
        async with _working(down, QUEUE):
            failed = await settled(pool, job["id"], ("failed", "succeeded", "dead"))
        assert failed["status"] == "failed" and failed["attempts"] == 1
        assert failed["last_error"].startswith("AMQPConnectionError")
        await asyncio.sleep(QUIET_SECONDS)
        assert inbox.of(merchant.id) == []
        async with _working(up, QUEUE):  # the retry is due a second after the failure
            [message] = await inbox.wait_for(merchant.id, 1)
            done = await settled(pool, job["id"])
        assert message.message_id == event_id and message.routing_key == "customer.created"
        # 2, unless a stall held the failing worker past the retry's second (then it failed
        # once more): either way retried until published, once.
        assert done["status"] == "succeeded" and done["attempts"] >= 2
    finally:
        await _close(down)
        await _close(up)


@needs_broker
async def test_a_message_the_broker_refuses_is_retried_until_confirmed(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    deps = _deps(pool, bookkeeping_pool, AMQP_URL)
    event_type = f"test.refused_{uuid.uuid4().hex[:12]}"  # routed to the full queue alone
    event_id = await _committed_event(pool, merchant.id, event_type)
    await _dispatch_all(deps)
    [job] = await _publish_jobs(pool, event_id)
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        # A queue that holds nothing and rejects what overflows it: the broker answers a
        # publish routed to it with a nack, which only a confirming publisher ever sees.
        full = await channel.declare_queue(
            exclusive=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
        )
        await full.bind(exchange, routing_key=event_type)
        async with _working(deps, QUEUE):
            refused = await settled(pool, job["id"], ("failed", "succeeded", "dead"))
            assert refused["status"] == "failed", refused["status"]
            assert refused["last_error"].startswith("DeliveryError")
            await full.delete(if_unused=False, if_empty=False)
            done = await settled(pool, job["id"])  # the retry is due a second later
        # 2, unless a stall let the retry run before the queue was deleted (it failed again).
        assert done["status"] == "succeeded" and done["attempts"] >= 2
    finally:
        await connection.close()
        await _close(deps)


@needs_broker
async def test_background_publishes_and_closes_its_broker_connection_on_stop(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, merchant: NewMerchant, inbox: Inbox
) -> None:
    deps = _deps(pool, bookkeeping_pool, AMQP_URL)
    assert deps.broker is not None and not deps.broker.connected  # opened at first publish
    background = Background(deps, deps.settings, queues=(QUEUE,))
    await background.start()
    try:
        event_id = await _committed_event(pool, merchant.id)
        [message] = await inbox.wait_for(merchant.id, 1)
        assert message.message_id == event_id
        assert deps.broker.connected
    finally:
        await background.stop()
    assert not deps.broker.connected
