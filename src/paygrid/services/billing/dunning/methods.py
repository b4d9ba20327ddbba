"""Which method an invoice's attempt charges: ``/pay``'s ``payment_method`` must be the
customer's own, and a retry charges the fallback method dunning chose, else the invoice's
default (its subscription's), else the customer's ``invoice_settings.default_payment_method``
(Stripe's order)."""

from __future__ import annotations

from paygrid.connectors.simulator.cards import MAGIC_PAYMENT_METHODS
from paygrid.db import customers as customers_db
from paygrid.db import payment_methods as pm_db
from paygrid.db.dunning import ScheduleRow
from paygrid.db.executor import Executor
from paygrid.db.invoices import InvoiceRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import PaymentMethodNotOwned, ResourceMissing
from paygrid.services.context import Tenant


async def require_payable_method(deps: Deps, tenant: Tenant, method: str, customer_id: str) -> None:
    """``method`` may pay the invoice of ``customer_id``: a method saved to that customer
    (or, in test mode, a test id such as ``pm_card_visa``, which belongs to nobody). A
    method of another customer (or of none) is ``400 payment_method_not_owned``; an unknown
    one ``404 resource_missing``."""
    row = await pm_db.get_payment_method(deps.pool, tenant.merchant_id, tenant.livemode, method)
    if row is None:
        if not tenant.livemode and method in MAGIC_PAYMENT_METHODS:
            return
        raise ResourceMissing(f"No such payment method: '{method}'", param="payment_method")
    if row.customer_id != customer_id or row.detached_at is not None:
        raise PaymentMethodNotOwned(
            f"The payment method '{method}' is not saved to this invoice's customer.",
            param="payment_method",
        )


async def retry_method(
    conn: Executor, invoice: InvoiceRow, schedule: ScheduleRow, *, customers_default: bool
) -> str | None:
    """The method a retry charges, in Stripe's order: the invoice's default (its
    subscription's), else the customer's ``invoice_settings.default_payment_method``; a
    fallback method dunning chose comes first, except (``customers_default``) for the retry
    a new default method of the customer's makes."""
    customer = await customers_db.get_customer(
        conn, invoice.merchant_id, invoice.livemode, invoice.customer_id
    )
    default = None if customer is None else customer.default_payment_method_id
    pinned = None if customers_default else schedule.retry_payment_method_id
    return pinned or invoice.default_payment_method_id or default


async def saved_to_customer(conn: Executor, invoice: InvoiceRow, method: str) -> bool:
    """Whether ``method`` is saved to the invoice's customer: its charge is off-session."""
    row = await pm_db.get_payment_method(conn, invoice.merchant_id, invoice.livemode, method)
    return row is not None and row.customer_id == invoice.customer_id and row.detached_at is None
