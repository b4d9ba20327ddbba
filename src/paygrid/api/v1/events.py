"""``/v1/events``: list and retrieve what changed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import COMMON_ERRORS, Page, json_response, list_response
from paygrid.schemas.common import ListObject
from paygrid.schemas.events import Event
from paygrid.services import events
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/events", tags=["Events"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.get("", response_model=ListObject[Event], summary="List events")
@read_only
async def list_events(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    event_type: Annotated[
        str | None,
        Query(alias="type", max_length=100, description="Only events of this type."),
    ] = None,
) -> Response:
    """Newest first, with cursor pagination."""
    data, has_more = await events.list_events(
        reads_of(request), tenant, page, event_type=event_type
    )
    return list_response(request, data, has_more)


@router.get("/{event_id}", response_model=Event, summary="Retrieve an event")
async def get_event(request: Request, event_id: str, tenant: SecretTenant) -> Response:
    return json_response(await events.get_event(deps_of(request), tenant, event_id))
