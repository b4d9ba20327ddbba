"""``/v1/setup_intents``: create, confirm, cancel, retrieve, list; and ``/v1/mandates``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import CARD_ERRORS, COMMON_ERRORS, Page, json_response, list_response
from paygrid.schemas.common import ListObject
from paygrid.schemas.mandates import Mandate
from paygrid.schemas.setup_intents import (
    SetupIntent,
    SetupIntentCancel,
    SetupIntentConfirm,
    SetupIntentCreate,
)
from paygrid.services import saved_methods, setup_intents
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/setup_intents", tags=["Setup intents"], responses=COMMON_ERRORS)
mandates_router = APIRouter(prefix="/v1/mandates", tags=["Setup intents"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post("", response_model=SetupIntent, responses=CARD_ERRORS, summary="Create a setup intent")
async def create_setup_intent(
    request: Request, body: SetupIntentCreate, tenant: SecretTenant
) -> Response:
    """Save a customer's payment method for later off-session charges without charging
    it. With `confirm: true` it is confirmed at once (see the confirm endpoint)."""
    return json_response(await setup_intents.create_setup_intent(deps_of(request), tenant, body))


@router.get("", response_model=ListObject[SetupIntent], summary="List setup intents")
@read_only
async def list_setup_intents(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    customer: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    data, has_more = await setup_intents.list_setup_intents(
        reads_of(request), tenant, page, customer
    )
    return list_response(request, data, has_more)


@router.get("/{setup_intent_id}", response_model=SetupIntent, summary="Retrieve a setup intent")
async def get_setup_intent(
    request: Request, setup_intent_id: str, tenant: SecretTenant
) -> Response:
    """A setup intent waiting for 3-D Secure asks its provider first, so it shows the
    customer's authentication as soon as they are back."""
    return json_response(
        await setup_intents.get_setup_intent(deps_of(request), tenant, setup_intent_id)
    )


@router.post(
    "/{setup_intent_id}/confirm",
    response_model=SetupIntent,
    responses=CARD_ERRORS,
    summary="Confirm a setup intent",
)
async def confirm_setup_intent(
    request: Request, setup_intent_id: str, body: SetupIntentConfirm, tenant: SecretTenant
) -> Response:
    """Verify the method at its provider: `succeeded` (attached to the customer, with a
    mandate and `setup_intent.succeeded`), `requires_action` (3-D Secure: send the customer
    to `next_action.redirect_to_url.url`), or a 402 card error (`setup_intent.setup_failed`,
    back to `requires_payment_method`)."""
    return json_response(
        await setup_intents.confirm_setup_intent(deps_of(request), tenant, setup_intent_id, body)
    )


@router.post(
    "/{setup_intent_id}/cancel", response_model=SetupIntent, summary="Cancel a setup intent"
)
async def cancel_setup_intent(
    request: Request, setup_intent_id: str, body: SetupIntentCancel, tenant: SecretTenant
) -> Response:
    """From `requires_payment_method`, `requires_confirmation` or `requires_action`; any
    other status is `409 setup_intent_unexpected_state`."""
    return json_response(
        await setup_intents.cancel_setup_intent(deps_of(request), tenant, setup_intent_id, body)
    )


@mandates_router.get("/{mandate_id}", response_model=Mandate, summary="Retrieve a mandate")
async def get_mandate(request: Request, mandate_id: str, tenant: SecretTenant) -> Response:
    """The customer's acceptance (time, IP address, user agent) of later off-session
    charges of one saved method."""
    return json_response(await saved_methods.get_mandate(deps_of(request), tenant, mandate_id))
