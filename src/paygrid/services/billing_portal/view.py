"""What the customer billing portal shows: the customer's subscriptions, finalized invoices
and saved cards (which one is the default), with the merchant's portal settings and the key
its card form tokenizes with. Only the session's customer's objects, in the session's mode."""

from __future__ import annotations

from dataclasses import dataclass

from paygrid.dependencies import Deps
from paygrid.domain.billing_settings import PortalSettings
from paygrid.domain.errors import ResourceMissing
from paygrid.domain.invoices import InvoiceStatus
from paygrid.domain.pagination import PageRequest
from paygrid.schemas.customers import Customer
from paygrid.schemas.invoices import Invoice
from paygrid.schemas.payment_methods import PaymentMethod
from paygrid.schemas.subscriptions import Subscription
from paygrid.services import checkout_pages, customers, payment_methods
from paygrid.services.billing import invoices, products
from paygrid.services.billing.settings import load_settings
from paygrid.services.billing.subscriptions import views
from paygrid.services.billing_portal.sessions import PortalAccess
from paygrid.services.checkout_sessions import hosted_page_key

SHOWN = 50  # the newest of each list; a customer with more asks the merchant


@dataclass(frozen=True, slots=True)
class PortalPage:
    merchant_name: str
    customer: Customer | None  # None once the customer was deleted
    subscriptions: list[Subscription]
    product_names: dict[str, str]  # of the subscriptions' prices' products
    invoices: list[Invoice]
    methods: list[PaymentMethod]
    default_method: str | None
    settings: PortalSettings
    publishable_key: str


async def portal_page(deps: Deps, access: PortalAccess) -> PortalPage:
    """Everything the portal's page shows for the session's customer."""
    tenant, customer_id, page = access.tenant, access.customer_id, PageRequest(limit=SHOWN)
    found = await customers.get_customer(deps, tenant, customer_id)
    customer = found if isinstance(found, Customer) else None
    subs: list[Subscription] = []
    billed: list[Invoice] = []
    methods: list[PaymentMethod] = []
    if customer is not None:
        subs, _ = await views.list_subscriptions(
            deps, tenant, page, customer=customer_id, status=None, price=None
        )
        listed, _ = await invoices.list_invoices(
            deps, tenant, page, customer=customer_id, status=None
        )
        billed = [i for i in listed if i.status is not InvoiceStatus.DRAFT]
        methods, _ = await payment_methods.list_payment_methods(deps, tenant, page, customer_id)
    settings = await load_settings(deps, tenant)
    return PortalPage(
        merchant_name=await checkout_pages.merchant_name(deps, tenant.merchant_id),
        customer=customer,
        subscriptions=subs,
        product_names=await _product_names(deps, access, subs),
        invoices=billed,
        methods=methods,
        default_method=customer.invoice_settings.default_payment_method if customer else None,
        settings=settings.portal,
        publishable_key=await hosted_page_key(deps, tenant.merchant_id, tenant.livemode),
    )


async def _product_names(
    deps: Deps, access: PortalAccess, subs: list[Subscription]
) -> dict[str, str]:
    names: dict[str, str] = {}
    for product_id in {i.price.product for s in subs for i in s.items.data}:
        try:
            names[product_id] = (await products.get_product(deps, access.tenant, product_id)).name
        except ResourceMissing:  # a product is kept while a price names it; a guard all the same
            continue
    return names
