"""Catalog pages: products (a list, and a product with its prices) and prices, with
creating, archiving and restoring them for roles that may (``products:write``,
``prices:write``), through the same use cases as ``/v1/products`` and ``/v1/prices``."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from paygrid.api.dependencies import deps_of
from paygrid.dashboard import forms as form_input
from paygrid.dashboard.rendering import DashboardRoute, redirect, render
from paygrid.dashboard.sessions import Viewer, current_viewer, form_viewer
from paygrid.domain.catalog import MAX_INTERVAL_COUNT, PriceType
from paygrid.domain.errors import InvalidRequest
from paygrid.domain.pagination import PageRequest
from paygrid.money import CURRENCIES, get_currency
from paygrid.schemas.catalog import (
    Price,
    PriceCreate,
    PriceUpdate,
    ProductCreate,
    ProductUpdate,
)
from paygrid.services.billing import prices, products
from paygrid.services.billing.prices import PriceQuery

router = APIRouter(route_class=DashboardRoute)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
Posted = Annotated[Viewer, Depends(form_viewer)]
M = TypeVar("M", bound=BaseModel)
NOTICES = {
    "created": "Created.",
    "archived": "Archived: nothing new can use it; what already does keeps it.",
    "restored": "Restored: it can be used again.",
}


def _parsed(model: type[M], values: dict[str, Any]) -> M:
    """A request model from form values; the first problem becomes the page's error."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise InvalidRequest(f"{where}: {first.get('msg')}".strip(": "), param=where) from None


@router.get("/products")
async def product_list(
    request: Request,
    viewer: SignedIn,
    active: str | None = None,
    after: str | None = None,
    before: str | None = None,
    notice: str | None = None,
) -> Response:
    viewer.require("products:read")
    where = form_input.cursor(after, before)
    wanted = {"true": True, "false": False}.get(active or "")
    rows, has_more = await products.list_products(
        deps_of(request), viewer.tenant, where.page(), wanted
    )
    return render(
        request,
        "products.html",
        {
            "products": rows,
            "active": "" if wanted is None else str(wanted).lower(),
            "pager": form_input.pager([p.id for p in rows], has_more, where),
            "notice": NOTICES.get(notice or ""),
        },
    )


@router.post("/products")
async def create_product(request: Request, viewer: Posted) -> Response:
    viewer.require("products:write")
    form = await form_input.fields(request)
    params = _parsed(
        ProductCreate,
        {"name": form.get("name", ""), "description": form.get("description") or None},
    )
    created = await products.create_product(deps_of(request), viewer.tenant, params)
    return redirect(f"/dashboard/products/{created.id}", notice="created")


@router.get("/products/{product_id}")
async def product_detail(
    request: Request, product_id: str, viewer: SignedIn, notice: str | None = None
) -> Response:
    viewer.require("products:read")
    deps = deps_of(request)
    product = await products.get_product(deps, viewer.tenant, product_id)
    rows: list[Price] = []
    if viewer.can("prices:read"):
        query = PriceQuery(product=product.id)
        rows, _ = await prices.list_prices(deps, viewer.tenant, PageRequest(limit=100), query)
    return render(
        request,
        "product.html",
        {
            "product": product,
            "prices": rows,
            "currencies": sorted(CURRENCIES),
            "intervals": list(MAX_INTERVAL_COUNT),
            "notice": NOTICES.get(notice or ""),
        },
    )


@router.post("/products/{product_id}/active")
async def set_product_active(request: Request, product_id: str, viewer: Posted) -> Response:
    viewer.require("products:write")
    active = (await form_input.fields(request)).get("active") == "true"
    await products.update_product(
        deps_of(request), viewer.tenant, product_id, ProductUpdate(active=active)
    )
    notice = "restored" if active else "archived"
    return redirect(f"/dashboard/products/{product_id}", notice=notice)


@router.get("/prices")
async def price_list(
    request: Request,
    viewer: SignedIn,
    type: str | None = None,
    after: str | None = None,
    before: str | None = None,
) -> Response:
    viewer.require("prices:read")
    where = form_input.cursor(after, before)
    wanted = PriceType(type) if type in tuple(PriceType) else None
    rows, has_more = await prices.list_prices(
        deps_of(request), viewer.tenant, where.page(), PriceQuery(type=wanted)
    )
    return render(
        request,
        "prices.html",
        {
            "prices": rows,
            "type": "" if wanted is None else wanted.value,
            "pager": form_input.pager([p.id for p in rows], has_more, where),
        },
    )


@router.post("/prices")
async def create_price(request: Request, viewer: Posted) -> Response:
    viewer.require("prices:write")
    form = await form_input.fields(request)
    currency = get_currency(form.get("currency", ""))
    interval = form.get("interval") or None
    values: dict[str, Any] = {
        "product": form.get("product", ""),
        "currency": currency.code,
        "unit_amount": form_input.amount(form.get("amount"), currency, "unit_amount"),
        "nickname": form.get("nickname") or None,
        "lookup_key": form.get("lookup_key") or None,
    }
    if interval is not None:
        count = form.get("interval_count") or "1"
        if not count.isdigit():
            raise InvalidRequest("The interval count must be a whole number.")
        values["recurring"] = {"interval": interval, "interval_count": int(count)}
    params = _parsed(PriceCreate, values)
    created = await prices.create_price(deps_of(request), viewer.tenant, params)
    return redirect(f"/dashboard/products/{created.product}", notice="created")


@router.post("/prices/{price_id}/active")
async def set_price_active(request: Request, price_id: str, viewer: Posted) -> Response:
    viewer.require("prices:write")
    active = (await form_input.fields(request)).get("active") == "true"
    updated = await prices.update_price(
        deps_of(request), viewer.tenant, price_id, PriceUpdate(active=active)
    )
    notice = "restored" if active else "archived"
    return redirect(f"/dashboard/products/{updated.product}", notice=notice)
