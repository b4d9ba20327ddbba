"""The billing settings page: the tenant's dunning, invoice, portal and email settings, and a
form that changes them (``invoices:write``) through the same use case as
``POST /v1/billing_settings``. The form sends every field; a blank prefix, footer or
finalize delay means the default."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from paygrid.api.dependencies import deps_of
from paygrid.dashboard import forms as form_input
from paygrid.dashboard.rendering import DashboardRoute, redirect, render
from paygrid.dashboard.sessions import Viewer, current_viewer, form_viewer
from paygrid.domain.billing_settings import OnExhausted
from paygrid.domain.errors import InvalidRequest, PaygridError
from paygrid.schemas.billing_settings import BillingSettingsUpdate
from paygrid.services import account
from paygrid.services.billing import settings_update

router = APIRouter(route_class=DashboardRoute)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
Posted = Annotated[Viewer, Depends(form_viewer)]
PATH = "/dashboard/billing_settings"
SWITCHES = {
    "dunning": ("stop_on_hard_decline", "fallback_to_other_methods", "retry_on_method_update"),
    "portal": ("allow_cancel", "allow_update_method"),
    "emails": ("invoice", "receipt", "payment_failed", "action_required", "card_expiring"),
}
NUMBERS = {
    "dunning": ("max_attempts_per_method", "attempt_window_days", "action_expiry_hours"),
    "invoices": ("days_until_due",),
}


NOTICES = {"saved": "Saved.", "account_saved": "Time zone saved."}


@router.get("/billing_settings")
async def settings_page(request: Request, viewer: SignedIn, notice: str | None = None) -> Response:
    viewer.require("invoices:read")
    return await _page(request, viewer, NOTICES.get(notice or ""), None)


async def account_refused(request: Request, viewer: Viewer, error: PaygridError) -> Response:
    """The page again, with why the account form (``dashboard/account.py``) was refused."""
    viewer.require("invoices:read")
    return await _page(request, viewer, None, None, error, status_code=error.status_code)


@router.post("/billing_settings")
async def save_settings(request: Request, viewer: Posted) -> Response:
    viewer.require("invoices:write")
    form = await form_input.fields(request)
    try:
        params = _update_from(form)
        await settings_update.update_billing_settings(deps_of(request), viewer.tenant, params)
    except PaygridError as error:
        return await _page(request, viewer, None, error, status_code=error.status_code)
    return redirect(PATH, notice="saved")


async def _page(
    request: Request,
    viewer: Viewer,
    notice: str | None,
    error: PaygridError | None,
    account_error: PaygridError | None = None,
    status_code: int = 200,
) -> Response:
    settings = await settings_update.get_billing_settings(deps_of(request), viewer.tenant)
    shown = (
        await account.get_account(deps_of(request), viewer.tenant)
        if viewer.can("account:read")
        else None
    )
    return render(
        request,
        "billing_settings.html",
        {
            "account": shown,
            "account_error": account_error,
            "settings": settings,
            "on_exhausted": [o.value for o in OnExhausted],
            "notice": notice,
            "error": error,
        },
        status_code=status_code,
    )


def _update_from(form: dict[str, str]) -> BillingSettingsUpdate:
    """The whole form as an update; what cannot be read is 400 naming the field."""
    sections: dict[str, dict[str, Any]] = {name: {} for name in SWITCHES}
    sections["invoices"] = {}
    for section, names in SWITCHES.items():
        for name in names:
            sections[section][name] = form.get(f"{section}.{name}") == "on"
    for section, names in NUMBERS.items():
        for name in names:
            sections[section][name] = _integer(form, f"{section}.{name}")
    days = form.get("dunning.retry_schedule_days", "")
    sections["dunning"]["retry_schedule_days"] = [
        _as_int(part.strip(), "dunning.retry_schedule_days")
        for part in days.replace(";", ",").split(",")
        if part.strip()
    ]
    sections["dunning"]["on_exhausted"] = form.get("dunning.on_exhausted", "")
    invoices = sections["invoices"]
    invoices["number_prefix"] = form.get("invoices.number_prefix") or None
    invoices["footer"] = form.get("invoices.footer") or None
    delay = form.get("invoices.finalize_after_seconds", "")
    invoices["finalize_after_seconds"] = (
        _as_int(delay, "invoices.finalize_after_seconds") if delay else None
    )
    try:
        return BillingSettingsUpdate.model_validate(sections)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise InvalidRequest(f"{where}: {first.get('msg')}", param=where) from None


def _integer(form: dict[str, str], name: str) -> int:
    return _as_int(form.get(name, ""), name)


def _as_int(value: str, name: str) -> int:
    if not value.lstrip("-").isdigit() or len(value) > 9:
        raise InvalidRequest(f"{name} must be a whole number.", param=name)
    return int(value)
