"""Send events again: a test ping, one event (to one endpoint or all that subscribe), a
range of events to one endpoint, and everything dead-lettered. Each creates new deliveries
(the failed ones stay as history) with the job for their first attempt."""

from __future__ import annotations

from datetime import datetime

from paygrid.db import events as events_db
from paygrid.db import webhooks as webhooks_db
from paygrid.dependencies import Deps
from paygrid.domain.errors import InvalidRequest, ResourceMissing
from paygrid.ids import new_id
from paygrid.schemas.webhooks import WebhookEndpoint
from paygrid.services.context import Tenant
from paygrid.services.webhook_endpoints import require_endpoint
from paygrid.webhooks.delivery import DELIVER, QUEUE
from paygrid.webhooks.dispatcher import subscribed

PING = "ping"
REPLAY_LIMIT = 10_000


async def send_test(deps: Deps, tenant: Tenant, endpoint_id: str) -> dict[str, str]:
    """Send a ``ping`` event, with the endpoint as its object, to this endpoint only."""
    endpoint = await require_endpoint(deps, tenant, endpoint_id)
    event = events_db.new_event(
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        event_type=PING,
        object_id=endpoint_id,
        snapshot=WebhookEndpoint.from_row(endpoint).model_dump(mode="json"),
        created_at=deps.clock.now(),
    )
    delivery_id = new_id("whd")
    async with deps.pool.acquire() as conn, conn.transaction():
        await webhooks_db.insert_dispatched_event(conn, event)
        await webhooks_db.insert_deliveries(
            conn,
            [(delivery_id, tenant.merchant_id, tenant.livemode, endpoint_id, event.id)],
            job_kind=DELIVER,
            queue=QUEUE,
            now=event.created_at,
        )
    return {"event": event.id, "delivery": delivery_id}


async def redeliver(deps: Deps, tenant: Tenant, event_id: str, endpoint_id: str | None) -> int:
    """Send one event again: to ``endpoint_id``, or to every enabled endpoint subscribed to
    its type. Returns how many deliveries were created."""
    event = await events_db.get_event(deps.pool, tenant.merchant_id, tenant.livemode, event_id)
    if event is None:
        raise ResourceMissing(f"No such event: '{event_id}'", param="id")
    if endpoint_id is not None:
        targets = [(await require_endpoint(deps, tenant, endpoint_id)).id]
    else:
        endpoints = await webhooks_db.endpoint_targets(
            deps.pool, [(tenant.merchant_id, tenant.livemode)]
        )
        targets = [e.id for e in endpoints if subscribed(e.enabled_events, event.type)]
    planned = [(new_id("whd"), tenant.merchant_id, tenant.livemode, t, event_id) for t in targets]
    await webhooks_db.insert_deliveries(
        deps.pool, planned, job_kind=DELIVER, queue=QUEUE, now=deps.clock.now()
    )
    return len(planned)


async def replay(
    deps: Deps,
    tenant: Tenant,
    endpoint_id: str,
    *,
    event_type: str | None,
    created_gte: datetime | None,
    created_lte: datetime | None,
    status: str | None,
) -> int:
    """Send a range of events to one endpoint again (``status="failed"``: only those whose
    last delivery there failed). Returns how many deliveries were created."""
    if status not in (None, "failed"):
        raise InvalidRequest("status can only be 'failed'.", param="status")
    endpoint = await require_endpoint(deps, tenant, endpoint_id)
    events = await webhooks_db.events_to_replay(
        deps.pool,
        tenant.merchant_id,
        tenant.livemode,
        endpoint_id,
        event_type=event_type,
        created_gte=created_gte,
        created_lte=created_lte,
        only_failed=status == "failed",
        limit=REPLAY_LIMIT,
    )
    planned = [
        (new_id("whd"), tenant.merchant_id, tenant.livemode, endpoint_id, e.id)
        for e in events
        if subscribed(endpoint.enabled_events, e.type)
    ]
    await webhooks_db.insert_deliveries(
        deps.pool, planned, job_kind=DELIVER, queue=QUEUE, now=deps.clock.now()
    )
    return len(planned)


async def retry_dead_letters(deps: Deps, tenant: Tenant) -> int:
    """Send every dead-lettered delivery again. Returns how many were re-queued."""
    failed = await webhooks_db.failed_deliveries(
        deps.pool, tenant.merchant_id, tenant.livemode, REPLAY_LIMIT
    )
    planned = [
        (new_id("whd"), tenant.merchant_id, tenant.livemode, dead.endpoint_id, dead.event_id)
        for dead in failed
    ]
    await webhooks_db.insert_deliveries(
        deps.pool, planned, job_kind=DELIVER, queue=QUEUE, now=deps.clock.now()
    )
    return len(planned)
