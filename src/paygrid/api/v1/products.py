"""``/v1/products``: create, retrieve, update, delete, list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import COMMON_ERRORS, Page, json_response, list_response
from paygrid.schemas.catalog import Product, ProductCreate, ProductUpdate
from paygrid.schemas.common import DeletedObject, ListObject
from paygrid.services.billing import products
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/products", tags=["Products"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post("", response_model=Product, summary="Create a product")
async def create_product(request: Request, body: ProductCreate, tenant: SecretTenant) -> Response:
    return json_response(await products.create_product(deps_of(request), tenant, body))


@router.get("", response_model=ListObject[Product], summary="List products")
@read_only
async def list_products(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    active: Annotated[bool | None, Query(description="Only active or only archived.")] = None,
) -> Response:
    """Newest first, with cursor pagination."""
    data, has_more = await products.list_products(reads_of(request), tenant, page, active)
    return list_response(request, data, has_more)


@router.get("/{product_id}", response_model=Product, summary="Retrieve a product")
async def get_product(request: Request, product_id: str, tenant: SecretTenant) -> Response:
    return json_response(await products.get_product(deps_of(request), tenant, product_id))


@router.post("/{product_id}", response_model=Product, summary="Update a product")
async def update_product(
    request: Request, product_id: str, body: ProductUpdate, tenant: SecretTenant
) -> Response:
    """Only the fields sent change. `active: false` archives the product (its prices keep
    working); metadata merges, and a key set to "" is removed."""
    return json_response(await products.update_product(deps_of(request), tenant, product_id, body))


@router.delete("/{product_id}", response_model=DeletedObject, summary="Delete a product")
async def delete_product(request: Request, product_id: str, tenant: SecretTenant) -> Response:
    """Only a product without prices can be deleted; otherwise `400 product_has_prices`:
    archive it with `active: false` instead."""
    return json_response(await products.delete_product(deps_of(request), tenant, product_id))
