"""Webhooks pages: endpoints, each endpoint's delivery log, and sending events again
(redeliver one event, replay a range) through the delivery services."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.dependencies import deps_of
from paygrid.dashboard import forms as form_input
from paygrid.dashboard.rendering import DashboardRoute, redirect, render
from paygrid.dashboard.sessions import Viewer, current_viewer, form_viewer
from paygrid.domain.pagination import PageRequest
from paygrid.services import webhook_deliveries, webhook_endpoints

router = APIRouter(route_class=DashboardRoute)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
Posted = Annotated[Viewer, Depends(form_viewer)]


@router.get("/webhooks")
async def endpoint_list(request: Request, viewer: SignedIn) -> Response:
    viewer.require("webhooks:read")
    endpoints, _ = await webhook_endpoints.list_endpoints(
        deps_of(request), viewer.tenant, PageRequest(limit=100)
    )
    return render(request, "webhooks.html", {"endpoints": endpoints})


@router.get("/webhooks/{endpoint_id}")
async def endpoint_detail(
    request: Request,
    endpoint_id: str,
    viewer: SignedIn,
    after: str | None = None,
    before: str | None = None,
    queued: str | None = None,
) -> Response:
    viewer.require("webhooks:read")
    deps = deps_of(request)
    endpoint = await webhook_endpoints.get_endpoint(deps, viewer.tenant, endpoint_id)
    where = form_input.cursor(after, before)
    deliveries, has_more = await webhook_endpoints.list_deliveries(
        deps, viewer.tenant, where.page(), endpoint_id=endpoint.id
    )
    return render(
        request,
        "webhook_endpoint.html",
        {
            "endpoint": endpoint,
            "deliveries": deliveries,
            "pager": form_input.pager([d.id for d in deliveries], has_more, where),
            "queued": queued if queued and queued.isdigit() else None,
        },
    )


@router.post("/webhooks/{endpoint_id}/redeliver")
async def redeliver(request: Request, endpoint_id: str, viewer: Posted) -> Response:
    viewer.require("webhooks:write")
    form = await form_input.fields(request)
    count = await webhook_deliveries.redeliver(
        deps_of(request), viewer.tenant, form.get("event", ""), endpoint_id
    )
    return redirect(f"/dashboard/webhooks/{endpoint_id}", queued=str(count))


@router.post("/webhooks/{endpoint_id}/replay")
async def replay(request: Request, endpoint_id: str, viewer: Posted) -> Response:
    viewer.require("webhooks:write")
    form = await form_input.fields(request)
    count = await webhook_deliveries.replay(
        deps_of(request),
        viewer.tenant,
        endpoint_id,
        event_type=form_input.text(form.get("type"), 64),
        created_gte=form_input.day(form.get("created_from")),
        created_lte=form_input.day(form.get("created_to"), end=True),
        status="failed" if form.get("only_failed") == "yes" else None,
    )
    return redirect(f"/dashboard/webhooks/{endpoint_id}", queued=str(count))
