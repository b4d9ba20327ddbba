"""``/v1/subscriptions``: create, retrieve, list, update, and the actions pause, resume and
cancel (``DELETE`` cancels now); and ``GET /v1/invoices/upcoming``, the preview of a
subscription's next invoice (``upcoming_router``, registered before the invoices router so
that ``upcoming`` is not taken for an invoice id)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import CARD_ERRORS, COMMON_ERRORS, Page, json_response, list_response
from paygrid.domain.subscriptions import SubscriptionStatus
from paygrid.schemas.common import ListObject
from paygrid.schemas.invoices import Invoice
from paygrid.schemas.subscriptions import (
    Subscription,
    SubscriptionCancel,
    SubscriptionCreate,
    SubscriptionPause,
    SubscriptionResume,
    SubscriptionUpdate,
)
from paygrid.services.billing.subscriptions import create, lifecycle, upcoming, update, views
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/subscriptions", tags=["Subscriptions"], responses=COMMON_ERRORS)
upcoming_router = APIRouter(prefix="/v1/invoices", tags=["Invoices"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post(
    "",
    response_model=Subscription,
    responses={402: CARD_ERRORS[402], 502: CARD_ERRORS[502]},
    summary="Create a subscription",
)
async def create_subscription(
    request: Request, body: SubscriptionCreate, tenant: SecretTenant
) -> Response:
    """`trialing` with a trial; otherwise the first invoice is made, finalized and charged
    (`payment_behavior`): `active` when paid, else `incomplete`. With
    `error_if_incomplete` a failed payment is the answer (402) and the subscription is
    `incomplete_expired`."""
    return json_response(await create.create_subscription(deps_of(request), tenant, body))


@router.get("", response_model=ListObject[Subscription], summary="List subscriptions")
@read_only
async def list_subscriptions(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    customer: Annotated[
        str | None, Query(max_length=255, description="Only this customer's subscriptions.")
    ] = None,
    status: Annotated[
        SubscriptionStatus | None, Query(description="Only subscriptions in this status.")
    ] = None,
    price: Annotated[
        str | None, Query(max_length=255, description="Only subscriptions billing this price.")
    ] = None,
) -> Response:
    data, has_more = await views.list_subscriptions(
        reads_of(request), tenant, page, customer=customer, status=status, price=price
    )
    return list_response(request, data, has_more)


@router.get("/{subscription_id}", response_model=Subscription, summary="Retrieve a subscription")
async def get_subscription(
    request: Request, subscription_id: str, tenant: SecretTenant
) -> Response:
    return json_response(await views.get_subscription(deps_of(request), tenant, subscription_id))


@router.post("/{subscription_id}", response_model=Subscription, summary="Update a subscription")
async def update_subscription(
    request: Request,
    subscription_id: str,
    tenant: SecretTenant,
    body: SubscriptionUpdate | None = None,
) -> Response:
    """Items and quantities (`proration_behavior`: `create_prorations` for the next
    invoice, `always_invoice` invoiced and charged now, `none`), `cancel_at_period_end`,
    `default_payment_method`, `metadata`. 409 `subscription_invalid_state` when the status
    does not allow the change."""
    params = body or SubscriptionUpdate()
    return json_response(
        await update.update_subscription(deps_of(request), tenant, subscription_id, params)
    )


@router.post(
    "/{subscription_id}/pause", response_model=Subscription, summary="Pause a subscription"
)
async def pause_subscription(
    request: Request,
    subscription_id: str,
    tenant: SecretTenant,
    body: SubscriptionPause | None = None,
) -> Response:
    """`trialing` or `active` → `paused`: no invoices until it resumes (at `resumes_at`,
    if given)."""
    params = body or SubscriptionPause()
    return json_response(
        await lifecycle.pause_subscription(deps_of(request), tenant, subscription_id, params)
    )


@router.post(
    "/{subscription_id}/resume", response_model=Subscription, summary="Resume a subscription"
)
async def resume_subscription(
    request: Request,
    subscription_id: str,
    tenant: SecretTenant,
    body: SubscriptionResume | None = None,
) -> Response:
    """`paused` → `active`. `billing_cycle_anchor: now` (default) starts and invoices a
    new period now; `unchanged` keeps the anchor."""
    params = body or SubscriptionResume()
    return json_response(
        await lifecycle.resume_subscription(deps_of(request), tenant, subscription_id, params)
    )


@router.post(
    "/{subscription_id}/cancel", response_model=Subscription, summary="Cancel a subscription"
)
async def cancel_subscription(
    request: Request,
    subscription_id: str,
    tenant: SecretTenant,
    body: SubscriptionCancel | None = None,
) -> Response:
    """Now (`canceled`), or with `at_period_end: true` when the current period ends."""
    params = body or SubscriptionCancel()
    return json_response(
        await lifecycle.cancel_subscription(deps_of(request), tenant, subscription_id, params)
    )


@router.delete(
    "/{subscription_id}", response_model=Subscription, summary="Cancel a subscription now"
)
async def delete_subscription(
    request: Request, subscription_id: str, tenant: SecretTenant
) -> Response:
    """Stripe's alias of `/cancel` now."""
    return json_response(
        await lifecycle.cancel_subscription(
            deps_of(request), tenant, subscription_id, SubscriptionCancel()
        )
    )


@upcoming_router.get(
    "/upcoming", response_model=Invoice, summary="Preview a subscription's next invoice"
)
async def upcoming_invoice(
    request: Request,
    tenant: SecretTenant,
    subscription: Annotated[
        str, Query(min_length=1, max_length=255, description="The subscription (`sub_...`).")
    ],
) -> Response:
    """The invoice the subscription's next renewal will make, line for line (`id:
    "upcoming"`, nothing stored). 404 `invoice_upcoming_none` when no renewal is coming
    (paused, canceling at the period's end, ended or incomplete)."""
    return json_response(await upcoming.upcoming_invoice(deps_of(request), tenant, subscription))
