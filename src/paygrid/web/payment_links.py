"""A payment link's public pages: ``/l/{slug}`` opens a checkout session and shows it
(``/l/{slug}/c/{session}``), the page's form pays it (the completion slot first), and the
customer lands on the link's redirect or its hosted confirmation. An inactive, expired or
exhausted link is a 410 page.

Card data never reaches these routes: the page's script (the hosted checkout's) tokenizes
it at ``/v1/payment_methods`` with the merchant's publishable key."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from paygrid.api.dependencies import deps_of
from paygrid.dependencies import Deps
from paygrid.domain.card_numbers import refuse_card_number
from paygrid.domain.checkout import CheckoutSessionStatus
from paygrid.domain.errors import PaygridError
from paygrid.domain.payment_links import UNAVAILABLE_MESSAGES, Availability
from paygrid.money import format_display, get_currency
from paygrid.services import checkout_pages, payment_link_checkout, payment_link_payments
from paygrid.services.audit_actor import act_as_checkout_customer
from paygrid.services.checkout import Outcome, Result, SessionRow
from paygrid.services.checkout_sessions import hosted_page_key
from paygrid.services.payment_link_checkout import LinkRow, PaymentLinkUnavailable
from paygrid.web.checkout import NO_STORE, FormTokenInvalid, templates

router = APIRouter(include_in_schema=False)


@router.get("/l/{slug}", response_class=HTMLResponse)
async def open_link(request: Request, slug: str) -> Response:
    """Each visit opens its own checkout session, then shows it."""
    deps = deps_of(request)
    link = await payment_link_checkout.link_by_slug(deps, slug)
    if link is None:
        return _missing(request)
    try:
        session = await payment_link_checkout.open_session(deps, link)
    except PaymentLinkUnavailable:
        return await _gone(request, link)
    return RedirectResponse(f"/l/{slug}/c/{session.id}", status_code=303, headers=NO_STORE)


@router.get("/l/{slug}/c/{session_id}", response_class=HTMLResponse)
async def link_page(request: Request, slug: str, session_id: str) -> Response:
    deps = deps_of(request)
    found = await _session(deps, slug, session_id)
    if found is None:
        return _missing(request)
    link, session = found
    if session.status is CheckoutSessionStatus.COMPLETE:
        return _success(request, link, session)
    if await payment_link_checkout.link_status(deps, link) is not Availability.AVAILABLE:
        return await _gone(request, link)
    return await _page(request, link, session)


@router.post("/l/{slug}/c/{session_id}/pay")
async def pay(request: Request, slug: str, session_id: str) -> Response:
    deps = deps_of(request)
    found = await _session(deps, slug, session_id)
    if found is None:
        return _missing(request)
    link, session = found
    fields = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if not hmac.compare_digest(fields.get("form_token", ""), session.form_token):
        return await _page(request, link, session, error=FormTokenInvalid())
    if session.status is CheckoutSessionStatus.COMPLETE:
        return _success(request, link, session)
    act_as_checkout_customer(session_id)
    try:
        refuse_card_number(fields.get("email"), "email")
        outcome = await payment_link_payments.pay(
            deps,
            link,
            session,
            payment_method=fields.get("payment_method") or None,
            email=fields.get("email"),
            return_url=f"{deps.settings.base_url()}/l/{slug}/c/{session_id}/return",
        )
    except PaymentLinkUnavailable as error:
        return await _gone(request, link, error.message)
    except PaygridError as error:
        current = await checkout_pages.session_as_stored(deps, session_id)
        assert current is not None
        return await _page(request, link, current, error=error)
    return await _outcome(request, link, outcome)


@router.get("/l/{slug}/c/{session_id}/return")
async def link_return(request: Request, slug: str, session_id: str) -> Response:
    """Back from 3-D Secure (through ``/payments/{id}/return``)."""
    deps = deps_of(request)
    found = await _session(deps, slug, session_id)
    if found is None:
        return _missing(request)
    link, session = found
    act_as_checkout_customer(session_id)
    try:
        outcome = await payment_link_payments.returned(deps, link, session)
    except PaygridError as error:
        return await _page(request, link, session, error=error)
    return await _outcome(request, link, outcome)


@router.get("/l/{slug}/c/{session_id}/complete", response_class=HTMLResponse)
async def confirmation(request: Request, slug: str, session_id: str) -> Response:
    """The hosted confirmation of a paid session."""
    deps = deps_of(request)
    found = await _session(deps, slug, session_id)
    if found is None:
        return _missing(request)
    link, session = found
    if session.status is not CheckoutSessionStatus.COMPLETE:
        return RedirectResponse(f"/l/{slug}/c/{session_id}", status_code=303, headers=NO_STORE)
    return templates.TemplateResponse(
        request,
        "payment_link_done.html",
        await _context(deps, link, session),
        headers=NO_STORE,
    )


async def _session(deps: Deps, slug: str, session_id: str) -> tuple[LinkRow, SessionRow] | None:
    link = await payment_link_checkout.link_by_slug(deps, slug)
    if link is None:
        return None
    found = await payment_link_checkout.session_of_link(deps, link, session_id)
    return None if found is None else (link, found[0])


def _script_asked(request: Request) -> bool:
    return request.method == "POST" and "application/json" in request.headers.get("accept", "")


def _success(request: Request, link: LinkRow, session: SessionRow) -> Response:
    if _script_asked(request):
        return JSONResponse({"navigate": session.success_url}, headers=NO_STORE)
    return RedirectResponse(session.success_url, status_code=303, headers=NO_STORE)


async def _outcome(request: Request, link: LinkRow, outcome: Outcome) -> Response:
    session = outcome.session
    page = f"/l/{link.slug}/c/{session.id}"
    match outcome.result:
        case Result.SUCCEEDED:
            return _success(request, link, session)
        case Result.REDIRECT:
            assert outcome.url is not None
            if _script_asked(request):
                return JSONResponse({"navigate": outcome.url}, headers=NO_STORE)
            return RedirectResponse(outcome.url, status_code=303, headers=NO_STORE)
        case Result.PROCESSING:
            if _script_asked(request):
                return JSONResponse({"navigate": f"{page}/return"}, headers=NO_STORE)
            return await _page(request, link, session, processing=True)
        case Result.DECLINED | Result.UNPAID:
            return await _page(
                request,
                link,
                session,
                message=outcome.message,
                status_code=402 if outcome.result is Result.DECLINED else 200,
            )


async def _page(
    request: Request,
    link: LinkRow,
    session: SessionRow,
    *,
    error: PaygridError | None = None,
    message: str | None = None,
    processing: bool = False,
    status_code: int = 200,
) -> Response:
    deps = deps_of(request)
    if session.status is CheckoutSessionStatus.EXPIRED:
        message = "This checkout has expired. Open the payment link again to pay."
        return await _gone(request, link, message, expired_session=True)
    text = message or (error.message if error is not None else None)
    if error is not None:
        status_code = error.status_code
    if _script_asked(request):
        if text is None:
            return JSONResponse({"navigate": f"/l/{link.slug}/c/{session.id}"}, headers=NO_STORE)
        return JSONResponse({"error": text}, status_code=status_code, headers=NO_STORE)
    context = await _context(deps, link, session)
    context.update(error=text, processing=processing)
    context["publishable_key"] = await hosted_page_key(deps, session.merchant_id, session.livemode)
    return templates.TemplateResponse(
        request, "payment_link.html", context, status_code=status_code, headers=NO_STORE
    )


async def _context(deps: Deps, link: LinkRow, session: SessionRow) -> dict[str, Any]:
    return {
        "link": link,
        "session": session,
        "merchant_name": await checkout_pages.merchant_name(deps, link.merchant_id),
        "amount": format_display(session.amount, get_currency(session.currency)),
        "recurring": link.recurring_interval,
        "error": None,
        "processing": False,
    }


async def _gone(
    request: Request, link: LinkRow, message: str | None = None, *, expired_session: bool = False
) -> Response:
    """HTTP 410 with a page that says why (inactive, expired, exhausted)."""
    deps = deps_of(request)
    if message is None:
        state = await payment_link_checkout.link_status(deps, link)
        message = UNAVAILABLE_MESSAGES.get(state, UNAVAILABLE_MESSAGES[Availability.EXHAUSTED])
    if _script_asked(request):
        return JSONResponse({"error": message}, status_code=410, headers=NO_STORE)
    context = {
        "message": message,
        "merchant_name": await checkout_pages.merchant_name(deps, link.merchant_id),
        "again": f"/l/{link.slug}" if expired_session else None,
    }
    return templates.TemplateResponse(
        request, "payment_link_gone.html", context, status_code=410, headers=NO_STORE
    )


def _missing(request: Request) -> Response:
    return templates.TemplateResponse(
        request, "checkout_missing.html", {}, status_code=404, headers=NO_STORE
    )
