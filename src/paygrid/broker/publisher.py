"""Fan-out of every committed event to RabbitMQ: the ``events.publish`` job.

When ``PAYGRID_AMQP_URL`` is set, each event is published to the durable topic exchange
``paygrid.events`` with the event type as routing key (``payment.created``,
``refund.succeeded``, ...), so a consumer binds its own queue with a pattern such as
``payment.*`` or ``#``. The body is the event exactly as the API and webhooks render it
(``application/json``); the message is persistent, its ``message_id`` is the event id, its
``type`` the event type, its ``timestamp`` the event's creation time, and its headers carry
``merchant_id`` and ``livemode`` so a consumer can tell tenants apart.

Publishing goes through the outbox. The dispatcher creates one ``events.publish`` job (queue
``broker``) per event in the transaction that marks the event dispatched, and it can only
claim events that committed: nothing is published for a change that rolled back, and
nothing is published before its commit. The job waits for the broker's publisher confirm; a
refusal, a timeout or an unreachable broker fails the job, which is retried on
``PUBLISH_RETRY``'s schedule (about 40 hours) and then kept as a dead job for an operator.
Delivery is therefore at least once: a job re-run after its worker died, or after a lost
confirm, publishes the same event again with the same ``message_id``, which consumers use
to drop duplicates. Jobs run concurrently, so messages are not ordered: a consumer that
needs order uses the event's ``created`` time.

Every process that runs the event dispatcher or a worker on the ``broker`` queue
(``paygrid serve`` with its in-process worker, ``paygrid worker``) needs the same
``PAYGRID_AMQP_URL``: a dispatcher without it creates no publish jobs, and a worker without
it fails the ones it claims. Events dispatched before the setting was made are not
published.
"""

from __future__ import annotations

from typing import Any, Final

import aio_pika
import structlog

from paygrid.db import events as events_db
from paygrid.db.events import EventRow
from paygrid.schemas.events import Event
from paygrid.worker.registry import JobContext
from paygrid.worker.retry import RetryPolicy

PUBLISH: Final = "events.publish"
QUEUE: Final = "broker"
PUBLISH_RETRY: Final = RetryPolicy(
    (1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0)
)
"""Thirteen attempts over about 40 hours: a broker outage of a day and a half loses nothing."""
APP_ID: Final = "paygrid"
log = structlog.get_logger("paygrid.broker")


def publish_payload(event_id: str) -> dict[str, Any]:
    """The payload of the ``events.publish`` job for one event."""
    return {"event_id": event_id}


def message_for(row: EventRow) -> aio_pika.Message:
    """The AMQP message for an ``events`` row: the API's JSON rendering of the event."""
    event = Event.from_row(row)
    return aio_pika.Message(
        event.model_dump_json().encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event.id,
        type=event.type,
        timestamp=row.created_at,
        app_id=APP_ID,
        headers={"merchant_id": row.merchant_id, "livemode": row.livemode},
    )


async def publish(payload: dict[str, Any], context: JobContext) -> None:
    """Publish event ``payload["event_id"]`` and wait for the broker's confirm."""
    deps = context.deps
    if deps.broker is None:
        # A worker started without the setting claimed a job a configured dispatcher made:
        # fail it, so it is retried (perhaps by a configured worker) rather than lost.
        raise RuntimeError("PAYGRID_AMQP_URL is not set in this worker process")
    event_id = str(payload["event_id"])
    row = await events_db.get_event_by_id(deps.pool, event_id)
    if row is None:  # events are never deleted; nothing to publish if one ever is
        log.warning("broker.event_missing", event_id=event_id)
        return
    await deps.broker.publish(message_for(row), routing_key=row.type)
