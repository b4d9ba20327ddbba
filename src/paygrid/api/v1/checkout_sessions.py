"""``/v1/checkout_sessions``: create, retrieve, list and expire hosted checkout pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import COMMON_ERRORS, Page, json_response, list_response
from paygrid.schemas.checkout_sessions import CheckoutSession, CheckoutSessionCreate, CheckoutStatus
from paygrid.schemas.common import ListObject
from paygrid.services import checkout_sessions
from paygrid.services.context import Tenant

router = APIRouter(
    prefix="/v1/checkout_sessions", tags=["Checkout sessions"], responses=COMMON_ERRORS
)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post("", response_model=CheckoutSession, summary="Create a checkout session")
async def create_session(
    request: Request, body: CheckoutSessionCreate, tenant: SecretTenant
) -> Response:
    """A hosted payment page for one amount. Send the customer to `url` (or open it with
    `checkout.js`); once paid, they land on `success_url?session_id=cs_...`, the session is
    `complete` with its `payment`, and `checkout_session.completed` is sent to your webhook
    endpoints. Fulfil on that event (or `payment.succeeded`, whose payment has
    `metadata.checkout_session`), not on the redirect."""
    return json_response(await checkout_sessions.create_session(deps_of(request), tenant, body))


@router.get("", response_model=ListObject[CheckoutSession], summary="List checkout sessions")
@read_only
async def list_sessions(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    status: Annotated[CheckoutStatus | None, Query()] = None,
    payment: Annotated[str | None, Query(description="Sessions paid by this `pay_...`.")] = None,
) -> Response:
    data, has_more = await checkout_sessions.list_sessions(
        reads_of(request), tenant, page, status=status, payment=payment
    )
    return list_response(request, data, has_more)


@router.get("/{session_id}", response_model=CheckoutSession, summary="Retrieve a checkout session")
async def get_session(request: Request, session_id: str, tenant: SecretTenant) -> Response:
    """An open session past its `expires_at` is returned (and stored) as `expired`."""
    return json_response(await checkout_sessions.get_session(deps_of(request), tenant, session_id))


@router.post(
    "/{session_id}/expire", response_model=CheckoutSession, summary="Expire a checkout session"
)
async def expire_session(request: Request, session_id: str, tenant: SecretTenant) -> Response:
    """The page stops taking payments at once (`checkout_session.expired`). A complete
    session cannot be expired: 409 `checkout_session_invalid_state`. Expiring an expired
    session returns it unchanged."""
    return json_response(
        await checkout_sessions.expire_session(deps_of(request), tenant, session_id)
    )
