"""``/v1/payment_links``: create, retrieve, list and update shareable payment pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import COMMON_ERRORS, Page, json_response, list_response
from paygrid.schemas.common import ListObject
from paygrid.schemas.payment_links import (
    LineItems,
    PaymentLink,
    PaymentLinkCreate,
    PaymentLinkUpdate,
)
from paygrid.services import payment_links
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/payment_links", tags=["Payment links"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post("", response_model=PaymentLink, summary="Create a payment link")
async def create_link(request: Request, body: PaymentLinkCreate, tenant: SecretTenant) -> Response:
    """A public page (`url`) that sells the line items to anyone who opens it: each visit
    opens a checkout session. One-time prices take a payment; recurring prices (all with
    the same interval) make a customer from the entered email and a subscription.
    `restrictions.completed_sessions.limit` caps the payments, even when customers pay at
    the same moment; `expires_at` (paygrid extension) ends the link."""
    return json_response(await payment_links.create_link(deps_of(request), tenant, body))


@router.get("", response_model=ListObject[PaymentLink], summary="List payment links")
@read_only
async def list_links(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    active: Annotated[bool | None, Query()] = None,
) -> Response:
    """Newest first, with cursor pagination."""
    data, has_more = await payment_links.list_links(reads_of(request), tenant, page, active)
    return list_response(request, data, has_more)


@router.get("/{link_id}", response_model=PaymentLink, summary="Retrieve a payment link")
async def get_link(request: Request, link_id: str, tenant: SecretTenant) -> Response:
    return json_response(await payment_links.get_link(deps_of(request), tenant, link_id))


@router.get(
    "/{link_id}/line_items", response_model=LineItems, summary="A payment link's line items"
)
async def get_line_items(request: Request, link_id: str, tenant: SecretTenant) -> Response:
    link = await payment_links.get_link(deps_of(request), tenant, link_id)
    return json_response(link.line_items)


@router.post("/{link_id}", response_model=PaymentLink, summary="Update a payment link")
async def update_link(
    request: Request, link_id: str, body: PaymentLinkUpdate, tenant: SecretTenant
) -> Response:
    """`active: false` turns the page into a 410 at once (a payment already under way
    finishes). Also `after_completion`, `expires_at` (0 removes it) and `metadata`
    (merged; a key set to "" goes). The line items never change: make a new link."""
    return json_response(await payment_links.update_link(deps_of(request), tenant, link_id, body))
