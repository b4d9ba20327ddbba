"""``/v1/prices``: create, retrieve, update, list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.read_only import read_only, reads_of
from paygrid.api.responses import COMMON_ERRORS, Page, json_response, list_response
from paygrid.domain.catalog import PriceType
from paygrid.schemas.catalog import MAX_LOOKUP_KEY_LENGTH, Price, PriceCreate, PriceUpdate
from paygrid.schemas.common import CURRENCY_SCHEMA, ListObject
from paygrid.services.billing import prices
from paygrid.services.billing.prices import PriceQuery
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/prices", tags=["Prices"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]
MAX_LOOKUP_KEYS = 10
LookupKeys = Annotated[
    list[Annotated[str, Query(min_length=1, max_length=MAX_LOOKUP_KEY_LENGTH)]] | None,
    Query(max_length=MAX_LOOKUP_KEYS, description="Up to 10 lookup keys (repeat the parameter)."),
]


@router.post("", response_model=Price, summary="Create a price")
async def create_price(request: Request, body: PriceCreate, tenant: SecretTenant) -> Response:
    """A one-time price, or a recurring one with `recurring`. The amount, currency,
    product and recurrence never change afterwards."""
    return json_response(await prices.create_price(deps_of(request), tenant, body))


@router.get("", response_model=ListObject[Price], summary="List prices")
@read_only
async def list_prices(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    product: Annotated[str | None, Query(max_length=64)] = None,
    active: Annotated[bool | None, Query()] = None,
    currency: Annotated[
        str | None, Query(min_length=1, max_length=16, json_schema_extra=CURRENCY_SCHEMA)
    ] = None,
    type: Annotated[PriceType | None, Query()] = None,
    lookup_keys: LookupKeys = None,
    lookup_keys_brackets: Annotated[LookupKeys, Query(alias="lookup_keys[]")] = None,
) -> Response:
    """Newest first, with cursor pagination. `lookup_keys` (or `lookup_keys[]`) returns
    the prices with any of those keys."""
    keys = tuple([*(lookup_keys or ()), *(lookup_keys_brackets or ())])
    query = PriceQuery(product, active, currency, type, keys)
    data, has_more = await prices.list_prices(reads_of(request), tenant, page, query)
    return list_response(request, data, has_more)


@router.get("/{price_id}", response_model=Price, summary="Retrieve a price")
async def get_price(request: Request, price_id: str, tenant: SecretTenant) -> Response:
    return json_response(await prices.get_price(deps_of(request), tenant, price_id))


@router.post("/{price_id}", response_model=Price, summary="Update a price")
async def update_price(
    request: Request, price_id: str, body: PriceUpdate, tenant: SecretTenant
) -> Response:
    """Only `active`, `nickname`, `lookup_key` and `metadata` change; `product`,
    `currency`, `unit_amount`, `recurring` and `type` are refused with
    `400 parameter_immutable` (create a new price and archive this one)."""
    return json_response(await prices.update_price(deps_of(request), tenant, price_id, body))
