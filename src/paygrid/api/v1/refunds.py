"""``/v1/refunds``: create, retrieve, list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of, idempotency_key_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import CARD_ERRORS, COMMON_ERRORS, Page, json_response, list_response
from paygrid.schemas.common import ListObject
from paygrid.schemas.refunds import Refund, RefundCreate
from paygrid.services import refunds
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/refunds", tags=["Refunds"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post(
    "", response_model=Refund, responses={502: CARD_ERRORS[502]}, summary="Create a refund"
)
async def create_refund(request: Request, body: RefundCreate, tenant: SecretTenant) -> Response:
    """Refund a `succeeded` payment, fully (the default) or partially. More than what remains
    unrefunded gets 422 `refund_exceeds_available`, however many refunds run at once."""
    return json_response(
        await refunds.create_refund(deps_of(request), tenant, body, idempotency_key_of(request))
    )


@router.get("", response_model=ListObject[Refund], summary="List refunds")
@read_only
async def list_refunds(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    payment: Annotated[str | None, Query(description="Only refunds of this payment.")] = None,
) -> Response:
    data, has_more = await refunds.list_refunds(reads_of(request), tenant, page, payment)
    return list_response(request, data, has_more)


@router.get("/{refund_id}", response_model=Refund, summary="Retrieve a refund")
async def get_refund(request: Request, refund_id: str, tenant: SecretTenant) -> Response:
    return json_response(await refunds.get_refund(deps_of(request), tenant, refund_id))
