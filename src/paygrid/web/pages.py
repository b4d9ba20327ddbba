"""Routes a browser visits: the landing page at ``/`` (what is running, where everything is,
and a first request to copy), the simulator's 3-D Secure page, and the landing route
providers redirect back to, which syncs the payment and forwards to the merchant."""

from __future__ import annotations

import importlib.metadata
import ipaddress
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from paygrid.api.dependencies import deps_of
from paygrid.demo import DEMO_USER_EMAIL, load_demo_merchant
from paygrid.domain.errors import InvalidRequest
from paygrid.domain.payments import PaymentStatus
from paygrid.domain.url_safety import check_redirect_url
from paygrid.money import format_minor, get_currency
from paygrid.services import simulator_challenges
from paygrid.services.provider_returns import payment_after_return

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(include_in_schema=False)
PLACEHOLDER_KEY = "sk_test_..."


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    """The landing page. With ``serve --demo`` it shows the demo merchant's test secret key
    in the first request, but only to a browser on this machine (loopback): anyone else who
    can reach the server sees a placeholder."""
    settings = deps_of(request).settings
    demo = load_demo_merchant(settings.data_dir) if settings.demo_store else None
    key = demo.secret_key if demo is not None and _is_local(request) else PLACEHOLDER_KEY
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            "version": importlib.metadata.version("paygrid"),
            "base_url": settings.base_url(),
            "demo": demo is not None,
            "demo_email": DEMO_USER_EMAIL,
            "secret_key": key,
            "placeholder": PLACEHOLDER_KEY,
        },
        headers={"Cache-Control": "no-store"},
    )


def _is_local(request: Request) -> bool:
    host = request.client.host if request.client is not None else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@router.get("/simulator/authenticate/{charge_id}", response_class=HTMLResponse)
async def authentication_page(request: Request, charge_id: str) -> Response:
    challenge = await simulator_challenges.challenge(deps_of(request), charge_id)
    currency = get_currency(challenge.currency)
    return templates.TemplateResponse(
        request,
        "simulator_authenticate.html",
        {
            "charge_id": charge_id,
            "last4": "????" if challenge.last4 is None else challenge.last4,
            "amount": format_minor(challenge.amount, currency),
            "currency": currency.code,
            "pending": challenge.pending,
        },
    )


@router.post("/simulator/authenticate/{charge_id}")
async def authentication_decision(request: Request, charge_id: str) -> Response:
    form = parse_qs((await request.body()).decode())
    approved = form.get("decision", [""])[0] == "approve"
    target = await simulator_challenges.decide(deps_of(request), charge_id, approved=approved)
    return RedirectResponse(target, status_code=303)


@router.get("/payments/{payment_id}/return")
async def provider_return(request: Request, payment_id: str) -> Response:
    """The customer is back from the provider: learn the outcome, then hand over to the
    merchant's ``return_url`` (with ``payment`` and ``redirect_status``)."""
    view = await payment_after_return(deps_of(request), payment_id)
    redirect_status = {
        PaymentStatus.SUCCEEDED: "succeeded",
        PaymentStatus.REQUIRES_CAPTURE: "succeeded",
        PaymentStatus.PROCESSING: "pending",
    }.get(view.status, "failed")
    if view.return_url and _is_redirect_target(view.return_url, livemode=view.livemode):
        return RedirectResponse(
            _with_query(view.return_url, payment=view.id, redirect_status=redirect_status),
            status_code=303,
        )
    return templates.TemplateResponse(
        request, "payment_result.html", {"status": view.status.value, "payment_id": view.id}
    )


def _is_redirect_target(url: str, *, livemode: bool) -> bool:
    """Whether the stored ``return_url`` passes today's rule: a row saved before the rule
    existed must not turn this redirect into ``Location: javascript:...``."""
    try:
        check_redirect_url(url, livemode=livemode, param="return_url")
    except InvalidRequest:
        return False
    return True


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))
