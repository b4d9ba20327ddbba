"""What happened to an object, for the dashboard's detail pages: the events about a payment
or refund, and the webhook deliveries of those events."""

from __future__ import annotations

from paygrid.db import timelines as timelines_db
from paygrid.db.timelines import EventDelivery as EventDelivery
from paygrid.db.timelines import ObjectEvent as ObjectEvent
from paygrid.dependencies import Deps
from paygrid.services.context import Tenant


async def events_about(deps: Deps, tenant: Tenant, object_ids: list[str]) -> list[ObjectEvent]:
    """The tenant's events whose object is one of ``object_ids``, oldest first."""
    return await timelines_db.events_for_objects(
        deps.pool, tenant.merchant_id, tenant.livemode, object_ids
    )


async def deliveries_of(deps: Deps, events: list[ObjectEvent]) -> list[EventDelivery]:
    """Every webhook delivery of ``events`` (the tenant's, from ``events_about``), oldest
    first, with its endpoint's URL."""
    return await timelines_db.deliveries_for_events(deps.pool, [e.id for e in events])
