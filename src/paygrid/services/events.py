"""Reading the event outbox: the events a merchant's changes wrote, in one mode."""

from __future__ import annotations

from datetime import datetime

from paygrid.db import events as events_db
from paygrid.dependencies import Deps
from paygrid.domain.errors import ResourceMissing
from paygrid.domain.pagination import PageRequest
from paygrid.schemas.events import Event
from paygrid.services.context import Tenant


async def get_event(deps: Deps, tenant: Tenant, event_id: str) -> Event:
    """One event; another merchant's or the other mode's is missing."""
    row = await events_db.get_event(deps.pool, tenant.merchant_id, tenant.livemode, event_id)
    if row is None:
        raise ResourceMissing(f"No such event: '{event_id}'", param="id")
    return Event.from_row(row)


async def list_events(
    deps: Deps,
    tenant: Tenant,
    page: PageRequest,
    *,
    event_type: str | None,
    created_gte: datetime | None = None,
    created_lte: datetime | None = None,
) -> tuple[list[Event], bool]:
    """A page of events, newest first, optionally of one type and within a time range."""
    rows, has_more = await events_db.list_events(
        deps.pool,
        tenant.merchant_id,
        tenant.livemode,
        page,
        event_type=event_type,
        created_gte=created_gte,
        created_lte=created_lte,
    )
    return [Event.from_row(row) for row in rows], has_more
