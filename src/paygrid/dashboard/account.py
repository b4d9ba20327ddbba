"""The account's time zone on the dashboard's settings page (the billing settings page shows
it, ``account:read``): a small form that changes it (``account:write``) through the same use
case as ``POST /v1/account``; an unknown zone shows the API's message on the page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.dependencies import deps_of
from paygrid.dashboard import forms as form_input
from paygrid.dashboard.billing_settings import PATH, account_refused
from paygrid.dashboard.rendering import DashboardRoute, redirect
from paygrid.dashboard.sessions import Viewer, form_viewer
from paygrid.domain.errors import PaygridError
from paygrid.schemas.account import AccountUpdate
from paygrid.services import account

router = APIRouter(route_class=DashboardRoute)
Posted = Annotated[Viewer, Depends(form_viewer)]


@router.post("/account")
async def save_account(request: Request, viewer: Posted) -> Response:
    viewer.require("account:write")
    form = await form_input.fields(request)
    try:
        params = AccountUpdate(timezone=form.get("timezone", "").strip()[:64])
        await account.update_account(deps_of(request), viewer.tenant, params)
    except PaygridError as error:
        return await account_refused(request, viewer, error)
    return redirect(PATH, notice="account_saved")
