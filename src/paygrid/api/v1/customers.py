"""``/v1/customers``: create, retrieve, update, delete, list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import COMMON_ERRORS, Page, json_response, list_response
from paygrid.schemas.common import DeletedObject, ListObject
from paygrid.schemas.customers import Customer, CustomerCreate, CustomerUpdate
from paygrid.services import customers
from paygrid.services.billing import customer_deletion
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/customers", tags=["Customers"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post("", response_model=Customer, summary="Create a customer")
async def create_customer(request: Request, body: CustomerCreate, tenant: SecretTenant) -> Response:
    return json_response(await customers.create_customer(deps_of(request), tenant, body))


@router.get("", response_model=ListObject[Customer], summary="List customers")
@read_only
async def list_customers(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    email: Annotated[str | None, Query(max_length=254)] = None,
) -> Response:
    data, has_more = await customers.list_customers(reads_of(request), tenant, page, email)
    return list_response(request, data, has_more)


@router.get(
    "/{customer_id}", response_model=Customer | DeletedObject, summary="Retrieve a customer"
)
async def get_customer(request: Request, customer_id: str, tenant: SecretTenant) -> Response:
    """A deleted customer returns `{"id", "object": "customer", "deleted": true}`."""
    return json_response(await customers.get_customer(deps_of(request), tenant, customer_id))


@router.post("/{customer_id}", response_model=Customer, summary="Update a customer")
async def update_customer(
    request: Request, customer_id: str, body: CustomerUpdate, tenant: SecretTenant
) -> Response:
    """Only the fields sent change. Metadata merges; set a key to "" to remove it."""
    return json_response(
        await customers.update_customer(deps_of(request), tenant, customer_id, body)
    )


@router.delete("/{customer_id}", response_model=DeletedObject, summary="Delete a customer")
async def delete_customer(request: Request, customer_id: str, tenant: SecretTenant) -> Response:
    """Payments keep referring to a deleted customer; it no longer appears in lists. Its
    subscriptions are canceled and its draft and open invoices voided."""
    deps = deps_of(request)
    return json_response(await customer_deletion.delete_customer(deps, tenant, customer_id))
