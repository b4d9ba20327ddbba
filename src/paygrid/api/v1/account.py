"""``/v1/account``: the authenticated merchant as Stripe-style account object, and its
settings (the time zone)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.responses import COMMON_ERRORS, json_response
from paygrid.schemas.account import Account, AccountUpdate
from paygrid.services import account
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/account", tags=["Account"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.get("", response_model=Account, summary="Retrieve the account")
async def get_account(request: Request, tenant: SecretTenant) -> Response:
    """The merchant the key belongs to: its id, name, time zone and creation time."""
    return json_response(await account.get_account(deps_of(request), tenant))


@router.post("", response_model=Account, summary="Update the account")
async def update_account(request: Request, body: AccountUpdate, tenant: SecretTenant) -> Response:
    """Only the fields given change. `timezone` must be an IANA name (`Africa/Lagos`,
    `UTC`): anything else is `400 parameter_invalid` with `param: "timezone"`, and nothing
    changes. A change sends `account.updated` (in the key's mode) and is audited; the next
    daily reconciliation run is due at 06:00 in the new zone."""
    return json_response(await account.update_account(deps_of(request), tenant, body))
