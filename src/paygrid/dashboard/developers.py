"""Developers pages (API keys: create from a role, roll, revoke; connector accounts, whose
credentials are never shown) and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.dependencies import deps_of
from paygrid.dashboard import forms as form_input
from paygrid.dashboard.records import pretty
from paygrid.dashboard.rendering import DashboardRoute, redirect, render
from paygrid.dashboard.sessions import Viewer, current_viewer, form_viewer
from paygrid.domain.card_numbers import refuse_card_number
from paygrid.domain.errors import InvalidRequest
from paygrid.domain.pagination import PageRequest
from paygrid.domain.scopes import ROLES
from paygrid.schemas.api_keys import ApiKey
from paygrid.services import api_keys, audit, connector_accounts, merchants

router = APIRouter(route_class=DashboardRoute)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
Posted = Annotated[Viewer, Depends(form_viewer)]
NOTICES = {"revoked": "API key revoked."}


@router.get("/developers")
async def developers(request: Request, viewer: SignedIn) -> Response:
    viewer.require("admin:read")
    return redirect("/dashboard/developers/api_keys")


async def _keys_page(
    request: Request, viewer: Viewer, *, new_key: ApiKey | None = None, notice: str | None = None
) -> Response:
    keys, _ = await api_keys.list_keys(deps_of(request), viewer.tenant, PageRequest(limit=100))
    return render(
        request,
        "api_keys.html",
        {
            "keys": keys,
            "roles": list(ROLES),
            "new_key": new_key,
            "notice": NOTICES.get(notice or ""),
            "can_write": viewer.can("admin:write"),
        },
    )


@router.get("/developers/api_keys")
async def key_list(request: Request, viewer: SignedIn, notice: str | None = None) -> Response:
    viewer.require("admin:read")
    return await _keys_page(request, viewer, notice=notice)


@router.post("/developers/api_keys")
async def key_create(request: Request, viewer: Posted) -> Response:
    viewer.require("admin:write")
    form = await form_input.fields(request)
    role = form.get("role", "")
    if role not in ROLES:
        raise InvalidRequest(f"Choose a role: {', '.join(ROLES)}.", param="role")
    refuse_card_number(form.get("name"), "name")
    row, secret = await merchants.create_key(
        deps_of(request).pool,
        viewer.merchant_id,
        viewer.livemode,
        kind="secret",
        name=form_input.text(form.get("name"), 100),
        role=role,
        scopes=None,
    )
    # Rendered here rather than redirected to: the secret must never sit in a URL.
    return await _keys_page(request, viewer, new_key=ApiKey.from_row(row, secret))


@router.post("/developers/api_keys/{key_id}/roll")
async def key_roll(request: Request, key_id: str, viewer: Posted) -> Response:
    viewer.require("admin:write")
    row, secret = await merchants.roll_key(
        deps_of(request).pool, viewer.merchant_id, viewer.livemode, key_id
    )
    return await _keys_page(request, viewer, new_key=ApiKey.from_row(row, secret))


@router.post("/developers/api_keys/{key_id}/revoke")
async def key_revoke(request: Request, key_id: str, viewer: Posted) -> Response:
    viewer.require("admin:write")
    form = await form_input.fields(request)
    form_input.require_confirmation(form, "revoke this key")
    await merchants.revoke_tenant_key(
        deps_of(request).pool, viewer.merchant_id, viewer.livemode, key_id
    )
    return redirect("/dashboard/developers/api_keys", notice="revoked")


@router.get("/developers/connector_accounts")
async def account_list(request: Request, viewer: SignedIn) -> Response:
    viewer.require("connector_accounts:read")
    accounts, _ = await connector_accounts.list_accounts(
        deps_of(request), viewer.tenant, PageRequest(limit=100), provider=None, status=None
    )
    return render(request, "connector_accounts.html", {"accounts": accounts})


@router.get("/developers/connector_accounts/{account_id}")
async def account_detail(request: Request, account_id: str, viewer: SignedIn) -> Response:
    viewer.require("connector_accounts:read")
    account = await connector_accounts.get_account(deps_of(request), viewer.tenant, account_id)
    return render(request, "connector_account.html", {"account": account})


@router.get("/audit")
async def audit_log(
    request: Request,
    viewer: SignedIn,
    object_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    created_from: str | None = None,
    created_to: str | None = None,
    after: str | None = None,
    before: str | None = None,
) -> Response:
    viewer.require("admin:read")
    where = form_input.cursor(after, before)
    filters = {
        "object_id": form_input.text(object_id, 64),
        "actor": form_input.text(actor, 128),
        "action": form_input.text(action, 64),
    }
    entries, has_more = await audit.list_entries(
        deps_of(request),
        viewer.tenant,
        where.page(),
        **filters,
        created_gte=form_input.day(created_from),
        created_lte=form_input.day(created_to, end=True),
    )
    return render(
        request,
        "audit.html",
        {
            "entries": [(e, pretty(e.before), pretty(e.after)) for e in entries],
            "filters": {
                **{k: v or "" for k, v in filters.items()},
                "created_from": created_from or "",
                "created_to": created_to or "",
            },
            "pager": form_input.pager([e.id for e in entries], has_more, where),
        },
    )
