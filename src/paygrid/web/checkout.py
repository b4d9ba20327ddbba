"""The hosted checkout page a customer's browser visits: show the session, take a payment,
come back from 3-D Secure or a provider's page, and report the end (a redirect to the
merchant, or, inside checkout.js's iframe, a postMessage to the merchant's page).

Card data never reaches these routes: the page's script tokenizes it at
``/v1/payment_methods`` with the merchant's publishable key and posts only the ``pm_...``.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from fastapi.templating import Jinja2Templates

from paygrid.api.dependencies import deps_of
from paygrid.dependencies import Deps
from paygrid.domain.card_numbers import refuse_card_number
from paygrid.domain.checkout import CheckoutSessionStatus
from paygrid.domain.errors import InvalidRequest, PaygridError, PermissionDenied
from paygrid.money import format_display, get_currency
from paygrid.services import checkout, checkout_pages
from paygrid.services.audit_actor import act_as_checkout_customer
from paygrid.services.checkout import Outcome, Result
from paygrid.services.checkout_sessions import hosted_page_key

WEB = Path(__file__).parent
templates = Jinja2Templates(directory=str(WEB / "templates"))
router = APIRouter(include_in_schema=False)

# Static files paygrid serves (committed; no build step), by URL.
ASSETS: dict[str, tuple[str, str]] = {
    "/js/checkout.js": ("checkout.js", "text/javascript"),
    "/static/checkout-page.js": ("checkout-page.js", "text/javascript"),
    "/static/checkout.css": ("checkout.css", "text/css"),
    "/static/demo-store.js": ("demo-store.js", "text/javascript"),
}
NO_STORE = {"Cache-Control": "no-store"}
METHOD_LABELS = {
    "bank": "Bank account",
    "bank_transfer": "Bank transfer",
    "ussd": "USSD",
    "mobile_money": "Mobile money",
    "qr": "QR code",
}


class FormTokenInvalid(PermissionDenied):
    """This form is out of date; reload the page and try again."""

    default_code = "form_token_invalid"


def _asset(request: Request) -> Response:
    name, media_type = ASSETS[request.url.path]
    return FileResponse(
        WEB / "static" / name, media_type=media_type, headers={"Cache-Control": "max-age=300"}
    )


for _path in ASSETS:
    router.add_api_route(_path, _asset, methods=["GET"])


@router.get("/checkout/{session_id}", response_class=HTMLResponse)
async def checkout_page(request: Request, session_id: str, embed: str | None = None) -> Response:
    deps = deps_of(request)
    session = await checkout_pages.session_for_page(deps, session_id)
    if session is None:
        return _not_found(request)
    if session.status is CheckoutSessionStatus.COMPLETE:
        return await _render_outcome(request, Outcome(Result.SUCCEEDED, session), embed == "1")
    return await _render_page(request, session, embed=embed == "1")


@router.post("/checkout/{session_id}/pay")
async def pay(request: Request, session_id: str) -> Response:
    """The page's form: ``method=card`` with a ``payment_method`` the page's script made, or
    ``method=redirect`` (no JavaScript needed) for the provider's hosted page."""
    deps = deps_of(request)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    embed = fields.get("embed") == "1"
    session = await checkout_pages.session_for_page(deps, session_id)
    if session is None:
        return _not_found(request)
    if not hmac.compare_digest(fields.get("form_token", ""), session.form_token):
        return await _render_page(request, session, embed=embed, error=FormTokenInvalid())
    if session.status is not CheckoutSessionStatus.OPEN:
        outcome = Outcome(
            Result.SUCCEEDED if session.status is CheckoutSessionStatus.COMPLETE else Result.UNPAID,
            session,
        )
        return await _render_outcome(request, outcome, embed)
    act_as_checkout_customer(session_id)
    payment_method = fields.get("payment_method") or None
    if fields.get("method") == "redirect" and not checkout.redirect_types(session):
        error = InvalidRequest("This checkout takes cards only.")
        return await _render_page(request, session, embed=embed, error=error)
    if fields.get("method") != "redirect" and payment_method is None:
        error = InvalidRequest(
            "Card payments need JavaScript; enable it, or choose another way to pay."
        )
        return await _render_page(request, session, embed=embed, error=error)
    try:
        refuse_card_number(fields.get("email"), "email")
        outcome = await checkout.pay(
            deps,
            session,
            payment_method=payment_method if fields.get("method") != "redirect" else None,
            email=fields.get("email") or None,
            return_url=_return_url(deps, session_id, embed),
        )
    except PaygridError as error:
        current = await checkout_pages.session_as_stored(deps, session_id)
        assert current is not None
        return await _render_page(request, current, embed=embed, error=error)
    return await _render_outcome(request, outcome, embed)


@router.get("/checkout/{session_id}/return")
async def checkout_return(request: Request, session_id: str, embed: str | None = None) -> Response:
    """Back from 3-D Secure or the provider's page (through ``/payments/{id}/return``)."""
    deps = deps_of(request)
    session = await checkout_pages.session_as_stored(deps, session_id)
    if session is None:
        return _not_found(request)
    act_as_checkout_customer(session_id)
    try:
        outcome = await checkout.returned(deps, session)
    except PaygridError as error:
        return await _render_page(request, session, embed=embed == "1", error=error)
    return await _render_outcome(request, outcome, embed == "1")


def _return_url(deps: Deps, session_id: str, embed: bool) -> str:
    url = f"{deps.settings.base_url()}/checkout/{session_id}/return"
    return f"{url}?embed=1" if embed else url


def _script_asked(request: Request) -> bool:
    """The page's script posts its form with ``Accept: application/json``: it shows a decline
    in place, so the card details the customer typed stay in the form (they never reach us).
    Without script, the form posts as usual and gets a page."""
    return request.method == "POST" and "application/json" in request.headers.get("accept", "")


def _navigate(url: str) -> Response:
    """For the page's script: go on to this page (as the form's redirect would have)."""
    return JSONResponse({"navigate": url}, headers=NO_STORE)


async def _render_outcome(request: Request, outcome: Outcome, embed: bool) -> Response:
    session = outcome.session
    if _script_asked(request) and outcome.result in (Result.SUCCEEDED, Result.PROCESSING):
        if outcome.result is Result.PROCESSING:
            return _navigate(_return_url(deps_of(request), session.id, embed))
        if embed:  # the page of a complete session tells the merchant's page
            return _navigate(f"/checkout/{session.id}?embed=1")
        return _navigate(_with_query(session.success_url, session_id=session.id))
    match outcome.result:
        case Result.SUCCEEDED:
            if embed:
                return _done(request, session, "paygrid.checkout.succeeded")
            target = _with_query(session.success_url, session_id=session.id)
            return RedirectResponse(target, status_code=303, headers=NO_STORE)
        case Result.REDIRECT:
            assert outcome.url is not None
            if _script_asked(request):
                return _navigate(outcome.url)
            return RedirectResponse(outcome.url, status_code=303, headers=NO_STORE)
        case Result.DECLINED | Result.PROCESSING | Result.UNPAID:
            return await _render_page(
                request,
                session,
                embed=embed,
                message=outcome.message,
                processing=outcome.result is Result.PROCESSING,
                status_code=402 if outcome.result is Result.DECLINED else 200,
            )


def _done(request: Request, session: checkout.SessionRow, event: str) -> Response:
    """Inside checkout.js's iframe: a page whose script tells the merchant's page."""
    return templates.TemplateResponse(
        request,
        "checkout_done.html",
        {"session": session, "event": event},
        headers=NO_STORE,
    )


async def _render_page(
    request: Request,
    session: checkout.SessionRow,
    *,
    embed: bool,
    error: PaygridError | None = None,
    message: str | None = None,
    processing: bool = False,
    status_code: int = 200,
) -> Response:
    deps = deps_of(request)
    page = f"/checkout/{session.id}{'?embed=1' if embed else ''}"
    if session.status is CheckoutSessionStatus.EXPIRED:
        if _script_asked(request):
            return _navigate(page)
        return templates.TemplateResponse(
            request,
            "checkout_expired.html",
            await _context(deps, session, embed),
            status_code=410,
            headers=NO_STORE,
        )
    context = await _context(deps, session, embed)
    context["error"] = message or (error.message if error is not None else None)
    context["processing"] = processing
    if error is not None:
        status_code = error.status_code
    if _script_asked(request):
        if context["error"] is None:  # nothing to show in place: load the page afresh
            return _navigate(page)
        return JSONResponse({"error": context["error"]}, status_code=status_code, headers=NO_STORE)
    return templates.TemplateResponse(
        request, "checkout.html", context, status_code=status_code, headers=NO_STORE
    )


async def _context(deps: Deps, session: checkout.SessionRow, embed: bool) -> dict[str, Any]:
    redirect_types = checkout.redirect_types(session)
    return {
        "session": session,
        "merchant_name": await checkout_pages.merchant_name(deps, session.merchant_id),
        "amount": format_display(session.amount, get_currency(session.currency)),
        "embed": embed,
        "card": checkout.CARD in session.payment_method_types,
        "redirect_labels": [METHOD_LABELS.get(t, t) for t in redirect_types],
        "needs_email": bool(redirect_types)
        and session.customer_email is None
        and session.customer_id is None,
        "publishable_key": await hosted_page_key(deps, session.merchant_id, session.livemode)
        if checkout.CARD in session.payment_method_types
        else None,
        "cancel_url": session.cancel_url,
        "return_query": urlencode({"embed": "1"}) if embed else "",
        "error": None,
        "processing": False,
    }


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))


def _not_found(request: Request) -> Response:
    return templates.TemplateResponse(
        request, "checkout_missing.html", {}, status_code=404, headers=NO_STORE
    )
