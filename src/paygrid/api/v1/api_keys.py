"""``/v1/api_keys``: create (from a role or scopes), list, roll and revoke keys. Needs the
admin scopes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.authentication import admin_key, principal_of
from paygrid.api.dependencies import deps_of
from paygrid.api.responses import COMMON_ERRORS, Page, json_response, list_response
from paygrid.domain.errors import InvalidRequest
from paygrid.schemas.api_keys import ApiKey, ApiKeyCreate
from paygrid.schemas.common import ListObject
from paygrid.services import api_keys, merchants
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/api_keys", tags=["API keys"], responses=COMMON_ERRORS)
AdminTenant = Annotated[Tenant, Depends(admin_key)]


@router.post("", response_model=ApiKey, summary="Create an API key")
async def create_key(request: Request, body: ApiKeyCreate, tenant: AdminTenant) -> Response:
    """The response carries `secret`, this once only. A key is made in the mode of the key
    that asks for it."""
    row, secret = await merchants.create_key(
        deps_of(request).pool,
        tenant.merchant_id,
        tenant.livemode,
        kind=body.type,
        name=body.name,
        role=body.role,
        scopes=body.scopes,
    )
    return json_response(ApiKey.from_row(row, secret))


@router.get("", response_model=ListObject[ApiKey], summary="List API keys")
async def list_keys(request: Request, tenant: AdminTenant, page: Page) -> Response:
    keys, has_more = await api_keys.list_keys(deps_of(request), tenant, page)
    return list_response(request, keys, has_more)


@router.get("/{key_id}", response_model=ApiKey, summary="Retrieve an API key")
async def get_key(request: Request, key_id: str, tenant: AdminTenant) -> Response:
    return json_response(await api_keys.get_key(deps_of(request), tenant, key_id))


@router.post("/{key_id}/roll", response_model=ApiKey, summary="Roll an API key")
async def roll_key(request: Request, key_id: str, tenant: AdminTenant) -> Response:
    """A new key with the same type, name and scopes (its `secret` is shown this once);
    the old key stops working at once."""
    row, secret = await merchants.roll_key(
        deps_of(request).pool, tenant.merchant_id, tenant.livemode, key_id
    )
    return json_response(ApiKey.from_row(row, secret))


@router.post("/{key_id}/revoke", response_model=ApiKey, summary="Revoke an API key")
async def revoke_key(request: Request, key_id: str, tenant: AdminTenant) -> Response:
    if key_id == principal_of(request).key_id:
        raise InvalidRequest("A key cannot revoke itself; use another admin key.", param="id")
    row = await merchants.revoke_tenant_key(
        deps_of(request).pool, tenant.merchant_id, tenant.livemode, key_id
    )
    return json_response(ApiKey.from_row(row))
