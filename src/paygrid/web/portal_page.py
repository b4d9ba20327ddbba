"""The billing portal's page as the customer reads it: amounts in the currency's locale
(Babel, as on the hosted checkout), dates, status labels and what each subscription offers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from babel.dates import format_date
from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from paygrid.api.dependencies import deps_of
from paygrid.domain.subscriptions import (
    BILLING,
    SubscriptionAction,
    SubscriptionStatus,
    allowed_sources,
)
from paygrid.money import format_display, get_currency
from paygrid.schemas.subscriptions import Subscription
from paygrid.services.billing_portal import view as portal_view
from paygrid.services.billing_portal.sessions import PortalAccess

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
NO_STORE = {"Cache-Control": "no-store"}
# What the portal offers follows the subscriptions' transition table.
CANCELLABLE = allowed_sources(SubscriptionAction.SCHEDULE_CANCEL)
RENEWING = BILLING | {SubscriptionStatus.TRIALING}
STATUS_LABELS = {
    "incomplete": "Incomplete",
    "incomplete_expired": "Expired",
    "trialing": "Trial",
    "active": "Active",
    "past_due": "Past due",
    "unpaid": "Unpaid",
    "paused": "Paused",
    "canceled": "Cancelled",
    "open": "Due",
    "paid": "Paid",
    "void": "Void",
    "uncollectible": "Unpaid",
}
BRAND_NAMES = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "verve": "Verve",
}
INTERVALS = {"day": "day", "week": "week", "month": "month", "year": "year"}


async def render(
    request: Request,
    token: str,
    access: PortalAccess,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    page = await portal_view.portal_page(deps_of(request), access)
    context = {
        "page": page,
        "token": token,
        "livemode": access.tenant.livemode,
        "csrf_token": access.csrf_token,
        "return_url": access.return_url,
        "notice": notice,
        "error": error,
        "subscriptions": [_subscription(s, page.product_names) for s in page.subscriptions],
        "invoices": [
            {
                "invoice": invoice,
                "amount": _money(invoice.total, invoice.currency),
                "date": _date(invoice.created),
                "pdf": getattr(invoice, "invoice_pdf", None),
                "hosted": getattr(invoice, "hosted_invoice_url", None),
            }
            for invoice in page.invoices
        ],
        "methods": page.methods,
        "status_labels": STATUS_LABELS,
        "brand_names": BRAND_NAMES,
    }
    return templates.TemplateResponse(
        request, "portal.html", context, status_code=status_code, headers=NO_STORE
    )


def _subscription(sub: Subscription, product_names: dict[str, str]) -> dict[str, Any]:
    items = sub.items.data
    total = sum((i.price.unit_amount * i.quantity for i in items), 0)
    recurring = items[0].price.recurring if items else None
    every = ""
    if recurring is not None:
        unit = INTERVALS[recurring.interval]
        every = f"{recurring.interval_count} {unit}s" if recurring.interval_count > 1 else unit
    names = [
        product_names.get(i.price.product) or i.price.nickname or "Subscription" for i in items
    ]
    return {
        "sub": sub,
        "name": ", ".join(dict.fromkeys(names)) or "Subscription",
        "price": f"{_money(total, sub.currency)} / {every}"
        if every
        else _money(total, sub.currency),
        "period_end": _date(sub.current_period_end),
        "cancellable": sub.status in CANCELLABLE and not sub.cancel_at_period_end,
        "renews": sub.status in RENEWING and not sub.cancel_at_period_end,
    }


def _money(amount: int, currency: str) -> str:
    return format_display(amount, get_currency(currency))


def _date(unix_time: int) -> str:
    return str(format_date(datetime.fromtimestamp(unix_time, UTC), format="medium", locale="en_US"))
