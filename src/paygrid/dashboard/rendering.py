"""Turning dashboard routes into HTML responses: the templates, their filters, the headers
every page carries, and the route class that renders errors as pages."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import structlog
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from paygrid.dashboard import states
from paygrid.dashboard.sessions import LoginRequired, Viewer
from paygrid.domain.errors import PaygridError
from paygrid.money import CURRENCIES, format_minor

log = structlog.get_logger("paygrid.dashboard")
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
# Our stylesheet, forms posting to us, inline SVG charts; no scripts at all.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

# What a page names in the navigation, and the scope it needs to be listed.
NAV: tuple[tuple[str, str, str], ...] = (
    ("Overview", "/dashboard", "payments:read"),
    ("Payments", "/dashboard/payments", "payments:read"),
    ("Refunds", "/dashboard/refunds", "refunds:read"),
    ("Customers", "/dashboard/customers", "customers:read"),
    ("Subscriptions", "/dashboard/subscriptions", "invoices:read"),
    ("Invoices", "/dashboard/invoices", "invoices:read"),
    ("Billing settings", "/dashboard/billing_settings", "invoices:read"),
    ("Emails", "/dashboard/emails", "customers:read"),
    ("Products", "/dashboard/products", "products:read"),
    ("Payment links", "/dashboard/payment_links", "payment_links:read"),
    ("Reports", "/dashboard/reports", "reports:read"),
    ("Reconciliation", "/dashboard/reconciliation", "reconciliation:read"),
    ("Events", "/dashboard/events", "webhooks:read"),
    ("Webhooks", "/dashboard/webhooks", "webhooks:read"),
    ("Developers", "/dashboard/developers", "admin:read"),
    ("Audit log", "/dashboard/audit", "admin:read"),
)


def money(amount: int | None, currency: str) -> str:
    if amount is None:
        return ""
    known = CURRENCIES.get(currency.upper())
    return f"{format_minor(amount, known)} {currency}" if known else f"{amount} {currency}"


def when(value: datetime | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.0f}%"


templates.env.filters["money"] = money
templates.env.filters["when"] = when
templates.env.filters["percent"] = percent
templates.env.filters["label"] = states.label
templates.env.globals["shown_state"] = states.shown_state


def nav_for(viewer: Viewer | None) -> list[tuple[str, str]]:
    if viewer is None:
        return []
    return [(label, href) for label, href, scope in NAV if viewer.can(scope)]


def with_headers(response: Response) -> Response:
    response.headers.setdefault("content-security-policy", CSP)
    response.headers["cache-control"] = "no-store"
    return response


def render(
    request: Request, template: str, context: Mapping[str, Any], status_code: int = 200
) -> Response:
    viewer: Viewer | None = getattr(request.state, "dashboard_viewer", None)
    response = templates.TemplateResponse(
        request,
        template,
        {"viewer": viewer, "nav": nav_for(viewer), "path": request.url.path, **context},
        status_code=status_code,
    )
    return with_headers(response)


def redirect(path: str, **params: str | None) -> Response:
    query = urlencode({k: v for k, v in params.items() if v})
    return with_headers(RedirectResponse(f"{path}?{query}" if query else path, status_code=303))


def login_url(request: Request) -> str:
    target = request.url.path
    if request.url.query and request.method == "GET":
        target += "?" + request.url.query
    return "/dashboard/login?next=" + quote(target, safe="")


def render_error(request: Request, error: PaygridError) -> Response:
    return render(
        request,
        "error.html",
        {"status": error.status_code, "message": error.message, "code": error.code},
        status_code=error.status_code,
    )


class DashboardRoute(APIRoute):
    """Dashboard routes answer in HTML: no session sends the browser to the login page, and a
    refused or invalid action becomes a page with the reason."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                return with_headers(RedirectResponse(login_url(request), status_code=303))
            except PaygridError as error:
                log.info("dashboard.refused", code=error.code, path=request.url.path)
                return render_error(request, error)
            return with_headers(response) if isinstance(response, HTMLResponse) else response

        return guarded
