"""Payment link pages: a list with a create form (for support staff too: pick prices and
quantities, a limit, where the customer goes after paying), and a link's page with its
URL to copy, its QR code (``segno``, inline SVG), its line items and completions, and
deactivate/reactivate. Through the same use cases as ``/v1/payment_links``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from markupsafe import Markup
from pydantic import ValidationError

from paygrid.api.dependencies import deps_of
from paygrid.dashboard import forms as form_input
from paygrid.dashboard.rendering import CSP, DashboardRoute, redirect, render
from paygrid.dashboard.sessions import Viewer, current_viewer, form_viewer
from paygrid.domain.errors import InvalidRequest
from paygrid.domain.pagination import PageRequest
from paygrid.schemas.payment_links import PaymentLinkCreate, PaymentLinkUpdate
from paygrid.services import payment_links
from paygrid.services.billing import prices
from paygrid.services.billing.prices import PriceQuery

router = APIRouter(route_class=DashboardRoute)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
Posted = Annotated[Viewer, Depends(form_viewer)]
ITEM_ROWS = 3  # line items the create form offers
COPY_SCRIPT = (Path(__file__).parent / "static" / "copy-link.js").read_bytes()
# The link's page runs one script of ours: the copy button.
CSP_WITH_COPY = CSP.replace("default-src 'none';", "default-src 'none'; script-src 'self';")
NOTICES = {
    "created": "Created. Share the URL or the QR code.",
    "deactivated": "Deactivated: the link now shows customers that it is unavailable.",
    "activated": "Activated: customers can pay through the link again.",
}


@router.get("/static/copy-link.js")
async def copy_script() -> Response:
    return Response(
        COPY_SCRIPT, media_type="text/javascript", headers={"cache-control": "max-age=300"}
    )


@router.get("/payment_links")
async def link_list(
    request: Request,
    viewer: SignedIn,
    after: str | None = None,
    before: str | None = None,
) -> Response:
    viewer.require("payment_links:read")
    deps = deps_of(request)
    where = form_input.cursor(after, before)
    rows, has_more = await payment_links.list_links(deps, viewer.tenant, where.page(), None)
    choices = []
    if viewer.can("prices:read"):
        found, _ = await prices.list_prices(
            deps, viewer.tenant, PageRequest(limit=100), PriceQuery(active=True)
        )
        choices = found
    return render(
        request,
        "payment_links.html",
        {
            "links": rows,
            "prices": choices,
            "item_rows": range(ITEM_ROWS),
            "pager": form_input.pager([x.id for x in rows], has_more, where),
        },
    )


@router.post("/payment_links")
async def create_link(request: Request, viewer: Posted) -> Response:
    viewer.require("payment_links:write")
    form = await form_input.fields(request)
    params = _parsed(_create_values(form))
    created = await payment_links.create_link(deps_of(request), viewer.tenant, params)
    return redirect(f"/dashboard/payment_links/{created.id}", notice="created")


def _create_values(form: dict[str, str]) -> dict[str, Any]:
    items = []
    for n in range(ITEM_ROWS):
        price = form.get(f"price_{n}")
        if not price:
            continue
        quantity = form.get(f"quantity_{n}") or "1"
        if not quantity.isdigit():
            raise InvalidRequest("Quantities are whole numbers.", param=f"quantity_{n}")
        items.append({"price": price, "quantity": int(quantity)})
    if not items:
        raise InvalidRequest("Choose at least one price.", param="price_0")
    values: dict[str, Any] = {"line_items": items}
    limit = form.get("limit")
    if limit:
        if not limit.isdigit():
            raise InvalidRequest("The limit is a whole number.", param="limit")
        values["restrictions"] = {"completed_sessions": {"limit": int(limit)}}
    if form.get("after_completion") == "redirect":
        url = form.get("redirect_url", "")
        values["after_completion"] = {"type": "redirect", "redirect": {"url": url}}
    expires = form_input.day(form.get("expires_on"), end=True)
    if expires is not None:
        values["expires_at"] = int(expires.timestamp())
    return values


def _parsed(values: dict[str, Any]) -> PaymentLinkCreate:
    try:
        return PaymentLinkCreate.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise InvalidRequest(f"{where}: {first.get('msg')}".strip(": "), param=where) from None


@router.get("/payment_links/{link_id}")
async def link_detail(
    request: Request, link_id: str, viewer: SignedIn, notice: str | None = None
) -> Response:
    viewer.require("payment_links:read")
    deps = deps_of(request)
    link = await payment_links.get_link(deps, viewer.tenant, link_id)
    response = render(
        request,
        "payment_link.html",
        {
            "link": link,
            "qr": _qr_svg(link.url),
            "completions": await payment_links.completions(deps, viewer.tenant, link_id),
            "notice": NOTICES.get(notice or ""),
        },
    )
    response.headers["content-security-policy"] = CSP_WITH_COPY
    return response


def _qr_svg(url: str) -> Markup:
    """The URL as a QR code, inline SVG (segno escapes the title it writes)."""
    svg = segno.make(url, error="m").svg_inline(scale=4, dark="#111827", light="#ffffff")
    labelled = svg.replace("<svg ", '<svg role="img" aria-label="QR code of the link" ', 1)
    return Markup(labelled)  # noqa: S704 - segno's own SVG markup, no user text in it


@router.post("/payment_links/{link_id}/active")
async def set_active(request: Request, link_id: str, viewer: Posted) -> Response:
    viewer.require("payment_links:write")
    active = (await form_input.fields(request)).get("active") == "true"
    await payment_links.update_link(
        deps_of(request), viewer.tenant, link_id, PaymentLinkUpdate(active=active)
    )
    notice = "activated" if active else "deactivated"
    return redirect(f"/dashboard/payment_links/{link_id}", notice=notice)
