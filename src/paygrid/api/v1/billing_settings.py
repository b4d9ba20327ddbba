"""``/v1/billing_settings``: read and change a merchant's billing settings in one mode."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.responses import COMMON_ERRORS, json_response
from paygrid.schemas.billing_settings import BillingSettingsObject, BillingSettingsUpdate
from paygrid.services.billing import settings_update
from paygrid.services.context import Tenant

router = APIRouter(
    prefix="/v1/billing_settings", tags=["Billing settings"], responses=COMMON_ERRORS
)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.get("", response_model=BillingSettingsObject, summary="Retrieve the billing settings")
async def get_settings(request: Request, tenant: SecretTenant) -> Response:
    """The settings of the key's merchant and mode; defaults for what was never set."""
    return json_response(await settings_update.get_billing_settings(deps_of(request), tenant))


@router.post("", response_model=BillingSettingsObject, summary="Update the billing settings")
async def update_settings(
    request: Request, body: BillingSettingsUpdate, tenant: SecretTenant
) -> Response:
    """Only the fields given change (`null` resets `invoices.number_prefix`, `footer` and
    `finalize_after_seconds` to their defaults). Out of limits: 400
    `billing_settings_invalid` naming the field, and nothing changes. Sends
    `billing_settings.updated`."""
    return json_response(
        await settings_update.update_billing_settings(deps_of(request), tenant, body)
    )
