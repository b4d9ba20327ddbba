"""``/v1/billing_portal/sessions``: a short-lived link to a customer's billing portal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.responses import COMMON_ERRORS, json_response
from paygrid.schemas.billing_portal import BillingPortalSession, BillingPortalSessionCreate
from paygrid.services.billing_portal import sessions as portal_sessions
from paygrid.services.context import Tenant

router = APIRouter(
    prefix="/v1/billing_portal", tags=["Customer billing portal"], responses=COMMON_ERRORS
)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post(
    "/sessions", response_model=BillingPortalSession, summary="Create a billing portal session"
)
async def create_session(
    request: Request, body: BillingPortalSessionCreate, tenant: SecretTenant
) -> Response:
    """A link (`url`) to the customer's billing portal: their subscriptions, invoices and
    saved cards, where they can add a card, choose the default one and cancel a subscription
    at the end of its period (as your billing settings' `portal` allows). Redirect the
    customer to it at once: it must be opened within 5 minutes, and the browser that opens
    it keeps the portal for an hour. A customer of another merchant or mode is 404."""
    session = await portal_sessions.create_portal_session(deps_of(request), tenant, body)
    return json_response(session)
