"""Payments pages: search and filters, a payment's timeline, and capture / void / refund
through the same services as the API."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.dependencies import deps_of
from paygrid.dashboard import forms as form_input
from paygrid.dashboard.rendering import DashboardRoute, redirect, render
from paygrid.dashboard.sessions import Viewer, current_viewer, form_viewer
from paygrid.dashboard.states import SHOWN_STATES, shown_state
from paygrid.dependencies import Deps
from paygrid.domain.errors import InvalidRequest, ResourceMissing
from paygrid.domain.pagination import PageRequest
from paygrid.domain.payments import PaymentStatus
from paygrid.money import CURRENCIES, get_currency
from paygrid.schemas.common import DeletedObject
from paygrid.schemas.customers import Customer
from paygrid.schemas.payments import Payment
from paygrid.schemas.refunds import RefundCreate
from paygrid.services import (
    customers,
    dashboard_payments,
    payment_methods,
    refunds,
    timelines,
)
from paygrid.services import payments as payment_service
from paygrid.services.context import Tenant

router = APIRouter(route_class=DashboardRoute)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
Posted = Annotated[Viewer, Depends(form_viewer)]
VOIDABLE = frozenset(
    {
        PaymentStatus.REQUIRES_PAYMENT_METHOD,
        PaymentStatus.REQUIRES_CONFIRMATION,
        PaymentStatus.REQUIRES_ACTION,
        PaymentStatus.REQUIRES_CAPTURE,
    }
)
REFUND_REASONS = ("requested_by_customer", "duplicate", "fraudulent")
CARD_BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express"}
NOTICES = {
    "captured": "Payment captured.",
    "voided": "Payment voided.",
    "refunded": "Refund created.",
}


@router.get("/payments")
async def payment_list(
    request: Request,
    viewer: SignedIn,
    q: str | None = None,
    status: str | None = None,
    currency: str | None = None,
    connector: str | None = None,
    created_from: str | None = None,
    created_to: str | None = None,
    after: str | None = None,
    before: str | None = None,
) -> Response:
    viewer.require("payments:read")
    deps, tenant = deps_of(request), viewer.tenant
    query = form_input.text(q)
    wanted_status = status if status in SHOWN_STATES else None
    wanted_currency = currency.upper() if currency and currency.upper() in CURRENCIES else None
    where = form_input.cursor(after, before)
    search = dashboard_payments.PaymentSearch(
        query=query,
        amounts=tuple(form_input.amounts_matching(query)) if query else (),
        status=wanted_status,
        currency=wanted_currency,
        connector=form_input.text(connector, 32),
        created_gte=form_input.day(created_from),
        created_lte=form_input.day(created_to, end=True),
    )
    rows, has_more = await dashboard_payments.search_payments(deps, tenant, where.page(), search)
    filters = {
        "q": query or "",
        "status": wanted_status or "",
        "currency": wanted_currency or "",
        "connector": connector or "",
        "created_from": created_from or "",
        "created_to": created_to or "",
    }
    return render(
        request,
        "payments.html",
        {
            "payments": rows,
            "pager": form_input.pager([r.id for r in rows], has_more, where),
            "filters": filters,
            "statuses": SHOWN_STATES,
            "currencies": sorted(CURRENCIES),
            "connectors": await dashboard_payments.payment_connectors(deps, tenant),
        },
    )


@router.get("/payments/{payment_id}")
async def payment_detail(
    request: Request, payment_id: str, viewer: SignedIn, notice: str | None = None
) -> Response:
    viewer.require("payments:read")
    deps, tenant = deps_of(request), viewer.tenant
    payment = await payment_service.get_payment(deps, tenant, payment_id)
    payment_refunds, _ = await refunds.list_refunds(
        deps, tenant, PageRequest(limit=100), payment.id
    )
    return render(
        request,
        "payment.html",
        {
            "payment": payment,
            "state": shown_state(payment.status, payment.amount_received, payment.amount_refunded),
            "card": await _card(deps, tenant, payment.payment_method),
            "customer": await _customer(deps, viewer, payment.customer),
            "refunds": payment_refunds,
            "timeline": await _timeline(request, viewer, payment, [r.id for r in payment_refunds]),
            "notice": NOTICES.get(notice or ""),
            "can_capture": payment.status == PaymentStatus.REQUIRES_CAPTURE,
            "can_void": payment.status in VOIDABLE,
            "refundable": payment.amount_received - payment.amount_refunded,
            "reasons": REFUND_REASONS,
            "idempotency_key": secrets.token_urlsafe(16),
        },
    )


async def _card(deps: Deps, tenant: Tenant, payment_method: str | None) -> str | None:
    """``Visa •••• 4242, expires 12/2030``, or None without a payment method (a failed
    attempt detaches it)."""
    if payment_method is None:
        return None
    try:
        card = (await payment_methods.get_payment_method(deps, tenant, payment_method)).card
    except ResourceMissing:
        return None
    brand = CARD_BRANDS.get(card.brand, card.brand.capitalize())
    return f"{brand} •••• {card.last4}, expires {card.exp_month:02d}/{card.exp_year}"


async def _customer(
    deps: Deps, viewer: Viewer, customer_id: str | None
) -> Customer | DeletedObject | None:
    """The payment's customer, when the viewer may read customers."""
    if customer_id is None or not viewer.can("customers:read"):
        return None
    try:
        return await customers.get_customer(deps, viewer.tenant, customer_id)
    except ResourceMissing:
        return None


async def _timeline(
    request: Request, viewer: Viewer, payment: Payment, refund_ids: list[str]
) -> list[dict[str, Any]]:
    """Attempts, events and webhook deliveries of a payment (and its refunds), oldest first."""
    deps, tenant = deps_of(request), viewer.tenant
    items: list[dict[str, Any]] = [
        {
            "at": a.created,
            "kind": "Attempt",
            "what": f"{a.operation} via {a.connector}",
            "status": a.status,
            "detail": a.error_message or a.decline_code or "",
            "id": a.id,
        }
        for a in payment.attempts
    ]
    events = await timelines.events_about(deps, tenant, [payment.id, *refund_ids])
    items += [
        {
            "at": e.created_at,
            "kind": "Event",
            "what": e.type,
            "status": "",
            "detail": "",
            "id": e.id,
        }
        for e in events
    ]
    if viewer.can("webhooks:read"):
        deliveries = await timelines.deliveries_of(deps, events)
        items += [
            {
                "at": d.created_at,
                "kind": "Webhook delivery",
                "what": d.url,
                "status": d.status,
                "detail": f"{d.attempt_count} attempt(s)",
                "id": d.id,
            }
            for d in deliveries
        ]
    for item in items:
        at = item["at"]
        item["sort"] = at if isinstance(at, int) else int(at.timestamp())
    return sorted(items, key=lambda i: (i["sort"], i["id"]))


@router.post("/payments/{payment_id}/capture")
async def capture(request: Request, payment_id: str, viewer: Posted) -> Response:
    viewer.require("payments:write")
    form = await form_input.fields(request)
    form_input.require_confirmation(form, "capture this payment")
    deps = deps_of(request)
    payment = await payment_service.get_payment(deps, viewer.tenant, payment_id)
    amount = form_input.amount(form.get("amount"), get_currency(payment.currency))
    await payment_service.capture_payment(deps, viewer.tenant, payment.id, amount)
    return redirect(f"/dashboard/payments/{payment.id}", notice="captured")


@router.post("/payments/{payment_id}/void")
async def void(request: Request, payment_id: str, viewer: Posted) -> Response:
    viewer.require("payments:write")
    form = await form_input.fields(request)
    form_input.require_confirmation(form, "void this payment")
    reason = form.get("reason") or None
    if reason not in (None, *REFUND_REASONS, "abandoned"):
        raise InvalidRequest("Choose one of the listed reasons.", param="reason")
    payment = await payment_service.cancel_payment(
        deps_of(request), viewer.tenant, payment_id, reason
    )
    return redirect(f"/dashboard/payments/{payment.id}", notice="voided")


@router.post("/payments/{payment_id}/refund")
async def refund(request: Request, payment_id: str, viewer: Posted) -> Response:
    viewer.require("refunds:write")
    form = await form_input.fields(request)
    form_input.require_confirmation(form, "refund this payment")
    deps = deps_of(request)
    payment = await payment_service.get_payment(deps, viewer.tenant, payment_id)
    reason = form.get("reason") or None
    if reason not in (None, *REFUND_REASONS):
        raise InvalidRequest("Choose one of the listed reasons.", param="reason")
    params = RefundCreate.model_validate(
        {
            "payment": payment.id,
            "amount": form_input.amount(form.get("amount"), get_currency(payment.currency)),
            "reason": reason,
        }
    )
    key = form.get("idempotency_key") or None
    await refunds.create_refund(deps, viewer.tenant, params, f"dashboard:{key}" if key else None)
    return redirect(f"/dashboard/payments/{payment.id}", notice="refunded")
