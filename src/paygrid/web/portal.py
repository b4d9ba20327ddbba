"""The customer billing portal a customer's browser visits at ``/p/{token}`` (issue 14 §4):
the customer's subscriptions, invoices and saved cards; add a card, choose the default,
cancel a subscription at the end of its period.

The link's token is the capability; the first browser to open it gets an HttpOnly cookie,
and every later request needs both. Each form carries the session's CSRF token. Card data
never reaches these routes: the page's script (the checkout's, ``checkout-page.js``)
tokenizes it at ``/v1/payment_methods`` and posts only the ``pm_...``."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from paygrid.api.dependencies import deps_of
from paygrid.dependencies import Deps
from paygrid.domain.errors import PaygridError
from paygrid.services.billing_portal import actions as portal_actions
from paygrid.services.billing_portal import cards as portal_cards
from paygrid.services.billing_portal import sessions as portal_sessions
from paygrid.services.billing_portal.cards import Browser, CardOutcome, CardResult
from paygrid.services.billing_portal.sessions import Entered, Entry, PortalAccess
from paygrid.web import portal_page
from paygrid.web.checkout import FormTokenInvalid

WEB = Path(__file__).parent
templates = Jinja2Templates(directory=str(WEB / "templates"))
router = APIRouter(include_in_schema=False)

COOKIE = "paygrid_portal"
MAX_TOKEN = 100  # longer than any token paygrid makes: not looked up
NO_STORE = {"Cache-Control": "no-store"}
NOTICES = {
    "default": "Your default payment method was updated.",
    "card": "Your card was saved and is now your default payment method.",
    "canceled": "Your subscription will be cancelled at the end of its current period.",
}
Action = Callable[[Deps, PortalAccess, str], Awaitable[None]]


@router.get("/static/portal.css")
async def stylesheet() -> Response:
    return FileResponse(
        WEB / "static" / "portal.css",
        media_type="text/css",
        headers={"Cache-Control": "max-age=300"},
    )


@router.get("/p/{token}", response_class=HTMLResponse)
async def show_portal(request: Request, token: str, done: str | None = None) -> Response:
    entered = await _enter(request, token, may_open=True)
    if entered.access is None:
        return _refused(request, entered)
    response = await portal_page.render(
        request, token, entered.access, notice=NOTICES.get(done or "")
    )
    if entered.new_browser_secret is not None:
        _set_cookie(request, response, token, entered.new_browser_secret)
    return response


@router.post("/p/{token}/default")
async def set_default(request: Request, token: str) -> Response:
    """Make one of the customer's saved cards the default (``payment_method``)."""
    return await _act(
        request, token, "default", portal_actions.set_default_method, "payment_method"
    )


@router.post("/p/{token}/cancel")
async def cancel(request: Request, token: str) -> Response:
    """Cancel one of the customer's subscriptions (``subscription``) at its period's end."""
    return await _act(
        request, token, "canceled", portal_actions.cancel_at_period_end, "subscription"
    )


@router.post("/p/{token}/cards")
async def add_card(request: Request, token: str) -> Response:
    """The card form (posted by ``checkout-page.js``, which asks for JSON): save the
    tokenized card and make it the default, through 3-D Secure when the card needs it."""
    entered = await _enter(request, token, may_open=False)
    fields = await _fields(request)
    if entered.access is None:
        return _refused(request, entered)
    access = entered.access
    if not _csrf_ok(access, fields):
        return await _answer(request, token, access, FormTokenInvalid())
    payment_method = fields.get("payment_method") or ""
    if not payment_method:
        error = "Adding a card needs JavaScript; enable it and try again."
        return await _answer(request, token, access, error)
    browser = Browser(
        request.client.host if request.client is not None else None,
        request.headers.get("user-agent"),
    )
    return_url = f"{deps_of(request).settings.base_url()}/p/{token}/cards/return"
    try:
        outcome = await portal_cards.add_card(
            deps_of(request), access, payment_method, return_url, browser
        )
    except PaygridError as error:
        return await _answer(request, token, access, error)
    return await _card_outcome(request, token, access, outcome)


@router.get("/p/{token}/cards/return")
async def card_return(request: Request, token: str, setup_intent: str = "") -> Response:
    """Back from 3-D Secure: only a setup this session started is looked at."""
    entered = await _enter(request, token, may_open=False)
    if entered.access is None:
        return _refused(request, entered)
    try:
        outcome = await portal_cards.card_returned(deps_of(request), entered.access, setup_intent)
    except PaygridError as error:
        return await _answer(request, token, entered.access, error)
    return await _card_outcome(request, token, entered.access, outcome)


async def _card_outcome(
    request: Request, token: str, access: PortalAccess, outcome: CardOutcome
) -> Response:
    match outcome.result:
        case CardResult.SAVED:
            return _go(request, f"/p/{token}?done=card")
        case CardResult.REDIRECT:
            assert outcome.url is not None
            return _go(request, outcome.url)
        case CardResult.DECLINED:
            return await _answer(request, token, access, outcome.message, status_code=402)
        case CardResult.PROCESSING:
            message = "Your bank is still checking the card. Reload this page in a moment."
            return await _answer(request, token, access, message, status_code=202)


async def _act(request: Request, token: str, done: str, action: Action, param: str) -> Response:
    entered = await _enter(request, token, may_open=False)
    fields = await _fields(request)
    if entered.access is None:
        return _refused(request, entered)
    access = entered.access
    if not _csrf_ok(access, fields):
        return await _answer(request, token, access, FormTokenInvalid())
    try:
        await action(deps_of(request), access, fields.get(param) or "")
    except PaygridError as error:
        return await _answer(request, token, access, error)
    return _go(request, f"/p/{token}?done={done}")


async def _enter(request: Request, token: str, *, may_open: bool) -> Entered:
    if len(token) > MAX_TOKEN:
        return Entered(Entry.MISSING)
    cookie = request.cookies.get(COOKIE)
    return await portal_sessions.enter(deps_of(request), token, cookie, may_open=may_open)


async def _fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _csrf_ok(access: PortalAccess, fields: dict[str, str]) -> bool:
    return hmac.compare_digest(fields.get("form_token", "").encode(), access.csrf_token.encode())


def _script_asked(request: Request) -> bool:
    """The card form's script posts with ``Accept: application/json`` (as on checkout)."""
    return request.method == "POST" and "application/json" in request.headers.get("accept", "")


def _go(request: Request, url: str) -> Response:
    if _script_asked(request):
        return JSONResponse({"navigate": url}, headers=NO_STORE)
    return RedirectResponse(url, status_code=303, headers=NO_STORE)


async def _answer(
    request: Request,
    token: str,
    access: PortalAccess,
    error: PaygridError | str | None,
    status_code: int = 200,
) -> Response:
    """The page again with ``error`` shown (or, to the card form's script, the error)."""
    message = error.message if isinstance(error, PaygridError) else error
    if isinstance(error, PaygridError):
        status_code = error.status_code
    if _script_asked(request):
        return JSONResponse({"error": message}, status_code=status_code, headers=NO_STORE)
    return await portal_page.render(request, token, access, error=message, status_code=status_code)


def _refused(request: Request, entered: Entered) -> Response:
    """The page for a link that does not lead to a portal (any more, or for this browser)."""
    match entered.entry:
        case Entry.EXPIRED:
            name, status = "portal_expired.html", 410
        case Entry.FOREIGN:
            name, status = "portal_foreign.html", 403
        case _:
            name, status = "portal_missing.html", 404
    if _script_asked(request):
        message = "This billing session has ended. Reload the page."
        return JSONResponse({"error": message}, status_code=status, headers=NO_STORE)
    context = {"return_url": entered.return_url}
    return templates.TemplateResponse(request, name, context, status_code=status, headers=NO_STORE)


def _set_cookie(request: Request, response: Response, token: str, secret: str) -> None:
    secure = deps_of(request).settings.base_url().startswith("https://")
    response.set_cookie(
        COOKIE,
        secret,
        path=f"/p/{token}",
        httponly=True,
        secure=secure,
        samesite="lax",  # sent when 3-D Secure brings the customer back
    )
