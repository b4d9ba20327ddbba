"""Subscription pages: a list filterable by status and customer, and a subscription with its
items, invoices and events, with pause, resume and cancel (now or at the end of the period)
for roles that may (``invoices:write``), through the same use cases as
``/v1/subscriptions``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.dependencies import deps_of
from paygrid.dashboard import forms as form_input
from paygrid.dashboard.rendering import DashboardRoute, redirect, render
from paygrid.dashboard.sessions import Viewer, current_viewer, form_viewer
from paygrid.domain.errors import InvalidRequest
from paygrid.domain.pagination import PageRequest
from paygrid.domain.subscriptions import BILLING, SubscriptionStatus
from paygrid.schemas.subscriptions import (
    Subscription,
    SubscriptionCancel,
    SubscriptionPause,
    SubscriptionResume,
)
from paygrid.services import timelines
from paygrid.services.billing import invoices
from paygrid.services.billing.subscriptions import lifecycle, views

router = APIRouter(route_class=DashboardRoute)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
Posted = Annotated[Viewer, Depends(form_viewer)]
NOTICES = {
    "paused": "Paused: no invoices are made until it resumes.",
    "resumed": "Resumed.",
    "canceled": "Canceled.",
    "cancel_scheduled": "It will be canceled when the current period ends.",
}
PAUSABLE = frozenset({SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE})
CANCELABLE = frozenset(
    {
        SubscriptionStatus.INCOMPLETE,
        SubscriptionStatus.TRIALING,
        *BILLING,
        SubscriptionStatus.PAUSED,
    }
)


def next_invoice_at(sub: Subscription) -> int | None:
    """When the next invoice is made: the end of the period (a trial's end) while it
    renews; the resume date while paused; none once it ends or is set to end."""
    if sub.status is SubscriptionStatus.PAUSED:
        return None if sub.pause is None else sub.pause.resumes_at
    renews = sub.status in BILLING or sub.status is SubscriptionStatus.TRIALING
    return sub.current_period_end if renews and not sub.cancel_at_period_end else None


def amount_per_period(sub: Subscription) -> int:
    """What one full period of its items costs (before prorations)."""
    return sum(i.price.unit_amount * i.quantity for i in sub.items.data)


@router.get("/subscriptions")
async def subscription_list(
    request: Request,
    viewer: SignedIn,
    status: str | None = None,
    customer: str | None = None,
    after: str | None = None,
    before: str | None = None,
) -> Response:
    viewer.require("invoices:read")
    where = form_input.cursor(after, before)
    wanted = SubscriptionStatus(status) if status in tuple(SubscriptionStatus) else None
    wanted_customer = form_input.text(customer, 64)
    rows, has_more = await views.list_subscriptions(
        deps_of(request),
        viewer.tenant,
        where.page(),
        customer=wanted_customer,
        status=wanted,
        price=None,
    )
    filters = {"status": "" if wanted is None else wanted.value, "customer": wanted_customer or ""}
    return render(
        request,
        "subscriptions.html",
        {
            "subscriptions": [(s, next_invoice_at(s), amount_per_period(s)) for s in rows],
            "statuses": list(SubscriptionStatus),
            "filters": filters,
            "params": {k: v for k, v in filters.items() if v},
            "pager": form_input.pager([s.id for s in rows], has_more, where),
        },
    )


@router.get("/subscriptions/{subscription_id}")
async def subscription_detail(
    request: Request, subscription_id: str, viewer: SignedIn, notice: str | None = None
) -> Response:
    viewer.require("invoices:read")
    deps, tenant = deps_of(request), viewer.tenant
    sub = await views.get_subscription(deps, tenant, subscription_id)
    billed, _ = await invoices.list_invoices(
        deps,
        tenant,
        PageRequest(limit=100),
        customer=sub.customer,
        status=None,
        subscription=sub.id,
    )
    return render(
        request,
        "subscription.html",
        {
            "sub": sub,
            "next_invoice": next_invoice_at(sub),
            "amount": amount_per_period(sub),
            "invoices": billed,
            "events": await timelines.events_about(deps, tenant, [sub.id]),
            "notice": NOTICES.get(notice or ""),
            "can_pause": sub.status in PAUSABLE,
            "can_resume": sub.status is SubscriptionStatus.PAUSED,
            "can_cancel": sub.status in CANCELABLE,
        },
    )


@router.post("/subscriptions/{subscription_id}/pause")
async def pause(request: Request, subscription_id: str, viewer: Posted) -> Response:
    viewer.require("invoices:write")
    await lifecycle.pause_subscription(
        deps_of(request), viewer.tenant, subscription_id, SubscriptionPause()
    )
    return redirect(f"/dashboard/subscriptions/{subscription_id}", notice="paused")


@router.post("/subscriptions/{subscription_id}/resume")
async def resume(request: Request, subscription_id: str, viewer: Posted) -> Response:
    viewer.require("invoices:write")
    anchor = (await form_input.fields(request)).get("billing_cycle_anchor") or "now"
    if anchor not in ("now", "unchanged"):
        raise InvalidRequest("Choose when the next period starts.", param="billing_cycle_anchor")
    params = SubscriptionResume.model_validate({"billing_cycle_anchor": anchor})
    await lifecycle.resume_subscription(deps_of(request), viewer.tenant, subscription_id, params)
    return redirect(f"/dashboard/subscriptions/{subscription_id}", notice="resumed")


@router.post("/subscriptions/{subscription_id}/cancel")
async def cancel(request: Request, subscription_id: str, viewer: Posted) -> Response:
    viewer.require("invoices:write")
    form = await form_input.fields(request)
    form_input.require_confirmation(form, "cancel this subscription")
    when = form.get("when") or "now"
    if when not in ("now", "period_end"):
        raise InvalidRequest("Choose when to cancel.", param="when")
    params = SubscriptionCancel(at_period_end=when == "period_end")
    await lifecycle.cancel_subscription(deps_of(request), viewer.tenant, subscription_id, params)
    notice = "cancel_scheduled" if params.at_period_end else "canceled"
    return redirect(f"/dashboard/subscriptions/{subscription_id}", notice=notice)
