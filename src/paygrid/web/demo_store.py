"""The demo store (``paygrid serve --demo``): a one-product shop that sells as the demo
merchant through checkout.js, to show the hosted checkout end to end."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from paygrid.api.dependencies import deps_of
from paygrid.demo import load_demo_merchant
from paygrid.domain.errors import ResourceMissing
from paygrid.money import format_display, get_currency
from paygrid.schemas.checkout_sessions import CheckoutSessionCreate
from paygrid.services.checkout_sessions import create_session
from paygrid.services.context import Tenant
from paygrid.web.checkout import templates

router = APIRouter(include_in_schema=False)
PRODUCT_NAME = "paygrid mug"
PRICE = 2000  # USD cents


@router.get("/demo/store", response_class=HTMLResponse)
async def store(request: Request) -> Response:
    price = format_display(PRICE, get_currency("USD"))
    return templates.TemplateResponse(
        request, "demo_store.html", {"product_name": PRODUCT_NAME, "price": price}
    )


@router.post("/demo/store/checkout")
async def start_checkout(request: Request) -> Response:
    """What a merchant's server does: create a session with its secret key (here, directly
    as the demo merchant), and hand the page only the session id."""
    deps = deps_of(request)
    demo = load_demo_merchant(deps.settings.data_dir)
    if demo is None:
        raise ResourceMissing("No demo merchant: start the server with paygrid serve --demo.")
    store_url = f"{deps.settings.base_url()}/demo/store"
    params = CheckoutSessionCreate.model_validate(
        {
            "amount": PRICE,
            "currency": "USD",
            "description": f"1 x {PRODUCT_NAME}",
            "success_url": f"{store_url}?paid=1",
            "cancel_url": store_url,
            "metadata": {"product": PRODUCT_NAME},
        }
    )
    session = await create_session(deps, Tenant(demo.id, livemode=False), params)
    return JSONResponse({"id": session.id}, headers={"Cache-Control": "no-store"})
