"""``/v1/payments``: create, confirm, capture, cancel, retrieve, list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of, idempotency_claim_of, idempotency_key_of
from paygrid.api.lean_route import LeanRoute
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import (
    CARD_ERRORS,
    COMMON_ERRORS,
    Page,
    json_response,
    list_response,
)
from paygrid.domain.payments import PaymentStatus
from paygrid.schemas.common import ListObject
from paygrid.schemas.payments import (
    Payment,
    PaymentCancel,
    PaymentCapture,
    PaymentConfirm,
    PaymentCreate,
)
from paygrid.services import payments
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/payments", tags=["Payments"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


async def create_payment(request: Request, body: PaymentCreate, tenant: SecretTenant) -> Response:
    """Create a payment. With `confirm: true` it is authorized at once: `succeeded`
    (automatic capture), `requires_capture` (manual), `requires_action` (3-D Secure: send the
    customer to `next_action.redirect_to_url.url`) or a 402 card error, after which the
    payment is back in `requires_payment_method`."""
    claim = idempotency_claim_of(request)
    payment = await payments.create_payment(
        deps_of(request), tenant, body, idempotency_key_of(request), claim
    )
    if claim is not None and claim.completed_body is not None:
        # The exact bytes stored for the key with the outcome: the replay will match.
        return Response(claim.completed_body, media_type="application/json")
    return json_response(payment)


# The hottest endpoint: a LeanRoute (api/lean_route.py) dispatches it with less machinery.
router.add_api_route(
    "",
    create_payment,
    methods=["POST"],
    response_model=Payment,
    responses=CARD_ERRORS,
    summary="Create a payment",
    route_class_override=LeanRoute,
)


@router.get("", response_model=ListObject[Payment], summary="List payments")
@read_only
async def list_payments(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    status: Annotated[PaymentStatus | None, Query()] = None,
    customer: Annotated[str | None, Query()] = None,
    currency: Annotated[str | None, Query(max_length=3)] = None,
    reference: Annotated[str | None, Query(max_length=255)] = None,
) -> Response:
    """Newest first, with cursor pagination."""
    data, has_more = await payments.list_payments(
        reads_of(request),
        tenant,
        page,
        status=status,
        customer=customer,
        currency=currency,
        reference=reference,
    )
    return list_response(request, data, has_more)


@router.get("/{payment_id}", response_model=Payment, summary="Retrieve a payment")
async def get_payment(request: Request, payment_id: str, tenant: SecretTenant) -> Response:
    return json_response(await payments.get_payment(deps_of(request), tenant, payment_id))


@router.post(
    "/{payment_id}/confirm",
    response_model=Payment,
    responses=CARD_ERRORS,
    summary="Confirm a payment",
)
async def confirm_payment(
    request: Request, payment_id: str, body: PaymentConfirm, tenant: SecretTenant
) -> Response:
    """Authorize a payment in `requires_confirmation`, or in `requires_payment_method` when
    a payment method is passed."""
    return json_response(await payments.confirm_payment(deps_of(request), tenant, payment_id, body))


@router.post(
    "/{payment_id}/capture",
    response_model=Payment,
    responses=CARD_ERRORS,
    summary="Capture a payment",
)
async def capture_payment(
    request: Request, payment_id: str, body: PaymentCapture, tenant: SecretTenant
) -> Response:
    """Capture a `requires_capture` payment, fully or partially (the rest is released)."""
    return json_response(
        await payments.capture_payment(deps_of(request), tenant, payment_id, body.amount_to_capture)
    )


@router.post(
    "/{payment_id}/cancel",
    response_model=Payment,
    responses=CARD_ERRORS,
    summary="Cancel a payment",
)
async def cancel_payment(
    request: Request, payment_id: str, body: PaymentCancel, tenant: SecretTenant
) -> Response:
    """Cancel a payment that has not succeeded; an authorization is voided at the provider."""
    return json_response(
        await payments.cancel_payment(
            deps_of(request), tenant, payment_id, body.cancellation_reason
        )
    )
