"""``/v1/invoiceitems``: create, retrieve, list, and delete while pending."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import COMMON_ERRORS, Page, json_response, list_response
from paygrid.schemas.common import DeletedObject, ListObject
from paygrid.schemas.invoices import InvoiceItem, InvoiceItemCreate
from paygrid.services.billing import invoice_items
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/invoiceitems", tags=["Invoices"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post("", response_model=InvoiceItem, summary="Create an invoice item")
async def create_invoice_item(
    request: Request, body: InvoiceItemCreate, tenant: SecretTenant
) -> Response:
    """A pending charge for the customer's next invoice: `amount` and `currency`, or a
    one-time `price` (times `quantity`)."""
    return json_response(await invoice_items.create_invoice_item(deps_of(request), tenant, body))


@router.get("", response_model=ListObject[InvoiceItem], summary="List invoice items")
@read_only
async def list_invoice_items(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    customer: Annotated[
        str | None, Query(max_length=255, description="Only this customer's items.")
    ] = None,
    pending: Annotated[
        bool | None,
        Query(description="true: only items no invoice holds yet; false: only invoiced ones."),
    ] = None,
) -> Response:
    data, has_more = await invoice_items.list_invoice_items(
        reads_of(request), tenant, page, customer=customer, pending=pending
    )
    return list_response(request, data, has_more)


@router.get("/{item_id}", response_model=InvoiceItem, summary="Retrieve an invoice item")
async def get_invoice_item(request: Request, item_id: str, tenant: SecretTenant) -> Response:
    return json_response(await invoice_items.get_invoice_item(deps_of(request), tenant, item_id))


@router.delete("/{item_id}", response_model=DeletedObject, summary="Delete an invoice item")
async def delete_invoice_item(request: Request, item_id: str, tenant: SecretTenant) -> Response:
    """Only while pending; an item on an invoice gets 409 `invoice_item_invoiced`."""
    return json_response(await invoice_items.delete_invoice_item(deps_of(request), tenant, item_id))
