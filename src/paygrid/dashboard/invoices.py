"""Invoice pages: a list filterable by status and customer, and an invoice with its lines,
totals and payment attempts, with finalize, pay, void and mark uncollectible for roles that
may (``invoices:write``), through the same use cases as ``/v1/invoices``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.dependencies import deps_of
from paygrid.dashboard import forms as form_input
from paygrid.dashboard.rendering import DashboardRoute, redirect, render
from paygrid.dashboard.sessions import Viewer, current_viewer, form_viewer
from paygrid.domain import invoices as domain
from paygrid.domain.invoices import InvoiceAction, InvoiceStatus
from paygrid.schemas.invoices import InvoicePay
from paygrid.services.billing import invoice_attempts, invoice_payments, invoices
from paygrid.services.billing.dunning import history as dunning_history

router = APIRouter(route_class=DashboardRoute)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
Posted = Annotated[Viewer, Depends(form_viewer)]
NOTICES = {
    "finalized": "Finalized: it has its number and can be paid.",
    "paid": "Paid.",
    "voided": "Voided.",
    "uncollectible": "Marked uncollectible: it can still be paid or voided.",
}


@router.get("/invoices")
async def invoice_list(
    request: Request,
    viewer: SignedIn,
    status: str | None = None,
    customer: str | None = None,
    after: str | None = None,
    before: str | None = None,
) -> Response:
    viewer.require("invoices:read")
    where = form_input.cursor(after, before)
    wanted = InvoiceStatus(status) if status in tuple(InvoiceStatus) else None
    wanted_customer = form_input.text(customer, 64)
    rows, has_more = await invoices.list_invoices(
        deps_of(request), viewer.tenant, where.page(), customer=wanted_customer, status=wanted
    )
    filters = {"status": "" if wanted is None else wanted.value, "customer": wanted_customer or ""}
    return render(
        request,
        "invoices.html",
        {
            "invoices": rows,
            "statuses": list(InvoiceStatus),
            "filters": filters,
            "params": {k: v for k, v in filters.items() if v},
            "pager": form_input.pager([i.id for i in rows], has_more, where),
        },
    )


@router.get("/invoices/{invoice_id}")
async def invoice_detail(
    request: Request, invoice_id: str, viewer: SignedIn, notice: str | None = None
) -> Response:
    viewer.require("invoices:read")
    deps, tenant = deps_of(request), viewer.tenant
    invoice = await invoices.get_invoice(deps, tenant, invoice_id)
    allowed = {
        action.value: invoice.status in domain.allowed_sources(action) for action in InvoiceAction
    }
    return render(
        request,
        "invoice.html",
        {
            "invoice": invoice,
            "attempts": await invoice_attempts.attempt_payments(deps, tenant, invoice.id),
            "dunning": await dunning_history.attempt_history(deps, tenant, invoice.id),
            "allowed": allowed,
            "notice": NOTICES.get(notice or ""),
        },
    )


@router.post("/invoices/{invoice_id}/finalize")
async def finalize(request: Request, invoice_id: str, viewer: Posted) -> Response:
    viewer.require("invoices:write")
    await invoices.finalize_invoice(deps_of(request), viewer.tenant, invoice_id)
    return redirect(f"/dashboard/invoices/{invoice_id}", notice="finalized")


@router.post("/invoices/{invoice_id}/pay")
async def pay(request: Request, invoice_id: str, viewer: Posted) -> Response:
    viewer.require("invoices:write")
    form_input.require_confirmation(await form_input.fields(request), "pay this invoice")
    # Keyed by the invoice and its attempt: submitting twice charges once.
    await invoice_payments.pay_invoice(deps_of(request), viewer.tenant, invoice_id, InvoicePay())
    return redirect(f"/dashboard/invoices/{invoice_id}", notice="paid")


@router.post("/invoices/{invoice_id}/void")
async def void(request: Request, invoice_id: str, viewer: Posted) -> Response:
    viewer.require("invoices:write")
    form_input.require_confirmation(await form_input.fields(request), "void this invoice")
    await invoices.void_invoice(deps_of(request), viewer.tenant, invoice_id)
    return redirect(f"/dashboard/invoices/{invoice_id}", notice="voided")


@router.post("/invoices/{invoice_id}/mark_uncollectible")
async def mark_uncollectible(request: Request, invoice_id: str, viewer: Posted) -> Response:
    viewer.require("invoices:write")
    form = await form_input.fields(request)
    form_input.require_confirmation(form, "mark this invoice uncollectible")
    await invoices.mark_uncollectible(deps_of(request), viewer.tenant, invoice_id)
    return redirect(f"/dashboard/invoices/{invoice_id}", notice="uncollectible")
