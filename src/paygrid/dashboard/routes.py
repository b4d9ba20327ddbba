"""The dashboard's router: sign in and out, the test/live switch, the overview and the
stylesheet; the other pages live in their own modules and are included here."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from markupsafe import Markup

from paygrid.api.dependencies import deps_of
from paygrid.dashboard import (
    account,
    billing_settings,
    catalog,
    charts,
    developers,
    emails,
    invoices,
    payment_links,
    payments,
    reconciliation,
    records,
    reports,
    subscriptions,
    webhooks,
)
from paygrid.dashboard import forms as form_input
from paygrid.dashboard.rendering import HERE, DashboardRoute, redirect, render
from paygrid.dashboard.sessions import (
    LOGIN_COOKIE,
    Viewer,
    check_login_csrf,
    current_viewer,
    end_session,
    form_viewer,
    login_limits,
    set_cookie,
    start_session,
)
from paygrid.dashboard.states import label
from paygrid.money import CURRENCIES, format_minor
from paygrid.services import dashboard_overview, dashboard_sessions, dashboard_users
from paygrid.services import overview as overview_service
from paygrid.services.dashboard_overview import DailySuccess, DailyVolume

router = APIRouter(prefix="/dashboard", include_in_schema=False, route_class=DashboardRoute)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
Posted = Annotated[Viewer, Depends(form_viewer)]
OVERVIEW_DAYS = 14
CSS = (HERE / "static" / "dashboard.css").read_bytes()


@router.get("/static/dashboard.css")
async def stylesheet() -> Response:
    return Response(CSS, media_type="text/css", headers={"cache-control": "max-age=300"})


def _safe_next(target: str | None) -> str:
    """Only our own dashboard pages: never another site (``//evil``, ``/\\evil``)."""
    if target and target.startswith("/dashboard") and "\\" not in target and "//" not in target:
        return target
    return "/dashboard"


def _login_page(
    request: Request, *, next_url: str, error: str | None, email: str = "", status: int = 200
) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {
            "csrf_token": token,
            "next": next_url,
            "error": error,
            "email": email,
            "notice": request.query_params.get("notice"),
        },
        status_code=status,
    )
    set_cookie(request, response, LOGIN_COOKIE, token, 3600)
    return response


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next_url=_safe_next(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await form_input.fields(request)
    check_login_csrf(request, form.get("csrf_token"))
    email, next_url = form.get("email", ""), _safe_next(form.get("next"))
    limiter = login_limits(request)
    wait = await limiter.admit(request, email)
    if wait is not None:
        minutes = max(1, -(-wait // 60))
        message = (
            "Too many failed sign-in attempts for this email or from this network. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        )
        return _login_page(request, next_url=next_url, error=message, email=email, status=429)
    user = await dashboard_users.verify_login(
        deps_of(request).pool, email, form.get("password", "")
    )
    if user is None:
        return _login_page(
            request,
            next_url=next_url,
            error="Incorrect email or password.",
            email=email,
            status=401,
        )
    await limiter.succeeded(request, email)
    response = redirect(next_url)
    await start_session(request, response, user)
    return response


@router.post("/logout")
async def logout(request: Request, viewer: Posted) -> Response:
    response = redirect("/dashboard/login", notice="signed_out")
    await end_session(request, response, viewer)
    return response


@router.post("/mode")
async def switch_mode(request: Request, viewer: Posted) -> Response:
    form = await form_input.fields(request)
    await dashboard_sessions.switch_mode(
        deps_of(request), viewer.token_hash, livemode=form.get("mode") == "live"
    )
    return redirect("/dashboard")


@router.get("")
async def overview(request: Request, viewer: SignedIn) -> Response:
    viewer.require("payments:read")
    deps, tenant = deps_of(request), viewer.tenant
    today = deps.clock.now().date()
    since_day = today - timedelta(days=OVERVIEW_DAYS - 1)
    since = datetime.combine(since_day, datetime.min.time(), UTC)
    days = [since_day + timedelta(days=n) for n in range(OVERVIEW_DAYS)]
    volume = await dashboard_overview.daily_volume(deps, tenant, since)
    success = await dashboard_overview.daily_success(deps, tenant, since)
    statuses = await dashboard_overview.status_counts(deps, tenant)
    failed = []
    if viewer.can("webhooks:read"):
        failed = await dashboard_overview.failed_deliveries(deps, tenant, 20)
    return render(
        request,
        "overview.html",
        {
            "today": await overview_service.day_by_currency(deps, tenant, today),
            "volume_charts": _volume_charts(days, volume),
            "success_chart": _success_chart(days, success),
            "success_rows": success,
            "volume_rows": volume,
            "statuses": statuses,
            "status_chart": charts.bar_chart(
                "status-chart",
                "Payments by status",
                ", ".join(f"{label(r.status)}: {r.payments}" for r in statuses) or "No payments.",
                [(_short(label(r.status)), r.payments) for r in statuses],
            ),
            "failed": failed,
            "days": OVERVIEW_DAYS,
        },
    )


def _short(text: str) -> str:
    """A bar's label under the chart: ``Requires capture`` -> ``Req. capture``."""
    return text.replace("Requires ", "Req. ").replace("Partially ", "Part. ")


def _volume_charts(days: list[date], rows: list[DailyVolume]) -> list[tuple[str, Markup]]:
    """One chart per currency: amounts are not comparable across currencies."""
    built: list[tuple[str, Markup]] = []
    for code in sorted({r.currency for r in rows}):
        currency = CURRENCIES.get(code)
        per_day = {r.day: r.volume for r in rows if r.currency == code}
        values = [float(per_day.get(d, 0)) for d in days]
        scale = 10**currency.exponent if currency else 1
        described = ", ".join(
            f"{d.isoformat()}: {format_minor(int(v), currency) if currency else int(v)}"
            for d, v in zip(days, values, strict=True)
            if v
        )
        built.append(
            (
                code,
                charts.line_chart(
                    f"volume-{code.lower()}",
                    f"Volume received per day in {code}",
                    f"Last {len(days)} days. {described or 'No volume.'}",
                    [d.strftime("%b %d") for d in days],
                    [charts.Series(code, values)],
                    fmt=_major_units(scale),
                ),
            )
        )
    return built


def _major_units(scale: int) -> Callable[[float], str]:
    return lambda value: f"{value / scale:,.0f}"


def _success_chart(days: list[date], rows: list[DailySuccess]) -> Markup:
    series = []
    for connector in sorted({r.connector for r in rows}):
        per_day = {
            r.day: 100.0 * r.succeeded / r.attempts
            for r in rows
            if r.connector == connector and r.attempts
        }
        series.append(charts.Series(connector, [per_day.get(d, 0.0) for d in days]))
    described = "; ".join(
        f"{r.day.isoformat()} {r.connector}: {r.succeeded} of {r.attempts}" for r in rows
    )
    return charts.line_chart(
        "success-chart",
        "Authorization success rate per day, by connector",
        f"Last {len(days)} days. {described or 'No attempts.'}",
        [d.strftime("%b %d") for d in days],
        series,
        fmt=lambda v: f"{v:.0f}%",
        top_value=100.0,
    )


for module in (
    payments,
    records,
    webhooks,
    developers,
    catalog,
    payment_links,
    subscriptions,
    invoices,
    billing_settings,
    account,
    emails,
    reports,
    reconciliation,
):
    router.include_router(module.router)
