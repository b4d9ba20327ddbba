"""Read-only pages: refunds, customers and events, each a list and a detail page."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.dependencies import deps_of
from paygrid.dashboard import customer_billing
from paygrid.dashboard import forms as form_input
from paygrid.dashboard.rendering import DashboardRoute, render
from paygrid.dashboard.sessions import Viewer, current_viewer
from paygrid.domain.pagination import PageRequest
from paygrid.schemas.common import DeletedObject
from paygrid.schemas.payments import Payment
from paygrid.services import customers, events, refunds, timelines, webhook_endpoints
from paygrid.services import payments as payment_service

router = APIRouter(route_class=DashboardRoute)
SignedIn = Annotated[Viewer, Depends(current_viewer)]


def pretty(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


@router.get("/refunds")
async def refund_list(
    request: Request,
    viewer: SignedIn,
    payment: str | None = None,
    after: str | None = None,
    before: str | None = None,
) -> Response:
    viewer.require("refunds:read")
    where = form_input.cursor(after, before)
    wanted = form_input.text(payment, 64)
    rows, has_more = await refunds.list_refunds(
        deps_of(request), viewer.tenant, where.page(), wanted
    )
    return render(
        request,
        "refunds.html",
        {
            "refunds": rows,
            "payment": wanted or "",
            "pager": form_input.pager([r.id for r in rows], has_more, where),
        },
    )


@router.get("/refunds/{refund_id}")
async def refund_detail(request: Request, refund_id: str, viewer: SignedIn) -> Response:
    viewer.require("refunds:read")
    deps, tenant = deps_of(request), viewer.tenant
    refund = await refunds.get_refund(deps, tenant, refund_id)
    history = await timelines.events_about(deps, tenant, [refund.id])
    return render(request, "refund.html", {"refund": refund, "events": history})


@router.get("/customers")
async def customer_list(
    request: Request,
    viewer: SignedIn,
    email: str | None = None,
    after: str | None = None,
    before: str | None = None,
) -> Response:
    viewer.require("customers:read")
    where = form_input.cursor(after, before)
    wanted = form_input.text(email, 254)
    rows, has_more = await customers.list_customers(
        deps_of(request), viewer.tenant, where.page(), wanted
    )
    return render(
        request,
        "customers.html",
        {
            "customers": rows,
            "email": wanted or "",
            "pager": form_input.pager([c.id for c in rows], has_more, where),
        },
    )


@router.get("/customers/{customer_id}")
async def customer_detail(request: Request, customer_id: str, viewer: SignedIn) -> Response:
    viewer.require("customers:read")
    deps = deps_of(request)
    customer = await customers.get_customer(deps, viewer.tenant, customer_id)
    payments: list[Payment] = []
    if not isinstance(customer, DeletedObject) and viewer.can("payments:read"):
        payments, _ = await payment_service.list_payments(
            deps,
            viewer.tenant,
            PageRequest(limit=50),
            status=None,
            customer=customer.id,
            currency=None,
            reference=None,
            created_gte=None,
            created_lte=None,
        )
    billing = None
    if not isinstance(customer, DeletedObject):
        billing = await customer_billing.of_customer(deps, viewer, customer)
    return render(
        request,
        "customer.html",
        {
            "customer": customer,
            "deleted": isinstance(customer, DeletedObject),
            "payments": payments,
            "billing": billing,
        },
    )


@router.get("/events")
async def event_list(
    request: Request,
    viewer: SignedIn,
    type: str | None = None,
    after: str | None = None,
    before: str | None = None,
) -> Response:
    viewer.require("webhooks:read")
    where = form_input.cursor(after, before)
    wanted = form_input.text(type, 64)
    rows, has_more = await events.list_events(
        deps_of(request),
        viewer.tenant,
        where.page(),
        event_type=wanted,
        created_gte=None,
        created_lte=None,
    )
    return render(
        request,
        "events.html",
        {
            "events": rows,
            "type": wanted or "",
            "pager": form_input.pager([e.id for e in rows], has_more, where),
        },
    )


@router.get("/events/{event_id}")
async def event_detail(request: Request, event_id: str, viewer: SignedIn) -> Response:
    viewer.require("webhooks:read")
    deps = deps_of(request)
    event = await events.get_event(deps, viewer.tenant, event_id)
    deliveries, _ = await webhook_endpoints.list_deliveries(
        deps, viewer.tenant, PageRequest(limit=50), event_id=event.id
    )
    return render(
        request,
        "event.html",
        {"event": event, "body": pretty(event.data.object), "deliveries": deliveries},
    )
