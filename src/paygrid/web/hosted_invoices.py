"""The hosted invoice page a customer's browser visits (``/i/{token}``, the address in
``hosted_invoice_url``): the invoice, paying it with the saved card or a new one (3-D
Secure included, back at ``/i/{token}/return``) and its PDF (``/i/{token}/pdf``). The
token is the only credential; forms carry the page's CSRF token, as checkout's do.

Card data never reaches these routes: the page's script (checkout-page.js, the checkout's
tokenizer) tokenizes it at ``/v1/payment_methods`` with the merchant's publishable key and
posts only the ``pm_...``."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from paygrid.api.dependencies import deps_of
from paygrid.domain.errors import PaygridError
from paygrid.domain.invoices import InvoiceStatus
from paygrid.services.audit_actor import act_as_invoice_customer
from paygrid.services.billing import hosted_invoice_payments, hosted_invoice_pdfs
from paygrid.services.billing.hosted_invoice_pages import InvoicePage, page_for
from paygrid.services.billing.hosted_invoice_payments import PageOutcome, PageResult
from paygrid.services.checkout_sessions import hosted_page_key
from paygrid.web.checkout import NO_STORE, FormTokenInvalid, templates
from paygrid.web.invoice_pdf import render_pdf

router = APIRouter(include_in_schema=False)
MAKE_DEFAULT = "make_default"

STATUS_TEXT = {
    InvoiceStatus.OPEN: "Open: this invoice is waiting for payment.",
    InvoiceStatus.PAID: "Paid. Thank you!",
    InvoiceStatus.VOID: "Void: this invoice was canceled and is not due.",
    InvoiceStatus.UNCOLLECTIBLE: "Past due: this invoice is still waiting for payment.",
    InvoiceStatus.DRAFT: "Draft",
}


@router.get("/i/{token}", response_class=HTMLResponse)
async def invoice_page(request: Request, token: str) -> Response:
    page = await page_for(deps_of(request), token)
    if page is None:
        return _not_found(request)
    return await _render(request, page)


@router.post("/i/{token}/pay")
async def pay(request: Request, token: str) -> Response:
    """The page's forms: ``method=card`` with the ``pm_...`` the page's script made, or
    ``method=saved`` for the saved card the page offered."""
    deps = deps_of(request)
    page = await page_for(deps, token)
    if page is None:
        return _not_found(request)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not hmac.compare_digest(fields.get("form_token", ""), page.form_token):
        return await _render(request, page, error=FormTokenInvalid().message, status_code=403)
    if not page.payable:
        return await _render(request, page)
    act_as_invoice_customer(page.invoice_id)
    method = fields.get("payment_method") if fields.get("method") == "card" else None
    # The new card's "make it my default" box, carried through 3-D Secure in the return URL.
    make_default = method is not None and fields.get("make_default") == "1"
    return_url = f"{deps.settings.base_url()}/i/{token}/return"
    if make_default:
        return_url += f"?{MAKE_DEFAULT}=1"
    try:
        outcome = await hosted_invoice_payments.pay_on_page(
            deps,
            page,
            payment_method=method or None,
            return_url=return_url,
            make_default=make_default,
        )
    except PaygridError as error:
        return await _after(request, token, PageOutcome(PageResult.DECLINED, message=error.message))
    return await _after(request, token, outcome)


@router.get("/i/{token}/return")
async def returned(request: Request, token: str) -> Response:
    """Back from 3-D Secure (through ``/payments/{id}/return``)."""
    deps = deps_of(request)
    page = await page_for(deps, token)
    if page is None:
        return _not_found(request)
    act_as_invoice_customer(page.invoice_id)
    try:
        make_default = request.query_params.get(MAKE_DEFAULT) == "1"
        outcome = await hosted_invoice_payments.returned(deps, page, make_default=make_default)
    except PaygridError as error:
        outcome = PageOutcome(PageResult.DECLINED, message=error.message)
    return await _after(request, token, outcome)


@router.get("/i/{token}/pdf")
async def invoice_pdf(request: Request, token: str) -> Response:
    deps = deps_of(request)
    page = await page_for(deps, token)
    if page is None:
        return _not_found(request)
    pdf = await hosted_invoice_pdfs.pdf_of(deps, page, render_pdf)
    filename = f"Invoice-{page.number}.pdf"
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{filename}"', **NO_STORE},
    )


def _script_asked(request: Request) -> bool:
    """checkout-page.js posts with ``Accept: application/json`` and shows errors in place."""
    return "application/json" in request.headers.get("accept", "")


async def _after(request: Request, token: str, outcome: PageOutcome) -> Response:
    """Where the customer goes after paying: to 3-D Secure, or back to the page."""
    page_url = f"/i/{token}"
    target = outcome.url if outcome.result is PageResult.REDIRECT and outcome.url else page_url
    if outcome.result is PageResult.PENDING:
        target = f"/i/{token}/return"
    if outcome.result is PageResult.DECLINED and outcome.message:
        if _script_asked(request):
            return JSONResponse({"error": outcome.message}, status_code=402, headers=NO_STORE)
        page = await page_for(deps_of(request), token)
        assert page is not None
        return await _render(request, page, error=outcome.message, status_code=402)
    if _script_asked(request):
        return JSONResponse({"navigate": target}, headers=NO_STORE)
    if outcome.result is PageResult.PENDING and request.url.path.endswith("/return"):
        page = await page_for(deps_of(request), token)
        assert page is not None
        return await _render(request, page, processing=True)
    return RedirectResponse(target, status_code=303, headers=NO_STORE)


async def _render(
    request: Request,
    page: InvoicePage,
    *,
    error: str | None = None,
    processing: bool = False,
    status_code: int = 200,
) -> Response:
    if _script_asked(request) and request.method == "POST":
        if error is None:
            return JSONResponse({"navigate": f"/i/{page.token}"}, headers=NO_STORE)
        return JSONResponse({"error": error}, status_code=status_code, headers=NO_STORE)
    deps = deps_of(request)
    context: dict[str, Any] = {
        "page": page,
        "status_text": STATUS_TEXT[page.status],
        "error": error,
        "processing": processing,
        "publishable_key": await hosted_page_key(deps, page.merchant_id, page.livemode)
        if page.payable
        else None,
    }
    return templates.TemplateResponse(
        request, "hosted_invoice.html", context, status_code=status_code, headers=NO_STORE
    )


def _not_found(request: Request) -> Response:
    return templates.TemplateResponse(
        request, "hosted_invoice_missing.html", {}, status_code=404, headers=NO_STORE
    )
