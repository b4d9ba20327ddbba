"""What the customer page shows of billing: the customer's subscriptions and invoices (for
roles that read invoices) and saved payment methods, marking the default one."""

from __future__ import annotations

from dataclasses import dataclass

from paygrid.dashboard.sessions import Viewer
from paygrid.dependencies import Deps
from paygrid.domain.pagination import PageRequest
from paygrid.schemas.customers import Customer
from paygrid.schemas.invoices import Invoice
from paygrid.schemas.payment_methods import PaymentMethod
from paygrid.schemas.subscriptions import Subscription
from paygrid.services import payment_methods
from paygrid.services.billing import invoices
from paygrid.services.billing.subscriptions import views

SHOWN = 50  # the newest of each; the lists pages have the rest


@dataclass(frozen=True, slots=True)
class CustomerBilling:
    subscriptions: list[Subscription]
    invoices: list[Invoice]
    methods: list[PaymentMethod]
    default_method: str | None
    shows_invoices: bool


async def of_customer(deps: Deps, viewer: Viewer, customer: Customer) -> CustomerBilling:
    """The customer's billing, as far as the viewer's role reads it (the page itself needs
    ``customers:read``, which saved methods need too)."""
    tenant, page, customer_id = viewer.tenant, PageRequest(limit=SHOWN), customer.id
    subs: list[Subscription] = []
    billed: list[Invoice] = []
    shows_invoices = viewer.can("invoices:read")
    if shows_invoices:
        subs, _ = await views.list_subscriptions(
            deps, tenant, page, customer=customer_id, status=None, price=None
        )
        billed, _ = await invoices.list_invoices(
            deps, tenant, page, customer=customer_id, status=None
        )
    methods, _ = await payment_methods.list_payment_methods(deps, tenant, page, customer_id)
    return CustomerBilling(
        subscriptions=subs,
        invoices=billed,
        methods=methods,
        default_method=customer.invoice_settings.default_payment_method,
        shows_invoices=shows_invoices,
    )
