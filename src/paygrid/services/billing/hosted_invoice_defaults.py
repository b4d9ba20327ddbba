"""A new card paid with on the hosted invoice page, made the customer's default when the
customer ticked "Make this card my default for future payments": through
``customers.update_customer`` (``invoice_settings.default_payment_method``), as the API
and the portal set it, so a changed default retries the customer's other open invoices
(``method_updates``). The card is already saved to the customer by the payment
(``setup_future_usage``)."""

from __future__ import annotations

import structlog

from paygrid.dependencies import Deps
from paygrid.domain.errors import PaygridError
from paygrid.schemas.customers import CustomerUpdate
from paygrid.services import customers
from paygrid.services.context import Tenant

log = structlog.get_logger("paygrid.billing")


async def make_default(deps: Deps, tenant: Tenant, customer_id: str, payment_method: str) -> None:
    """Set ``payment_method`` as the customer's default. The invoice is paid already: a
    refusal (the customer deleted meanwhile, the card detached) is logged, not shown."""
    params = CustomerUpdate.model_validate(
        {"invoice_settings": {"default_payment_method": payment_method}}
    )
    try:
        await customers.update_customer(deps, tenant, customer_id, params)
    except PaygridError as error:
        log.warning("hosted_invoice.default_not_set", customer=customer_id, reason=error.message)
